// upgrade-guard run -- CMD..., and upgrade-guard recover.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "guard/cli/render.h"
#include "guard/core/locks.h"
#include "guard/core/rollback.h"
#include "guard/run/pipeline.h"
#include "base/atomic_file.h"
#include "base/log.h"
#include "base/strings.h"

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

// `recover --at-boot` (ExecStart of upgrade-guard-rollback-completion.service, early in every
// boot) and `recover --at-shutdown` (its ExecStop): arm and complete prepared live rollbacks.
base::Command command(std::vector<std::string> argv, std::chrono::seconds timeout) {
  base::Command c;
  c.argv = std::move(argv);
  c.timeout = timeout;
  return c;
}

int complete_prepared(CliContext& ctx, bool at_boot) {
  if (int rc = require_root("recover"); rc != kExitOk) return rc;
  const GlobalOptions& o = ctx.options;
  const std::string marker = o.run_dir + "/" + kShutdownCompletionFile;
  auto say = [&](const std::string& text) {
    std::printf("%s\n", text.c_str());
    base::log(base::LogLevel::info, kRollbackMessageId, text);
  };
  auto store = ctx.invocation().existing_store();
  if (!store) return report_error(store.error().error, store.error().exit_code);
  if (at_boot) {
    if (::mkdir(o.run_dir.c_str(), 0755) != 0 && errno != EEXIST)
      return report_error(base::Error{"mkdir", o.run_dir, errno, "cannot create the run directory"}, kExitEnvironment);
    if (auto w = base::write_file_atomic(marker, "recover --at-shutdown completes prepared rollbacks\n", 0644); !w)
      return report_error(w.error(), kExitEnvironment);
  }
  if (*store == nullptr) {
    say("no state database: no prepared rollback");
    return kExitOk;
  }
  RunContext* run_ctx = context_for(ctx, "recover");
  if (run_ctx == nullptr) return ctx.exit_code;
  if (!run_ctx->live) {
    std::fprintf(stderr, "upgrade-guard: recover --at-boot and --at-shutdown are for the running system, not --root\n");
    return kExitUsage;
  }
  auto system_state = run_ctx->runner.run(command({"systemctl", "is-system-running"}, std::chrono::seconds(30)));
  const std::string state = system_state ? system_state->out : std::string();
  if (at_boot && state.rfind("starting", 0) != 0 && state.rfind("initializing", 0) != 0) {
    // Started on a running system (the package's installation): arm only; never reboot it.
    say("armed: live rollbacks are completed at shutdown from now on");
    return kExitOk;
  }
  if (!at_boot) {
    // Stopped by a package removal or `systemctl stop`, not by a shutdown: the services still
    // run, and nothing will complete a rollback prepared from now on. Disarm; a rollback
    // already prepared is completed now, as it would be without this unit.
    if (state.rfind("stopping", 0) != 0) {
      (void)::unlink(marker.c_str());
      say("the system is not shutting down: rollbacks complete at once from now on, until the next boot");
    }
  }
  auto lock = GuardLock::acquire(o.run_dir, std::chrono::seconds(60), [&](const std::string& why) { say(why); });
  if (!lock) say("going on without the guard's lock: " + lock.error().to_string());
  auto backend = run_ctx->snapshots.get();
  if (!backend) {
    say("no prepared rollback (no snapshot backend: " + backend.error().to_string() + ")");
    return kExitOk;
  }
  auto pending = (*backend)->pending_rollbacks();
  if (!pending) return report_error(pending.error(), kExitEnvironment);
  bool any = false;
  for (const auto& p : *pending) any = any || p.prepared;
  if (!any) {
    say("no prepared rollback");
    return kExitOk;
  }
  // journald writes to /var/log/journal until the very end: hand its files over to /run first,
  // so the copy carried into the restored root is whole.
  if (!at_boot) (void)run_ctx->runner.run(command({"journalctl", "--relinquish-var"}, std::chrono::seconds(60)));
  // At boot, only what an earlier boot prepared and its shutdown never completed (a power loss).
  auto done = (*backend)->complete_prepared(at_boot ? run_ctx->boot_id : std::string());
  if (!done) {
    base::log(base::LogLevel::error, kRollbackMessageId,
              "completing the prepared rollback failed: " + done.error().to_string() +
                  "; the next boot (or `upgrade-guard recover --at-shutdown` while shutting down) tries again");
    return report_error(done.error(), kExitEnvironment);
  }
  for (const auto& r : *done)
    say("rollback to " + r.snapshot_id + " completed: the restored root boots next; the replaced root is kept as " +
        r.broken + (r.preserved.empty() ? "" : "; preserve paths carried: " + base::join(r.preserved, ", ")));
  if (at_boot && !done->empty()) {
    say("rebooting into the restored root");
    auto reboot = run_ctx->runner.run(command({"systemctl", "--no-block", "reboot"}, std::chrono::seconds(60)));
    if (!reboot || !reboot->ok())
      return report_error(base::Error{"systemctl", "reboot", 0,
                                      "cannot reboot into the restored root: " +
                                          (reboot ? reboot->describe() + " " + reboot->err : reboot.error().to_string())},
                          kExitEnvironment);
  }
  return kExitOk;
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
    (void)::signal(SIGHUP, SIG_IGN);   // cannot fail for a valid signal and SIG_IGN
    (void)::signal(SIGPIPE, SIG_IGN);
    run::RunSummary summary = run::RunPipeline(*run_ctx).run(*argv);
    if (ctx.options.json) {
      std::printf("%s\n", render_run_json(summary).c_str());
    } else {
      (void)std::fflush(stdout);  // like the fputs below: a failed write to stdout has nowhere to go
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
  auto at_boot = std::make_shared<bool>(false);
  auto at_shutdown = std::make_shared<bool>(false);
  auto* boot_flag = sub->add_flag("--at-boot", *at_boot,
                                  "Early in a boot (upgrade-guard-rollback-completion.service): arm the completion of live\n"
                                  "rollbacks at shutdown; complete one an earlier boot prepared and never completed (power\n"
                                  "loss) and reboot into the restored root");
  auto* shutdown_flag = sub->add_flag("--at-shutdown", *at_shutdown,
                                      "While the system goes down, after its services stopped (the same unit's ExecStop):\n"
                                      "complete prepared live rollbacks, carrying the preserve paths and nested subvolumes");
  boot_flag->excludes(shutdown_flag);
  sub->get_option("--abandon")->excludes(boot_flag)->excludes(shutdown_flag);
  sub->callback([&ctx, abandon, at_boot, at_shutdown] {
    if (*at_boot || *at_shutdown) {
      ctx.exit_code = complete_prepared(ctx, *at_boot);
      return;
    }
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
      std::printf("%s\n", nlohmann::json{{"schema", 1}, {"recovered", all}}.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else if (recovered.empty()) {
      std::printf("nothing to recover: no interrupted run or rollback\n");
    }
  });
}

}  // namespace guard::cli
