// `upgrade-guard boot-check`: the post-boot health check of a trial boot (the first boot after
// a guarded upgrade or after a rollback), run by upgrade-guard-boot-check.service after
// multi-user.target. Steps: find the pending trial (none: done at once) → count the attempt →
// wait for the boot to settle → required units active, no failed unit → the always-on checks
// against the accepted baseline → bless, or roll back and reboot once, or close the gate.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "checks/report.h"
#include "guard/boot/boot_bus.h"
#include "guard/boot/trial.h"
#include "guard/core/exit_code.h"
#include "guard/core/run_context.h"

namespace guard::boot {

struct BootCheckOptions {
  // The unit boot-check runs as: its own job does not count as "still booting".
  std::string own_unit = "upgrade-guard-boot-check.service";
  // Host path of the kernel command line read for upgrade-guard.rollback=.
  std::string cmdline_path = "/proc/cmdline";
  // Host path of the running kernel's version, compared with the kernel an upgrade installed.
  std::string osrelease_path = "/proc/sys/kernel/osrelease";
  bool reboot = true;  // --no-reboot: roll back but leave the reboot to the operator
  std::chrono::milliseconds poll{250};
};

// The checks a trial boot runs besides the units: the ones that tell whether the system
// booted into a sane state, not the per-file package checks of an upgrade.
[[nodiscard]] const std::vector<std::string>& boot_check_ids();

// What boot-check found and did. e.g. {trial=3, action=roll_back, problems={"required unit
// app.service is failed"}, exit_code=3}.
struct BootCheckSummary {
  std::optional<state::BootTrialRecord> trial;  // nullopt: no trial was pending
  std::optional<TrialAction> action;
  std::vector<std::string> problems;  // why the boot is not healthy, one line each
  std::vector<std::string> notes;     // what was done
  std::optional<checks::Report> report;
  std::chrono::milliseconds settle_time{0};
  std::chrono::milliseconds check_time{0};
  std::string message;
  int exit_code = kExitOk;  // 0 no trial or blessed, 1 gate closed, 3 rolled back, 4 could not check
};

// The GRUB fallback boot, recognised by upgrade-guard.fallback=TRIAL on `cmdline` (only the
// fallback entry sets it) and a root that is snapshot `running_from` of the snapshot store
// (snapshots::rollback_target, e.g. "@upgrade-guard/20260122-101500-pre-run-12"): the trial boot
// never reached boot-check, the root is the read-only pre-upgrade snapshot, and the next boot
// would start the upgraded root again. The summary says so and how to make the pre-upgrade root
// permanent (exit 1); nullopt when this is not a fallback boot.
[[nodiscard]] std::optional<BootCheckSummary> fallback_boot_summary(std::string_view cmdline,
                                                                    const std::string& running_from);

// What recovery on the fallback boot works with: all of a RunContext for the running system
// but the state store, which it opens in the pinned root (the running snapshot's own is the
// read-only pre-upgrade copy, which knows nothing of the trial).
struct FallbackEnv {
  const policies::Policy& policy;
  const base::Root& root;  // the running system, "/" (the read-only pre-upgrade snapshot)
  base::CommandRunner& runner;
  SnapshotSource& snapshots;
  GuardPaths paths;
  std::string hostname;
  std::string boot_id;
};

// The GRUB fallback boot, made to recover (fallback_boot_summary recognises it; nullopt when
// this is not one). The trial is found in the state database of the root the boot
// configuration pins (e.g. /run/upgrade-guard/top/@rootfs/var/lib/upgrade-guard), where the
// guarded upgrade recorded it. When it is still pending for this very snapshot, the policy and
// the command line allow a rollback (boot_check.rollback, no upgrade-guard.rollback=0) and
// this upgrade was never rolled back, the pinned root is rolled back to the snapshot at once
// (nothing runs from it), with the preserve paths and nested subvolumes carried from it and
// /boot restored: the trial is recorded as rolled back by the fallback, the restored root's
// first boot as a new trial, the rollback as done in the restored root's database, the GRUB
// counter disarmed, and the machine rebooted into the default entry, which now boots the
// pre-upgrade system for good (exit 3). Otherwise nothing changes but the trial's record, and
// the summary says why and what to do by hand (exit 1): never a second automatic rollback.
[[nodiscard]] std::optional<BootCheckSummary> recover_fallback_boot(std::string_view cmdline,
                                                                    const std::string& running_from, FallbackEnv& env,
                                                                    BootBus& bus, const BootCheckOptions& options);

// Checks the pending trial of ctx.root (ctx.live: the running system), if there is one.
[[nodiscard]] BootCheckSummary run_boot_check(RunContext& ctx, BootBus& bus, const BootCheckOptions& options);

}  // namespace guard::boot
