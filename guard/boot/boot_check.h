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

// Checks the pending trial of ctx.root (ctx.live: the running system), if there is one.
[[nodiscard]] BootCheckSummary run_boot_check(RunContext& ctx, BootBus& bus, const BootCheckOptions& options);

}  // namespace guard::boot
