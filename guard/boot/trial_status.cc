#include "guard/boot/trial_status.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <fmt/format.h>

#include "base/atomic_file.h"
#include "base/root.h"
#include "base/string_table.h"
#include "base/strings.h"
#include "guard/boot/trial.h"
#include "guard/core/exit_code.h"

namespace guard::boot {
namespace {

using state::BootTrialState;

constexpr base::StringTable<TrialStatus, 6> kTrialStatuses{{{
    {TrialStatus::none, "none"},
    {TrialStatus::armed, "armed"},
    {TrialStatus::pending, "pending"},
    {TrialStatus::blessed, "blessed"},
    {TrialStatus::rolled_back, "rolled-back"},
    {TrialStatus::failed, "failed"},
}}};

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

// Recorded after this boot began, by whole seconds. The same second counts as the boot before:
// a container can reboot within the second its trial was armed, while nothing is armed or rolled
// back in the first second of a boot (the guarded run alone takes longer). A trial boot-check
// settled in this boot is known by its marker (read_settled_marker): a container's boot-check
// can bless within the boot's first second.
bool after_boot_start(const BootFacts& boot, std::int64_t at_unix) { return at_unix > boot.started_unix; }

// Recorded in this boot: by the boot id a run or rollback recorded, else (none recorded, a
// database older than the boot ids) by the time.
bool in_this_boot(const BootFacts& boot, const std::string& boot_id, std::int64_t at_unix) {
  if (!boot_id.empty() && !boot.boot_id.empty()) return boot_id == boot.boot_id;
  return after_boot_start(boot, at_unix);
}

// The upgrade the trial belongs to was rolled back: another trial of its run was, the run
// itself says so (or stopped in its rollback phase), or the run was a manual rollback.
bool upgrade_rolled_back(const TrialRecords& r) {
  for (const auto& t : r.run_trials) {
    if (t.id != r.trial->id && t.state == BootTrialState::rolled_back) return true;
  }
  if (!r.run) return false;
  return r.run->kind == state::RunKind::rollback || r.run->outcome == state::RunOutcome::rolled_back ||
         (!r.run->outcome && r.run->phase == state::RunPhase::rollback);
}

}  // namespace

const char* to_string(TrialStatus s) { return kTrialStatuses.name(s); }

int exit_code(TrialStatus s) {
  switch (s) {
    case TrialStatus::none:
    case TrialStatus::blessed:
      return kExitOk;
    case TrialStatus::failed:
      return kExitChecksFailed;
    case TrialStatus::rolled_back:
      return kExitRolledBack;
    case TrialStatus::armed:
    case TrialStatus::pending:
      break;
  }
  return kExitEnvironment;
}

bool settled(TrialStatus s) { return s != TrialStatus::armed && s != TrialStatus::pending; }

TrialStatusReport derive_trial_status(const TrialRecords& r, const BootFacts& boot) {
  if (boot.fallback_trial)
    return {TrialStatus::pending,
            fmt::format("GRUB's fallback boot: the boot of trial {} never reached boot-check; boot-check recovers it "
                        "(a rollback to the pre-upgrade snapshot and a reboot) or says what to do",
                        *boot.fallback_trial)};
  if (!r.trial) return {TrialStatus::none, "no trial boot was ever recorded"};
  const state::BootTrialRecord& t = *r.trial;
  if (t.state == BootTrialState::pending) {
    for (const auto& rb : r.run_rollbacks) {
      if (rb.snapshot_id != t.snapshot_id) continue;
      if (rb.state != state::RollbackState::running && rb.state != state::RollbackState::done) continue;
      if (in_this_boot(boot, rb.boot_id, rb.started_unix))
        return {TrialStatus::rolled_back,
                "rolled back to " + t.snapshot_id + " in this boot; the restored root starts at the next boot"};
    }
    bool armed_here = r.run ? in_this_boot(boot, r.run->boot_id, r.run->started_unix)
                            : after_boot_start(boot, t.created_unix);
    if (armed_here) return {TrialStatus::armed, "the next boot is its trial"};
    return {TrialStatus::pending,
            t.attempts == 0 ? std::string("this boot is its trial; boot-check has not checked it yet")
                            : fmt::format("this boot is its trial; boot-check has not settled it yet (boots that "
                                          "began checking it: {})",
                                          t.attempts)};
  }
  const bool settled_here = boot.settled_here == t.id || after_boot_start(boot, t.updated_unix);
  if (!settled_here)
    return {TrialStatus::none, fmt::format("no trial armed or running in this boot (trial {} was {} before it)", t.id,
                                           state::to_string(t.state))};
  switch (t.state) {
    case BootTrialState::blessed:
      if (upgrade_rolled_back(r))
        return {TrialStatus::rolled_back, "this is the restored root after the rollback; its boot passed the checks"};
      return {TrialStatus::blessed, "this boot passed its checks"};
    case BootTrialState::rolled_back:
      return {TrialStatus::rolled_back, "this boot failed its checks and was rolled back to " + t.snapshot_id +
                                            "; the restored root starts at the next boot"};
    case BootTrialState::failed:
    case BootTrialState::pending:
      break;
  }
  return {TrialStatus::failed, "this boot failed its checks and was not rolled back; the reboot gate is closed"};
}

base::Result<TrialRecords> read_trial_records(const state::StateStore& store) {
  TrialRecords r;
  // A damaged database, or one of another schema, could read as "no trial": unknown instead.
  if (auto checked = store.quick_check(); !checked) return base::fail(checked.error());
  auto settings = store.settings();
  if (!settings) return base::fail(settings.error());
  if (settings->schema_version != state::StateStore::kSchemaVersion)
    return base::fail("user_version", store.path(),
                      fmt::format("state.db has schema version {}, this upgrade-guard reads version {} (the next "
                                  "writing command, e.g. boot-check at boot, migrates it)",
                                  settings->schema_version, state::StateStore::kSchemaVersion));
  auto pending = store.pending_boot_trial();
  if (!pending) return base::fail(pending.error());
  if (*pending) {
    r.trial = std::move(*pending);
  } else {
    auto latest = store.latest_boot_trial();
    if (!latest) return base::fail(latest.error());
    r.trial = std::move(*latest);
  }
  if (!r.trial || !r.trial->run_id) return r;
  const std::int64_t run_id = *r.trial->run_id;
  auto run = store.get_run(run_id);
  if (!run) return base::fail(run.error());
  r.run = std::move(*run);
  auto trials = store.boot_trials_of_run(run_id);
  if (!trials) return base::fail(trials.error());
  r.run_trials = std::move(*trials);
  auto rollbacks = store.rollbacks_of_run(run_id);
  if (!rollbacks) return base::fail(rollbacks.error());
  r.run_rollbacks = std::move(*rollbacks);
  auto packages = store.package_changes(run_id);
  if (!packages) return base::fail(packages.error());
  r.packages = packages->size();
  return r;
}

std::optional<std::int64_t> parse_boot_time(std::string_view proc_stat) {
  for (auto line : base::split(proc_stat, '\n')) {
    auto words = base::split_ws(line);
    if (words.size() == 2 && words[0] == "btime") return to_int(words[1]);
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_start_ticks(std::string_view pid_stat) {
  // "PID (COMM) STATE ...": COMM may hold anything, so the fields start after the last ')'.
  auto close = pid_stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  auto fields = base::split_ws(base::trim(pid_stat.substr(close + 1)));
  // Field 3 (STATE) is fields[0], so field 22 (starttime) is fields[19].
  if (fields.size() < 20) return std::nullopt;
  return to_int(fields[19]);
}

base::Result<BootFacts> read_boot_facts(const std::string& proc) {
  auto root = base::Root::open(proc);
  if (!root) return base::fail(root.error());
  auto stat = root->read_file("/stat", 1 << 22);
  if (!stat) return base::fail(stat.error());
  auto btime = parse_boot_time(*stat);
  if (!btime) return base::fail("parse", proc + "/stat", "no btime line: when this boot began is unknown");
  auto init = root->read_file("/1/stat", 1 << 16);
  if (!init) return base::fail(init.error());
  auto ticks = parse_start_ticks(*init);
  if (!ticks) return base::fail("parse", proc + "/1/stat", "no start time of PID 1: when this boot began is unknown");
  const long hz = ::sysconf(_SC_CLK_TCK);
  BootFacts facts;
  facts.started_unix = *btime + *ticks / (hz > 0 ? hz : 100);
  auto id = root->read_file("/sys/kernel/random/boot_id", 4096);
  if (id) facts.boot_id = std::string(base::trim(*id));
  // Without a command line there is no fallback parameter either (a container has one).
  if (auto cmdline = root->read_file("/cmdline", 1 << 20)) facts.fallback_trial = fallback_trial_from_cmdline(*cmdline);
  return facts;
}

constexpr const char* kSettledMarker = "/trial-settled";

void write_settled_marker(const std::string& run_dir, std::int64_t trial_id) {
  (void)base::write_file_atomic(run_dir + kSettledMarker, std::to_string(trial_id) + "\n", 0644);
}

std::optional<std::int64_t> read_settled_marker(const std::string& run_dir) {
  std::ifstream in(run_dir + kSettledMarker, std::ios::binary);
  std::string line;
  if (!in || !std::getline(in, line) || line.size() > 20) return std::nullopt;
  return to_int(line);
}

}  // namespace guard::boot
