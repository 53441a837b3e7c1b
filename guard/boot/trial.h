// The trial boot after a guarded upgrade: recording it (a row in the state database; the GRUB
// counter is guard/boot/grub_counter.h), and the decisions `upgrade-guard boot-check` makes
// about it. The decisions are plain functions of plain data, unit tested without a booted system.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "base/log.h"
#include "guard/state/store.h"

namespace guard::boot {

// ---- Decisions ----------------------------------------------------------------------------

// False when the kernel command line turns the automatic rollback off with
// `upgrade-guard.rollback=0` (also "no", "false", "off"); the last occurrence wins, like the
// kernel's own parameters. e.g. "BOOT_IMAGE=/vmlinuz ro upgrade-guard.rollback=0" -> false.
[[nodiscard]] bool cmdline_allows_rollback(std::string_view cmdline);

// The failed trial a fallback boot stands in for: `upgrade-guard.fallback=ID` on the kernel
// command line, which only the GRUB fallback entry puts there (guard/boot/grub_counter.h); the
// last occurrence wins; nullopt when absent or not a positive number.
// e.g. "BOOT_IMAGE=/@upgrade-guard/S/boot/vmlinuz ro upgrade-guard.fallback=12" -> 12.
[[nodiscard]] std::optional<std::int64_t> fallback_trial_from_cmdline(std::string_view cmdline);

// What boot-check knows about a trial when it decides.
struct TrialFacts {
  bool healthy = false;                  // required units active, no failed unit, no new blocking finding
  bool policy_rollback = true;           // boot_check.rollback
  bool cmdline_allows_rollback = true;   // no upgrade-guard.rollback=0
  int attempts = 1;                      // boots that began checking this trial, this one included
  bool upgrade_already_rolled_back = false;  // this upgrade was rolled back once already
  bool can_roll_back = true;             // a snapshot and a backend that can restore it
};

enum class TrialAction { bless, roll_back, close_gate };
[[nodiscard]] const char* to_string(TrialAction a);  // roll_back -> "roll-back"

// The action and why, for the journal and the trial's message.
// e.g. {close_gate, "the automatic rollback is off (upgrade-guard.rollback=0 on the kernel command line)"}.
struct TrialDecision {
  TrialAction action = TrialAction::close_gate;
  std::string why;
};

// Healthy -> bless. Unhealthy -> roll back only when the policy and the command line allow it,
// this upgrade was never rolled back, this is the first boot that checks the trial (a second
// attempt means an earlier check died half-way: no reboot loop) and a snapshot can be
// restored; otherwise close the gate and stay up.
[[nodiscard]] TrialDecision decide_trial(const TrialFacts& facts);

// One job in systemd's queue (Manager.ListJobs). e.g. {"nginx.service", "running"}.
struct BootJob {
  std::string unit;
  std::string state;  // "waiting" or "running"
};

// True when the boot has settled: the manager's SystemState is past starting ("running",
// "degraded", ...), or every job still queued besides `own_unit`'s is waiting (boot-check is
// itself part of the boot transaction, so the state stays "starting" until it exits; a
// waiting job with nothing running waits for us).
[[nodiscard]] bool boot_settled(std::string_view system_state, const std::vector<BootJob>& jobs,
                                std::string_view own_unit);

// ---- Recording ----------------------------------------------------------------------------

// What record_trial did: the new trial's id, or none because a pending trial already covers
// the change; `note` says which, for the run's report.
struct TrialRecorded {
  std::optional<std::int64_t> id;
  std::string note;
};

// After a change of the live root (a guarded upgrade): the next boot is a trial of it, unless a
// trial is already pending. That one, from the first change since the last boot, covers this one
// too: its snapshot is the last root that booted, and a second upgrade before the reboot must not
// move the rollback target to a root that holds the first. Writes one row (joining the caller's
// transaction). e.g. record_trial(store, 12, "20260122-101500-pre-run12") -> {id=3, "the next boot is trial 3..."}.
[[nodiscard]] base::Result<TrialRecorded> record_trial(state::StateStore& store, std::int64_t run_id,
                                                       const std::string& snapshot_id);

// ---- The kernel the next boot should run ---------------------------------------------------

// The kernel's postinst hook (`upgrade-guard hook kernel VERSION`) records the kernel an
// upgrade installed, <state_dir>/next-kernel, so that boot-check can tell whether the trial boot
// runs it (a trial of the old kernel checks less than it seems). e.g. "6.1.0-28-amd64".
[[nodiscard]] base::Result<void> record_next_kernel(const std::string& state_dir, const std::string& version);
// The recorded kernel, nullopt when none was recorded (or it cannot be read).
[[nodiscard]] std::optional<std::string> next_kernel(const std::string& state_dir);
// Forgets it once a boot checked it.
void forget_next_kernel(const std::string& state_dir);

// Logs a trial event to the journal (MESSAGE_ID 8d3a51c2e6f74b09a1c5d7e2f3b4a690, field UG_BOOT_TRIAL).
void log_trial(base::LogLevel level, std::int64_t trial_id, const std::string& message);

}  // namespace guard::boot
