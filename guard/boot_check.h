// `upgrade-guard boot-check`: the post-boot health check of a trial boot (the first boot after
// a guarded upgrade or after a rollback), run by upgrade-guard-boot-check.service after
// multi-user.target. Steps: find the pending trial (none: exit 0 at once) → count the attempt
// → wait for the boot to settle → required units active, no failed unit → the always-on
// checks against the accepted baseline → bless, or roll back and reboot once, or close the gate.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "checks/report.h"
#include "guard/boot_bus.h"
#include "guard/boot_trial.h"
#include "guard/cli.h"
#include "guard/state.h"
#include "policies/policy.h"

namespace guard {

struct BootCheckOptions {
  // The unit boot-check runs as: its own job does not count as "still booting".
  std::string own_unit = "upgrade-guard-boot-check.service";
  // Host path of the kernel command line read for upgrade-guard.rollback=.
  std::string cmdline_path = "/proc/cmdline";
  bool reboot = true;  // --no-reboot: roll back but leave the reboot to the operator
  std::chrono::milliseconds poll{250};
  std::string run_dir = "/run/upgrade-guard";  // the guard lock
};

// The checks a trial boot runs besides the units: the ones that tell whether the system
// booted into a sane state, not the per-file package checks of an upgrade.
[[nodiscard]] const std::vector<std::string>& boot_check_ids();

// What boot-check found and did. e.g. {trial=3, action=roll_back, problems={"required unit
// app.service is failed"}, exit_code=3}.
struct BootCheckSummary {
  std::optional<BootTrialRecord> trial;  // nullopt: no trial was pending
  std::optional<TrialAction> action;
  std::vector<std::string> problems;  // why the boot is not healthy, one line each
  std::vector<std::string> notes;     // what was done
  std::optional<checks::Report> report;
  std::chrono::milliseconds settle_time{0};
  std::chrono::milliseconds check_time{0};
  std::string message;
  int exit_code = kExitOk;  // 0 no trial or blessed, 1 gate closed, 3 rolled back, 4 could not check
};

[[nodiscard]] BootCheckSummary run_boot_check(const GlobalOptions& options, const policies::Policy& policy,
                                              BootBus& bus, const BootCheckOptions& boot);

[[nodiscard]] std::string render_boot_check(const BootCheckSummary& summary);
[[nodiscard]] std::string render_boot_check_json(const BootCheckSummary& summary);

}  // namespace guard
