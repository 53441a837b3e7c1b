#include "guard/boot/grub_counter.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "base/atomic_file.h"
#include "base/input_limits.h"
#include "base/strings.h"
#include "formats/fstab.h"
#include "snapshots/btrfs_backend.h"

namespace guard::boot {
namespace {

const std::vector<std::string_view>& fallback_vars() {
  static const std::vector<std::string_view> vars{"ug_fallback_uuid", "ug_fallback_linux", "ug_fallback_initrd",
                                                  "ug_fallback_rootflags"};
  return vars;
}

// File names in the host directory `dir` (a snapshot's /boot or the copy beside it); none when
// it cannot be read (the caller then finds no kernel and arms no counter).
std::vector<std::string> list_names(const base::Root& dir) {
  std::vector<std::string> names;
  auto walked = dir.walk("/", [&](const base::WalkEntry& e) {
    if (e.path.find('/', 1) == std::string_view::npos && !e.name.empty()) names.emplace_back(e.name);
    return e.type == DT_DIR ? base::WalkAction::skip_subtree : base::WalkAction::next;
  });
  if (!walked) names.clear();
  return names;
}

}  // namespace

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

std::string render_grub_trial_script(const GrubCmdline& cmdline) {
  // Raw, as 10_linux writes them (GRUB expands $vt_handoff and the like the same way in both
  // entries); only a line break could end the `linux` line early.
  std::string args = std::string(base::trim(cmdline.args + " " + cmdline.default_args));
  std::replace(args.begin(), args.end(), '\n', ' ');
  std::replace(args.begin(), args.end(), '\r', ' ');
  if (!args.empty()) args += ' ';
  // Variables from load_env are not seen inside a menu entry unless exported. The trial id is
  // kept in ug_fallback_trial before ug_trial is cleared, for the title and the command line.
  std::string script = R"grub(### upgrade-guard: the trial boot after a guarded upgrade ###
# Only acts while `upgrade-guard` has armed a trial in grubenv (ug_trial). The trial boot sets
# ug_boots_left to 0; upgrade-guard boot-check removes the variables when it runs. Still 0 at
# the next boot means the trial boot never reached boot-check: boot the pre-upgrade snapshot
# once (ug_trial is cleared, so the boot after that uses the normal default again), with the
# kernel command line of the normal entries and upgrade-guard.fallback=<trial>, so that
# boot-check knows the fallback boot for what it is. Where GRUB cannot write /boot/grub (btrfs),
# the counter is kept on the ESP, in /EFI/upgrade-guard/grubenv.
set ug_env="${prefix}/grubenv"
insmod fat
if search --no-floppy --file --set=ug_esp /EFI/upgrade-guard/grubenv; then
  set ug_env="(${ug_esp})/EFI/upgrade-guard/grubenv"
  load_env -f "${ug_env}"
fi
if [ -n "${ug_trial}" ]; then
  set ug_fallback_trial="${ug_trial}"
  export ug_fallback_trial
  export ug_fallback_uuid
  export ug_fallback_linux
  export ug_fallback_initrd
  export ug_fallback_rootflags
  if [ "${ug_boots_left}" = "0" ]; then
    set default="upgrade-guard-fallback"
    set ug_trial=
    save_env -f "${ug_env}" ug_trial
  else
    set ug_boots_left=0
    save_env -f "${ug_env}" ug_boots_left
  fi
  menuentry "Pre-upgrade snapshot (upgrade-guard trial ${ug_fallback_trial})" --id upgrade-guard-fallback {
    insmod btrfs
    search --no-floppy --fs-uuid --set=root "${ug_fallback_uuid}"
    linux "${ug_fallback_linux}" root=UUID=${ug_fallback_uuid} ro @ARGS@rootflags=${ug_fallback_rootflags} @PARAM@=${ug_fallback_trial}
    initrd "${ug_fallback_initrd}"
  }
fi
)grub";
  script.replace(script.find("@ARGS@"), 6, args);
  script.replace(script.find("@PARAM@"), 7, kFallbackParam);
  return script;
}

namespace {

// Whether `root`'s /boot/grub is on btrfs, where GRUB cannot write grubenv; nullopt when there
// is no /boot/grub.
std::optional<bool> grub_dir_on_btrfs(const base::Root& root) {
  auto dir = root.open("/boot/grub", O_PATH | O_DIRECTORY);
  if (!dir) return std::nullopt;
  struct statfs sfs {};
  return ::fstatfs(dir->get(), &sfs) != 0 || sfs.f_type == BTRFS_SUPER_MAGIC;
}

}  // namespace

