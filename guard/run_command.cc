// upgrade-guard run -- CMD..., and upgrade-guard recover.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>

#include "guard/cli.h"
#include "guard/run.h"

namespace guard {
namespace {

int require_root(const char* what) {
  if (::geteuid() == 0) return kExitOk;
  std::fprintf(stderr, "upgrade-guard: %s must run as root\n", what);
  return kExitEnvironment;
}

RunPaths paths_for(const GlobalOptions& o) {
  RunPaths paths;
  paths.state_dir = o.state_dir;
  paths.log_dir = o.log_dir;
  return paths;
}

// Checks root and the policy, then hands `body` a pipeline; sets ctx.exit_code on refusal.
void with_pipeline(CliContext& ctx, const char* what, const std::function<void(RunPipeline&)>& body) {
  if (int rc = require_root(what); rc != kExitOk) {
    ctx.exit_code = rc;
    return;
  }
  auto policy = load_cli_policy(ctx.options);
  if (!policy) {
    ctx.exit_code = report_error(policy.error(), kExitUsage);
    return;
  }
  base::SystemCommandRunner runner;
  RunPipeline pipeline(ctx.options, std::move(*policy), paths_for(ctx.options), runner);
  body(pipeline);
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
                         "Exits 0 (passed), 1 (regressions: gate closed or warned), 3 (rolled back), 4 (refused).");
  sub->add_option("command", *argv, "The command and its arguments, after --")->required();
  sub->callback([&ctx, argv] {
    with_pipeline(ctx, "run", [&](RunPipeline& pipeline) {
      RunSummary summary = pipeline.run(*argv);
      if (ctx.options.json) {
        std::printf("%s\n", render_run_json(summary).c_str());
      } else {
        std::fflush(stdout);
        std::fputs(("\n" + render_run_summary(summary, ::isatty(STDOUT_FILENO) != 0)).c_str(), stdout);
      }
      ctx.exit_code = summary.exit_code;
    });
  });
}

void add_recover_command(CLI::App& app, CliContext& ctx) {
  auto* sub =
      app.add_subcommand("recover",
                         "Finish guarded runs whose guard was killed (SSH drop, power loss, kill -9): run their\n"
                         "post-checks and apply the policy, or complete an interrupted rollback. Exits with the\n"
                         "last recovered run's code (0 when there was nothing to recover).");
  sub->callback([&ctx] {
    with_pipeline(ctx, "recover", [&](RunPipeline& pipeline) {
      auto recovered = pipeline.recover();
      ctx.exit_code = kExitOk;
      nlohmann::json all = nlohmann::json::array();
      for (const auto& s : recovered) {
        if (ctx.options.json) {
          all.push_back(nlohmann::json::parse(render_run_json(s)));
        } else {
          std::fputs(render_run_summary(s, ::isatty(STDOUT_FILENO) != 0).c_str(), stdout);
        }
        ctx.exit_code = s.exit_code;
      }
      if (ctx.options.json) {
        std::printf("%s\n", nlohmann::json{{"schema", 1}, {"recovered", all}}.dump(2).c_str());
      } else if (recovered.empty()) {
        std::printf("nothing to recover: no interrupted run\n");
      }
    });
  });
}

}  // namespace guard
