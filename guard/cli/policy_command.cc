// upgrade-guard policy show|validate
#include <CLI/CLI.hpp>
#include <cstdio>

#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "policies/loader.h"

namespace guard::cli {

void add_policy_command(CLI::App& app, CliContext& ctx) {
  auto* policy = app.add_subcommand("policy", "Show or validate the effective policy");
  policy->require_subcommand(1);
  auto* show = policy->add_subcommand(
      "show", "Print the effective policy as TOML, each value with the file:line:column it came from");
  show->callback([&ctx] {
    auto p = ctx.invocation().policy();
    if (!p) {
      ctx.exit_code = report_error(p.error().error, p.error().exit_code);
      return;
    }
    std::fputs(policies::render_policy(**p).c_str(), stdout);
    ctx.exit_code = kExitOk;
  });
  auto* validate = policy->add_subcommand(
      "validate",
      "Load the policy (defaults < policy.toml < policy.d/*.toml, or --policy FILE) and report the\n"
      "first error as FILE:LINE:COLUMN: KEY: problem. Exits 0 when valid, 2 when not.");
  validate->callback([&ctx] {
    auto p = ctx.invocation().policy();
    if (!p) {
      ctx.exit_code = report_error(p.error().error, p.error().exit_code);
      return;
    }
    std::printf("policy is valid\n");
    ctx.exit_code = kExitOk;
  });
}

}  // namespace guard::cli
