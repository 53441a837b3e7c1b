// The trial boot after a guarded upgrade: arming it (a row in the state DB and, where GRUB can
// count boots, a counter in /boot/grub/grubenv), and the decisions `upgrade-guard boot-check`
// makes about it. The decisions are plain functions of plain data, so they are unit tested
// without a booted system.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "checks/grubenv.h"
#include "guard/state.h"
#include "policies/policy.h"
#include "snapshots/backend.h"

namespace guard {

// ---- Decisions ----------------------------------------------------------------------------

// False when the kernel command line turns the automatic rollback off with
// `upgrade-guard.rollback=0` (also "no", "false", "off"); the last occurrence wins, like the
// kernel's own parameters. e.g. "BOOT_IMAGE=/vmlinuz ro upgrade-guard.rollback=0" -> false.
[[nodiscard]] bool cmdline_allows_rollback(std::string_view cmdline);

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

// ---- The GRUB boot counter ----------------------------------------------------------------

// The grubenv variables the counter uses (all removed again by disarm_grub_counter):
//   ug_trial=12            a trial is pending (the trial's id)
//   ug_boots_left=1        GRUB sets it to 0 when it boots the trial; still 0 at the next boot
//                          means the trial boot never reached boot-check: boot the fallback
//   ug_fallback_uuid, ug_fallback_linux, ug_fallback_initrd, ug_fallback_rootflags:
//                          the pre-upgrade snapshot's kernel, initrd and root, for the menu
//                          entry that packaging/grub/42_upgrade-guard adds
inline constexpr std::string_view kGrubTrialVar = "ug_trial";
inline constexpr std::string_view kGrubBootsLeftVar = "ug_boots_left";
// Root-relative, where Debian keeps the block.
inline constexpr std::string_view kGrubEnvPath = "/boot/grub/grubenv";
// The menu entry id of the fallback, for `set default=`.
inline constexpr std::string_view kGrubFallbackId = "upgrade-guard-fallback";

// The pre-upgrade snapshot as GRUB boots it; paths relative to the btrfs top level, which
// is what GRUB's btrfs driver resolves. e.g. {uuid="3f1c...", linux="/@upgrade-guard/S/boot/
// vmlinuz-6.1.0-18-amd64", initrd="/@upgrade-guard/S/boot/initrd.img-6.1.0-18-amd64",
// rootflags="subvol=@upgrade-guard/S"}.
struct FallbackBoot {
  std::string fs_uuid;
  std::string linux_path;
  std::string initrd_path;
  std::string rootflags;
};

// The newest kernel version among the file names of a boot directory that has both
// vmlinuz-VER and initrd.img-VER. e.g. {"vmlinuz-6.1.0-17-amd64", "initrd.img-6.1.0-17-amd64",
// "vmlinuz-6.1.0-18-amd64"} -> "6.1.0-17-amd64" (18 has no initrd).
[[nodiscard]] std::optional<std::string> newest_bootable_kernel(const std::vector<std::string>& names);

// The fallback entry for snapshot `snapshot_id` of a btrfs layout: the kernel from the
// snapshot's own /boot, or from the copy beside it (`<id>.boot`) when /boot was a separate
// filesystem. e.g. fallback_boot("3f1c...", "20260122-101500-pre-run12", false, "6.1.0-18-amd64").
[[nodiscard]] FallbackBoot fallback_boot(const std::string& fs_uuid, const std::string& snapshot_id,
                                         bool boot_captured, const std::string& kernel_version);

// Arms the counter for trial `trial_id` in `env`, keeping every other variable.
void arm_grub_counter(checks::GrubEnv& env, std::int64_t trial_id, const FallbackBoot& fallback);
// Removes the counter's variables; false when none was there.
bool disarm_grub_counter(checks::GrubEnv& env);

// The GRUB script packaging/grub/42_upgrade-guard prints into grub.cfg (via
// `upgrade-guard boot-check --grub-script`): it counts the trial boot down and, when a trial
// boot never reached boot-check, makes the fallback entry the default for this boot.
[[nodiscard]] std::string render_grub_trial_script();

// ---- Arming -------------------------------------------------------------------------------

// After a guarded run passed on the live root: the next boot is a trial of it (unless a trial
// is already pending: that one, from before the first upgrade since the boot, covers it). Records the
// trial in `db` and arms the GRUB counter when the root boots with GRUB and GRUB can write
// its environment block there. Returns a note for the run's report, "" when `root` is not the
// live root (a --root run boots nothing). e.g. "the next boot is trial 3: boot-check blesses
// it or rolls back to 20260122-101500-pre-run12 (GRUB counter armed)".
[[nodiscard]] std::string arm_boot_trial(StateStore& db, const base::Root& root, std::int64_t run_id,
                                         const std::string& snapshot_id, snapshots::SnapshotBackend* backend);

// The rollback of a failed upgrade on the live root, whose restored root starts at the next
// boot: records the trial of that boot first, then rolls back carrying the state directory
// (so the restored root boots with this record and the trial), and marks the trial failed if
// the rollback fails. Any other root is rolled back as before.
// e.g. rollback_with_trial(db, root, backend, policy, "/var/lib/upgrade-guard", 12, "2026...-pre-run12").
[[nodiscard]] base::Result<snapshots::RollbackResult> rollback_with_trial(
    StateStore& db, const base::Root& root, snapshots::SnapshotBackend& backend, const policies::Policy& policy,
    const std::string& state_dir, std::optional<std::int64_t> run_id, const std::string& snapshot_id);

// The policy's preserve paths plus the state directory when it lies inside the live root,
// e.g. {"/home", ..., "/var/lib/upgrade-guard"}: a rollback of the live root keeps its record.
[[nodiscard]] snapshots::RollbackOptions rollback_keeping_state(const policies::Policy& policy,
                                                                const base::Root& root, const std::string& state_dir);

// Removes the counter from the root's grubenv; a note saying what was done ("" when there was
// nothing to disarm).
[[nodiscard]] std::string disarm_boot_counter(const base::Root& root);

}  // namespace guard
