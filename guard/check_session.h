// Running the checks the way every subcommand does (check, run, audit, recover, gate open):
// open the root, scope the checks, fill in package owners, apply or save the baseline.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/root.h"
#include "checks/report.h"
#include "guard/cli.h"
#include "guard/state.h"
#include "policies/policy.h"

namespace guard {

struct CheckSessionOptions {
  std::vector<std::string> check_ids;  // empty = every check the policy enables
  std::string baseline;                // "", "save" or "compare"
  ReportStage stage = ReportStage::check;  // what the report is stored as, e.g. audit
  bool scope_changed = false;          // limit file checks to packages changed since packages_from
  std::string packages_from;           // host path of a dpkg status file from before the change
  // Files known to have changed besides those the changed packages list now, e.g. the
  // pre-upgrade file lists of the changed packages read from the snapshot (a removed
  // library's dependents are found by its old path).
  std::set<std::string> extra_paths;
  // checks::CheckContext::needed_index: the baseline of a run writes it, its post-checks read it.
  std::string needed_index;
  std::function<void(std::string_view, std::uint64_t, std::uint64_t)> progress;
};

struct CheckSessionOutcome {
  checks::Report report;
  std::vector<std::string> notes;  // lines for the human output, e.g. "baseline saved (12 findings)"
  bool baseline_found = false;     // with "compare": the root had an accepted baseline
  std::optional<std::int64_t> report_id;  // the stored report, when a baseline mode stored one
};

// An error with the exit code the CLI should use (2 for usage, 4 for environment).
struct CheckSessionError {
  base::Error error;
  int exit_code = kExitEnvironment;
};

// The key a root's baseline is stored under: "/" for the live system, else its host path.
[[nodiscard]] std::string root_key(const base::Root& root);

// Every path the dpkg file lists of `root` give for the packages in `packages` (keys like
// "libc6:amd64" or bare names), added to `out`.
void add_package_paths(const base::Root& root, const std::set<std::string>& packages, std::set<std::string>& out);

// The root's baseline key once nothing is changing the root: refuses (exit 4) while a guarded
// run of it is alive and waits up to the policy's preflight.lock_timeout for dpkg's locks,
// logging that it waits. For the commands that judge the whole root (audit, baseline accept).
[[nodiscard]] tl::expected<std::string, CheckSessionError> quiet_root_key(const GlobalOptions& options,
                                                                          const policies::Policy& policy);

[[nodiscard]] tl::expected<CheckSessionOutcome, CheckSessionError> run_check_session(
    const GlobalOptions& options, const policies::Policy& policy, const CheckSessionOptions& session);

}  // namespace guard
