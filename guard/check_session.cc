#include "guard/check_session.h"

#include "base/process.h"
#include "base/root.h"
#include "checks/check.h"

namespace guard {

tl::expected<CheckSessionOutcome, CheckSessionError> run_check_session(const GlobalOptions& options,
                                                                       const policies::Policy& policy,
                                                                       const CheckSessionOptions& session) {
  auto fail = [](base::Error e, int code) { return tl::unexpected(CheckSessionError{std::move(e), code}); };
  auto root = base::Root::open(options.root);
  if (!root) return fail(root.error(), kExitEnvironment);

  base::SystemCommandRunner runner;
  checks::CheckContext ctx{*root, policy, {}, &runner, root->is_host_root(), session.progress};
  auto report = checks::run_checks(ctx, session.check_ids);
  if (!report) return fail(report.error(), kExitUsage);

  CheckSessionOutcome outcome;
  outcome.report = std::move(*report);
  return outcome;
}

}  // namespace guard
