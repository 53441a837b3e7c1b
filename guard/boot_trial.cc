#include "guard/boot_trial.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "base/atomic_file.h"
#include "base/log.h"
#include "base/strings.h"
#include "snapshots/btrfs_backend.h"
#include "snapshots/layout.h"

namespace guard {
namespace {

constexpr const char* kTrialMessageId = "8d3a51c2e6f74b09a1c5d7e2f3b4a690";

const std::vector<std::string_view>& fallback_vars() {
  static const std::vector<std::string_view> vars{"ug_fallback_uuid", "ug_fallback_linux", "ug_fallback_initrd",
                                                  "ug_fallback_rootflags"};
  return vars;
}

// The UUID the root's fstab mounts "/" by: "UUID=3f1c... / btrfs subvol=@ 0 0" -> "3f1c...".
std::optional<std::string> fstab_root_uuid(std::string_view fstab) {
  for (auto line : base::split(fstab, '\n')) {
    auto fields = base::split_ws(line);
    if (fields.size() < 2 || fields[0].empty() || fields[0].front() == '#' || fields[1] != "/") continue;
    constexpr std::string_view prefix = "UUID=";
    if (fields[0].substr(0, prefix.size()) == prefix) return std::string(fields[0].substr(prefix.size()));
  }
  return std::nullopt;
}

// File names in the host directory `dir` (a snapshot's /boot or the copy beside it).
std::vector<std::string> list_names(const base::Root& dir) {
  std::vector<std::string> names;
  (void)dir.walk("/", [&](const base::WalkEntry& e) {
    if (e.path.find('/', 1) == std::string_view::npos && !e.name.empty()) names.emplace_back(e.name);
    return e.type == DT_DIR ? base::WalkAction::skip_subtree : base::WalkAction::next;
  });
  return names;
}

// Arms the root's GRUB counter for `trial_id`; a note saying what was done or why not.
std::string arm_grub(const base::Root& root, std::int64_t trial_id, const std::string& snapshot_id,
                     snapshots::SnapshotBackend* backend) {
  auto bytes = root.read_file(kGrubEnvPath, 64 << 10);
  if (!bytes) return "no GRUB environment block (" + std::string(kGrubEnvPath) + "): no boot counter armed";
  struct statfs sfs {};
  auto dir = root.open("/boot/grub", O_PATH | O_DIRECTORY);
  if (!dir || ::fstatfs(dir->get(), &sfs) != 0 || sfs.f_type == BTRFS_SUPER_MAGIC)
    return "GRUB cannot write its environment block on btrfs: no boot counter armed (a trial boot that never "
           "reaches boot-check is not caught)";
  auto* btrfs = dynamic_cast<snapshots::BtrfsBackend*>(backend);
  if (btrfs == nullptr) return "the snapshot is not a btrfs subvolume GRUB can boot: no boot counter armed";
  auto info = btrfs->info(snapshot_id);
  auto fstab = root.read_file("/etc/fstab");
  auto uuid = fstab ? fstab_root_uuid(*fstab) : std::nullopt;
  if (!info || !uuid) return "the root is not mounted by UUID= in /etc/fstab: no boot counter armed";
  auto boot_dir = base::Root::open(info->boot_captured ? info->boot_location : info->location + "/boot");
  auto kernel = boot_dir ? newest_bootable_kernel(list_names(*boot_dir)) : std::nullopt;
  if (!kernel) return "snapshot " + snapshot_id + " holds no kernel with its initrd: no boot counter armed";
  auto env = checks::parse_grubenv(*bytes);
  if (!env) return "cannot read " + std::string(kGrubEnvPath) + ": " + env.error().to_string();
  arm_grub_counter(*env, trial_id, fallback_boot(*uuid, snapshot_id, info->boot_captured, *kernel));
  auto text = checks::render_grubenv(*env);
  if (!text) return "no boot counter armed: " + text.error().to_string();
  if (auto w = base::write_file_atomic(root.host_path(kGrubEnvPath), *text, 0644); !w)
    return "no boot counter armed: " + w.error().to_string();
  return "GRUB boot counter armed: a trial boot that never reaches boot-check is followed by one boot of the "
         "pre-upgrade snapshot (kernel " + *kernel + ")";
}

void log_trial(base::LogLevel level, std::int64_t trial_id, const std::string& message) {
  base::log(level, kTrialMessageId, message, {{"UG_BOOT_TRIAL", std::to_string(trial_id)}});
}

}  // namespace

bool cmdline_allows_rollback(std::string_view cmdline) {
  bool allowed = true;
  constexpr std::string_view key = "upgrade-guard.rollback=";
  for (auto word : base::split_ws(base::trim(cmdline))) {
    if (word.substr(0, key.size()) != key) continue;
    auto value = base::trim(word.substr(key.size()));
    allowed = !(value == "0" || value == "no" || value == "false" || value == "off");
  }
  return allowed;
}

const char* to_string(TrialAction a) {
  switch (a) {
    case TrialAction::bless:
      return "bless";
    case TrialAction::roll_back:
      return "roll-back";
    case TrialAction::close_gate:
      return "close-gate";
  }
  return "?";
}

TrialDecision decide_trial(const TrialFacts& f) {
  if (f.healthy) return {TrialAction::bless, "the trial boot passed its checks"};
  if (!f.policy_rollback) return {TrialAction::close_gate, "the policy turns the automatic rollback off (boot_check.rollback = false)"};
  if (!f.cmdline_allows_rollback)
    return {TrialAction::close_gate, "the automatic rollback is off (upgrade-guard.rollback=0 on the kernel command line)"};
  if (f.upgrade_already_rolled_back)
    return {TrialAction::close_gate, "this upgrade was rolled back once already: no second rollback, no reboot loop"};
  if (f.attempts > 1)
    return {TrialAction::close_gate, fmt::format("this is boot {} of the trial: an earlier check did not finish, so "
                                                 "no automatic rollback (no reboot loop)",
                                                 f.attempts)};
  if (!f.can_roll_back) return {TrialAction::close_gate, "there is no snapshot this root can be rolled back to"};
  return {TrialAction::roll_back, "the trial boot failed its checks: rolling back to the pre-upgrade snapshot"};
}

bool boot_settled(std::string_view system_state, const std::vector<BootJob>& jobs, std::string_view own_unit) {
  if (system_state != "initializing" && system_state != "starting") return true;
  if (system_state == "initializing") return false;
  return std::all_of(jobs.begin(), jobs.end(),
                     [&](const BootJob& j) { return j.unit == own_unit || j.state == "waiting"; });
}

std::optional<std::string> newest_bootable_kernel(const std::vector<std::string>& names) {
  std::optional<std::string> best;
  for (const auto& n : names) {
    constexpr std::string_view prefix = "vmlinuz-";
    if (n.rfind(prefix, 0) != 0) continue;
    std::string version = n.substr(prefix.size());
    if (version.empty() || version.find(".dpkg-") != std::string::npos) continue;
    if (std::find(names.begin(), names.end(), "initrd.img-" + version) == names.end()) continue;
    if (!best || ::strverscmp(version.c_str(), best->c_str()) > 0) best = version;
  }
  return best;
}

FallbackBoot fallback_boot(const std::string& fs_uuid, const std::string& snapshot_id, bool boot_captured,
                           const std::string& kernel_version) {
  const std::string store = std::string("/") + snapshots::kStoreName + "/";
  const std::string dir = boot_captured ? store + snapshot_id + ".boot" : store + snapshot_id + "/boot";
  FallbackBoot f;
  f.fs_uuid = fs_uuid;
  f.linux_path = dir + "/vmlinuz-" + kernel_version;
  f.initrd_path = dir + "/initrd.img-" + kernel_version;
  f.rootflags = "subvol=" + std::string(snapshots::kStoreName) + "/" + snapshot_id;
  return f;
}

void arm_grub_counter(checks::GrubEnv& env, std::int64_t trial_id, const FallbackBoot& fallback) {
  env.set(kGrubTrialVar, std::to_string(trial_id));
  env.set(kGrubBootsLeftVar, "1");
  env.set("ug_fallback_uuid", fallback.fs_uuid);
  env.set("ug_fallback_linux", fallback.linux_path);
  env.set("ug_fallback_initrd", fallback.initrd_path);
  env.set("ug_fallback_rootflags", fallback.rootflags);
}

bool disarm_grub_counter(checks::GrubEnv& env) {
  bool any = env.erase(kGrubTrialVar);
  any = env.erase(kGrubBootsLeftVar) || any;
  for (auto v : fallback_vars()) any = env.erase(v) || any;
  return any;
}

std::string render_grub_trial_script() {
  // Variables from load_env are not seen inside a menu entry unless exported.
  return R"grub(### upgrade-guard: the trial boot after a guarded upgrade ###
# Only acts while `upgrade-guard` has armed a trial in grubenv (ug_trial). The trial boot sets
# ug_boots_left to 0; upgrade-guard boot-check removes the variables when it runs. Still 0 at
# the next boot means the trial boot never reached boot-check: boot the pre-upgrade snapshot
# once (ug_trial is cleared, so the boot after that uses the normal default again).
if [ -n "${ug_trial}" ]; then
  export ug_trial
  export ug_fallback_uuid
  export ug_fallback_linux
  export ug_fallback_initrd
  export ug_fallback_rootflags
  if [ "${ug_boots_left}" = "0" ]; then
    set default="upgrade-guard-fallback"
    set ug_trial=
    save_env ug_trial
  else
    set ug_boots_left=0
    save_env ug_boots_left
  fi
  menuentry "Pre-upgrade snapshot (upgrade-guard trial ${ug_trial})" --id upgrade-guard-fallback {
    insmod btrfs
    search --no-floppy --fs-uuid --set=root "${ug_fallback_uuid}"
    linux "${ug_fallback_linux}" root=UUID=${ug_fallback_uuid} ro rootflags=${ug_fallback_rootflags} upgrade-guard.rollback=0
    initrd "${ug_fallback_initrd}"
  }
fi
)grub";
}