// True when a FAT filesystem (the ESP of a UEFI machine) is mounted at /boot/efi.
bool esp_mounted(const base::Root& root) {
  auto dir = root.open("/boot/efi/EFI", O_PATH | O_DIRECTORY);
  struct statfs sfs {};
  return dir && ::fstatfs(dir->get(), &sfs) == 0 && sfs.f_type == MSDOS_SUPER_MAGIC;
}

std::optional<std::string> counter_env_path(const base::Root& root) {
  if (!grub_dir_on_btrfs(root).value_or(true)) return std::string(kGrubEnvPath);
  if (esp_mounted(root)) return std::string(kEspGrubEnvPath);
  return std::nullopt;
}

std::optional<std::string> boot_counter_impossible(const base::Root& root) {
  if (!root.open("/boot/grub/grub.cfg", O_PATH) || counter_env_path(root)) return std::nullopt;
  return std::string(
      "GRUB cannot count boots here: /boot/grub is on btrfs, where GRUB 2.06 cannot write its environment "
      "block, and there is no ESP at /boot/efi to keep it on, so a trial boot that dies before userspace (a "
      "broken initrd, a kernel panic) would boot again and again instead of falling back to the pre-upgrade "
      "snapshot. Put /boot on its own ext4 partition (or boot with UEFI, the ESP mounted at /boot/efi), or set "
      "boot_check.require_counter = false to accept that such a boot needs a hand at the console");
}

std::string arm_grub(const base::Root& root, std::int64_t trial_id, const snapshots::SnapshotInfo& snapshot) {
  auto where = counter_env_path(root);
  if (!where)
    return "GRUB cannot write its environment block on btrfs and there is no ESP: no boot counter armed (a trial "
           "boot that never reaches boot-check is not caught)";
  const std::string env_path = *where;
  auto bytes = root.read_file(env_path, 64 << 10);
  if (!bytes && env_path == kEspGrubEnvPath) {
    // The first counter on this ESP: GRUB's script finds the block by its path.
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(root.host_path(env_path)).parent_path(), ec);
    bytes = std::string();
  }
  if (!bytes) return "no GRUB environment block (" + env_path + "): no boot counter armed";
  if (snapshot.backend != "btrfs") return "the snapshot is not a btrfs subvolume GRUB can boot: no boot counter armed";
  std::optional<std::string> uuid;
  if (auto bytes = root.read_file("/etc/fstab", base::limits::kBootConfigBytes)) {
    if (auto fstab = formats::parse_fstab(*bytes)) uuid = fstab->root_uuid();
  }
  if (!uuid) return "the root is not mounted by UUID= in /etc/fstab: no boot counter armed";
  auto boot_dir = base::Root::open(snapshot.boot_captured ? snapshot.boot_location : snapshot.location + "/boot");
  auto kernel = boot_dir ? newest_bootable_kernel(list_names(*boot_dir)) : std::nullopt;
  if (!kernel) return "snapshot " + snapshot.id + " holds no kernel with its initrd: no boot counter armed";
  auto env = bytes->empty() ? base::Result<checks::GrubEnv>(checks::GrubEnv{}) : checks::parse_grubenv(*bytes);
  if (!env) return "cannot read " + env_path + ": " + env.error().to_string();
  arm_grub_counter(*env, trial_id, fallback_boot(*uuid, snapshot.id, snapshot.boot_captured, *kernel));
  auto text = checks::render_grubenv(*env);
  if (!text) return "no boot counter armed: " + text.error().to_string();
  if (auto w = base::write_file_atomic(root.host_path(env_path), *text, 0644); !w)
    return "no boot counter armed: " + w.error().to_string();
  return "GRUB boot counter armed in " + env_path + ": a trial boot that never reaches boot-check is followed by "
         "one boot of the pre-upgrade snapshot (kernel " + *kernel + ")";
}

std::string disarm_boot_counter(const base::Root& root) {
  std::vector<std::string> done;
  for (std::string_view path : {kGrubEnvPath, kEspGrubEnvPath}) {
    auto bytes = root.read_file(path, 64 << 10);
    if (!bytes) continue;
    auto env = checks::parse_grubenv(*bytes);
    if (!env) return "the GRUB boot counter was not disarmed: " + env.error().to_string();
    if (!disarm_grub_counter(*env)) continue;
    auto text = checks::render_grubenv(*env);
    if (!text) return "the GRUB boot counter was not disarmed: " + text.error().to_string();
    if (auto w = base::write_file_atomic(root.host_path(path), *text, 0644); !w)
      return "the GRUB boot counter was not disarmed: " + w.error().to_string();
    done.emplace_back(path);
  }
  return done.empty() ? std::string() : "GRUB boot counter disarmed (" + base::join(done, ", ") + ")";
}

}  // namespace guard::boot
