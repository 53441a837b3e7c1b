#include "guard/cli/cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "base/log.h"
#include "base/strings.h"
#include "guard/cli/invocation.h"

namespace guard::cli {

CliContext::CliContext() = default;
CliContext::~CliContext() = default;

Invocation& CliContext::invocation() {
  if (!invocation_) invocation_ = std::make_unique<Invocation>(options);
  return *invocation_;
}

int report_error(const base::Error& error, int code) {
  // An error may quote a root's file (a path, a line of it): printed with controls escaped.
  std::fprintf(stderr, "upgrade-guard: %s\n", base::escape_control(error.to_string()).c_str());
  return code;
}

void print_problem(std::string_view line, bool indent) {
  std::fprintf(stderr, "%s%s\n", indent ? "  - " : "upgrade-guard: ", base::escape_control(line).c_str());
}

int require_root(const char* what) {
  if (::geteuid() == 0) return kExitOk;
  std::fprintf(stderr, "upgrade-guard: %s must run as root\n", what);
  return kExitEnvironment;
}

namespace {

constexpr const char* kFooter = R"(Exit codes:
  0  ok: no blocking finding, or the action succeeded
  1  checks failed (blocking findings), or the reboot gate is closed
  2  usage or policy error
  3  the upgrade failed its checks and was rolled back
  4  environment problem: not root, a lock held, no snapshot backend, a guarded run or rollback
     unfinished, the state database failing or lost; for gate status: the gate's state is
     unknown, which counts as closed; for boot-check --status: the trial is not settled yet
     (armed, pending) or its state cannot be read
  5  the guarded command failed (non-zero exit, signal, timeout) and the checks found no
     regression: nothing was rolled back and nothing was marked known-good

Global options (--root, --policy, --config-dir, --state-dir, --log-dir, --run-dir, --json, -v) are
accepted before or after the subcommand. State lives in /var/lib/upgrade-guard/state.db, logs of
guarded commands in /var/log/upgrade-guard/, the policy in /etc/upgrade-guard/policy.toml and
/etc/upgrade-guard/policy.d/*.toml.)";

}  // namespace

int run_cli(int argc, char** argv) {
  CliContext ctx;
  CLI::App app{
      "upgrade-guard: snapshot before a package upgrade, check the system after it, and roll\n"
      "back or block the reboot when the checks find a regression.",
      "upgrade-guard"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", std::string(UG_VERSION));
  auto& o = ctx.options;
  app.add_option("--root", o.root, "Guard this root directory instead of / (a chroot, image or mounted snapshot)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--policy", o.policy_file,
                 "Use built-in defaults < FILE instead of /etc/upgrade-guard/policy.toml and policy.d/");
  app.add_option("--config-dir", o.config_dir, "Where policy.toml and policy.d/ live")->capture_default_str();
  app.add_option("--state-dir", o.state_dir, "Where state.db and the gate file live")->capture_default_str();
  app.add_option("--log-dir", o.log_dir, "Where the output of guarded commands is logged")->capture_default_str();
  app.add_option("--run-dir", o.run_dir, "Where the guard's lock and apt's hook session live")->capture_default_str();
  app.add_flag("--json", o.json, "Print data as JSON (schema 1) on stdout");
  app.add_flag("-v,--verbose", o.verbose, "Log progress to stderr");

  app.parse_complete_callback([&ctx, &o, &app] {
    base::LogConfig log;
    log.stderr_level = o.verbose ? base::LogLevel::info : base::LogLevel::warning;
    base::configure_logging(log);
    // Any invocation reports work a dead guard left (recover and boot-check say it themselves).
    if (app.got_subcommand("completion")) return;  // completing must print nothing else
    if (app.got_subcommand("recover") || app.got_subcommand("boot-check")) {
      ctx.invocation().quiet_notices();
      return;
    }
    // Opening the store prints what is unfinished. Unreadable here (not root, say), the command
    // says so itself when it needs the store.
    [[maybe_unused]] auto store = ctx.invocation().existing_store();
  });

  add_check_command(app, ctx);
  add_run_command(app, ctx);
  add_gate_command(app, ctx);
  add_audit_command(app, ctx);
  add_baseline_command(app, ctx);
  add_snapshot_commands(app, ctx);
  add_history_command(app, ctx);
  add_recover_command(app, ctx);
  add_hook_command(app, ctx);
  add_boot_check_command(app, ctx);
  add_policy_command(app, ctx);
  add_completion_command(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  return ctx.exit_code;
}

}  // namespace guard::cli