std::string arm_boot_trial(StateStore& db, const base::Root& root, std::int64_t run_id,
                           const std::string& snapshot_id, snapshots::SnapshotBackend* backend) {
  if (!root.is_host_root()) return "";
  // One trial covers every upgrade since the last boot: its snapshot is the last root that
  // booted. A second upgrade before the reboot (or a later dpkg run of the same apt) must not
  // move the rollback target to a root that already holds the first upgrade.
  if (auto pending = db.pending_boot_trial(); pending && *pending) {
    const BootTrialRecord& t = **pending;
    return fmt::format("the next boot is already trial {}: it covers this upgrade too and rolls back to {}", t.id,
                       t.snapshot_id);
  }
  auto trial = db.create_boot_trial(run_id, snapshot_id);
  if (!trial) return "the next boot is not checked: " + trial.error().to_string();
  std::string grub = arm_grub(root, *trial, snapshot_id, backend);
  std::string note = fmt::format(
      "the next boot is trial {}: upgrade-guard-boot-check.service blesses it or rolls back to {}; {}", *trial,
      snapshot_id, grub);
  log_trial(base::LogLevel::info, *trial, note);
  return note;
}

snapshots::RollbackOptions rollback_keeping_state(const policies::Policy& policy, const base::Root& root,
                                                  const std::string& state_dir) {
  snapshots::RollbackOptions options;
  options.preserve = policy.preserve;
  if (root.is_host_root() && !state_dir.empty() && state_dir.front() == '/' &&
      std::find(policy.preserve.begin(), policy.preserve.end(), state_dir) == policy.preserve.end())
    options.preserve->push_back(base::normalize_path(state_dir));
  return options;
}

