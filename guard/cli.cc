#include "guard/cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "base/log.h"
#include "guard/run.h"
#include "policies/loader.h"

namespace guard {

base::Result<policies::Policy> load_cli_policy(const GlobalOptions& options) {
  policies::LoadOptions load;
  load.policy_file = options.policy_file;
  load.config_dir = options.config_dir;
  return policies::load_policy(load);
}

int report_error(const base::Error& error, int code) {
  std::fprintf(stderr, "upgrade-guard: %s\n", error.to_string().c_str());
  return code;
}

namespace {

constexpr const char* kFooter = R"(Exit codes:
  0  ok: no blocking finding, or the action succeeded
  1  checks failed (blocking findings), or the reboot gate is closed
  2  usage or policy error
  3  the upgrade failed its checks and was rolled back
  4  environment problem: not root, a lock held, no snapshot backend, a guarded run in progress

Global options (--root, --policy, --config-dir, --state-dir, --log-dir, --json, -v) are accepted before
or after the subcommand. State lives in /var/lib/upgrade-guard/state.db, logs of guarded
commands in /var/log/upgrade-guard/, the policy in /etc/upgrade-guard/policy.toml and
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
  app.add_option("--state-dir", o.state_dir, "Where state.db lives")->capture_default_str();
  app.add_option("--log-dir", o.log_dir, "Where the output of guarded commands is logged")->capture_default_str();
  app.add_flag("--json", o.json, "Print data as JSON (schema 1) on stdout");
  app.add_flag("-v,--verbose", o.verbose, "Log progress to stderr");

  app.parse_complete_callback([&o, &app] {
    base::LogConfig log;
    log.stderr_level = o.verbose ? base::LogLevel::info : base::LogLevel::warning;
    base::configure_logging(log);
    // Any invocation reports a run whose guard died (recover says it itself).
    if (app.got_subcommand("recover") || app.got_subcommand("boot-check")) return;
    for (const auto& notice : interrupted_run_notices(o.state_dir))
      std::fprintf(stderr, "upgrade-guard: warning: %s\n", notice.c_str());
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  return ctx.exit_code;
}

}  // namespace guard
