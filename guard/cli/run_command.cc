// upgrade-guard run -- CMD..., and upgrade-guard recover.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "guard/cli/render.h"
#include "guard/run/pipeline.h"

namespace guard::cli {
namespace {

// The context for `what` (root only), or the exit code to end with.
RunContext* context_for(CliContext& ctx, const char* what) {
  if (int rc = require_root(what); rc != kExitOk) {
    ctx.exit_code = rc;
    return nullptr;
  }
  auto run_ctx = ctx.invocation().context();
  if (!run_ctx) {
    ctx.exit_code = report_error(run_ctx.error().error, run_ctx.error().exit_code);
    return nullptr;
  }
  return *run_ctx;
}

}  // namespace

void add_run_command(CLI::App& app, CliContext& ctx) {
  auto argv = std::make_shared<std::vector<std::string>>();
  auto* sub =
      app.add_subcommand("run",
                         "Run a command guarded: preflight, baseline checks, a snapshot, the command (its output also\n"
                         "goes to /var/log/upgrade-guard/run-<id>.log; SIGHUP is ignored so an SSH drop does not stop\n"
                         "it), the dpkg changes, post-checks scoped to them, then the policy's on_fail action when a\n"
                         "check finds a regression. e.g. upgrade-guard run -- apt-get -y dist-upgrade\n"
                         "Exits 0 (passed), 1 (regressions: gate closed or warned), 3 (rolled back), 4 (refused, or\n"
                         "the state database failed: the gate is then closed), 5 (the command failed, no regression).");
  sub->add_option("command", *argv, "The command and its arguments, after --")->required();
  sub->callback([&ctx, argv] {
    RunContext* run_ctx = context_for(ctx, "run");
    if (run_ctx == nullptr) return;
    // An SSH drop must not leave the upgrade unchecked; stdout may be a closed pipe by then.
    ::signal(SIGHUP, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    run::RunSummary summary = run::RunPipeline(*run_ctx).run(*argv);
    if (ctx.options.json) {
      std::printf("%s\n", render_run_json(summary).c_str());
    } else {
      std::fflush(stdout);
      std::fputs(("\n" + render_run_summary(summary, ::isatty(STDOUT_FILENO) != 0, ctx.options.verbose)).c_str(), stdout);
    }
    ctx.exit_code = summary.exit_code;
  });
}

void add_recover_command(CLI::App& app, CliContext& ctx) {
  auto abandon = std::make_shared<bool>(false);
  auto* sub =
      app.add_subcommand("recover",
                         "Finish what a killed guard (SSH drop, power loss, kill -9) left: complete interrupted or\n"
                         "failed rollbacks, run the post-checks of interrupted runs and apply the policy, record a\n"
                         "snapshot an interrupted run took. Exits with the last finished item's code (0 when there\n"
                         "was nothing to recover).");
  sub->add_flag("--abandon", *abandon,
                "Give unfinished rollbacks up instead: revert what each did when the root was not swapped yet\n"
                "(the root stays as it is) and record them abandoned");
  sub->callback([&ctx, abandon] {
    RunContext* run_ctx = context_for(ctx, "recover");
    if (run_ctx == nullptr) return;
    auto recovered =
        run::RunPipeline(*run_ctx).recover(*abandon ? run::RecoverMode::abandon : run::RecoverMode::finish);
    ctx.exit_code = kExitOk;
    nlohmann::json all = nlohmann::json::array();
    for (const auto& s : recovered) {
      if (ctx.options.json) {
        all.push_back(nlohmann::json::parse(render_run_json(s)));
      } else {
        std::fputs(render_run_summary(s, ::isatty(STDOUT_FILENO) != 0, ctx.options.verbose).c_str(), stdout);
      }
      ctx.exit_code = s.exit_code;
    }
    if (ctx.options.json) {
      std::printf("%s\n", nlohmann::json{{"schema", 1}, {"recovered", all}}.dump(2).c_str());
    } else if (recovered.empty()) {
      std::printf("nothing to recover: no interrupted run or rollback\n");
    }
  });
}

}  // namespace guard::cli