base::Result<snapshots::RollbackResult> rollback_with_trial(StateStore& db, const base::Root& root,
                                                            snapshots::SnapshotBackend& backend,
                                                            const policies::Policy& policy,
                                                            const std::string& state_dir,
                                                            std::optional<std::int64_t> run_id,
                                                            const std::string& snapshot_id) {
  if (!root.is_host_root()) return backend.rollback(snapshot_id, {});
  // Recorded before the rollback copies the state directory into the restored root.
  auto trial = db.create_boot_trial(run_id, snapshot_id);
  auto rolled = backend.rollback(snapshot_id, rollback_keeping_state(policy, root, state_dir));
  if (!rolled && trial)
    (void)db.set_boot_trial_state(*trial, BootTrialState::failed, "the rollback failed: " + rolled.error().to_string());
  if (rolled && trial)
    log_trial(base::LogLevel::info, *trial,
              fmt::format("the boot into the restored root {} is trial {}", snapshot_id, *trial));
  return rolled;
}

std::string disarm_boot_counter(const base::Root& root) {
  auto bytes = root.read_file(kGrubEnvPath, 64 << 10);
  if (!bytes) return "";
  auto env = checks::parse_grubenv(*bytes);
  if (!env) return "the GRUB boot counter was not disarmed: " + env.error().to_string();
  if (!disarm_grub_counter(*env)) return "";
  auto text = checks::render_grubenv(*env);
  if (!text) return "the GRUB boot counter was not disarmed: " + text.error().to_string();
  if (auto w = base::write_file_atomic(root.host_path(kGrubEnvPath), *text, 0644); !w)
    return "the GRUB boot counter was not disarmed: " + w.error().to_string();
  return "GRUB boot counter disarmed";
}

}  // namespace guard
