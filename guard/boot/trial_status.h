// `upgrade-guard boot-check --status`: what became of the trial boot, read from what boot-check
// and the trial bookkeeping recorded (the boot_trials, runs and rollbacks of the state
// database) and from this boot's own facts (its boot id, when its init started, the kernel
// command line). It never runs a check, rolls back, reboots or writes anything: a fleet's
// reboot step polls it until the trial boot is settled.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "guard/state/store.h"

namespace guard::boot {

// none: no trial armed for the next boot and none running in this boot (an ordinary boot);
// armed: the next boot is a trial (a guarded upgrade waits for its reboot);
// pending: this boot is a trial boot (or GRUB's fallback boot) that boot-check has not settled;
// blessed: this boot's trial passed;
// rolled_back: this boot's trial failed and was rolled back, or this is the restored root after
//   a rollback, or a rollback made in this boot waits for the reboot;
// failed: this boot's trial failed and was not rolled back (the reboot gate is closed).
enum class TrialStatus { none, armed, pending, blessed, rolled_back, failed };
// rolled_back -> "rolled-back"; the words `boot-check --status --json` prints as "state".
[[nodiscard]] const char* to_string(TrialStatus s);
// 0 none or blessed, 1 failed, 3 rolled back, 4 armed or pending (not known yet).
[[nodiscard]] int exit_code(TrialStatus s);
// True for the states this boot does not leave by itself (all but armed and pending).
[[nodiscard]] bool settled(TrialStatus s);

// This boot, as the bookkeeping can be compared with it.
// e.g. {boot_id="1c7e...", started_unix=1767225600, fallback_trial=nullopt}.
struct BootFacts {
  std::string boot_id;                         // /proc/sys/kernel/random/boot_id
  std::int64_t started_unix = 0;               // when this boot's init (PID 1) started, wall clock
  std::optional<std::int64_t> fallback_trial;  // upgrade-guard.fallback=N: GRUB's fallback boot
  std::optional<std::int64_t> settled_here;    // the trial boot-check settled in this boot (its marker)
};

// What the state database holds about the trial in question: the pending trial, else the
// newest one, with its run and everything recorded for that run.
struct TrialRecords {
  std::optional<state::BootTrialRecord> trial;
  std::optional<state::RunRecord> run;
  std::vector<state::BootTrialRecord> run_trials;    // every trial of the run, newest first
  std::vector<state::RollbackRecord> run_rollbacks;  // every rollback of the run, newest first
  std::size_t packages = 0;                          // how many packages the run changed
};

// The state and why, one line. e.g. {armed, "the next boot is its trial"}.
struct TrialStatusReport {
  TrialStatus state = TrialStatus::none;
  std::string why;
};

// The state of this boot's trial. Something recorded in this boot is told apart from what an
// earlier boot recorded by the boot id a run or rollback recorded, else by the time against
// boot.started_unix (a trial's own row has no boot id):
//  - GRUB's fallback boot: pending (boot-check recovers it and reboots, or says what to do);
//  - a pending trial: rolled back when a rollback of its run to its snapshot was made in this
//    boot (the restored root starts at the next boot), armed when it was recorded in this boot,
//    else pending (this boot is the trial and boot-check has not settled it);
//  - a trial settled in this boot: blessed (rolled back when its upgrade was rolled back: the
//    restored root passed), rolled back or failed as recorded;
//  - otherwise none.
[[nodiscard]] TrialStatusReport derive_trial_status(const TrialRecords& records, const BootFacts& boot);

// Reads TrialRecords from `store` (a read-only store is enough). A store failing PRAGMA
// quick_check or of another schema version than this program's is an error naming it: what it
// holds is not known.
[[nodiscard]] base::Result<TrialRecords> read_trial_records(const state::StateStore& store);

// The boot time of /proc/stat ("btime 1767225600"), nullopt when absent.
[[nodiscard]] std::optional<std::int64_t> parse_boot_time(std::string_view proc_stat);
// Field 22 of /proc/PID/stat, the process's start in clock ticks after the boot, nullopt when
// malformed. e.g. "1 (systemd) S 0 1 1 0 -1 4194560 ... 0 0 20 0 1 0 52 ..." -> 52; the command
// in parentheses may hold spaces and parentheses itself.
[[nodiscard]] std::optional<std::int64_t> parse_start_ticks(std::string_view pid_stat);

// This boot's facts from `proc` (e.g. "/proc"): the boot id, PID 1's start (btime plus its start
// ticks: inside a container that is the container's init, not the host's boot) and the kernel
// command line. An error when the start cannot be read: the state would be a guess.
[[nodiscard]] base::Result<BootFacts> read_boot_facts(const std::string& proc = "/proc");

// The marker boot-check leaves in the run directory (a tmpfs: gone at the next boot) when it
// settles a trial, e.g. "/run/upgrade-guard/trial-settled" holding "3\n". The clock alone cannot
// tell a trial settled in this boot's first second (a container's boot) from one settled by the
// boot before. Writing is best effort; reading gives nullopt when absent or malformed.
void write_settled_marker(const std::string& run_dir, std::int64_t trial_id);
[[nodiscard]] std::optional<std::int64_t> read_settled_marker(const std::string& run_dir);

}  // namespace guard::boot
