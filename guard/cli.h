// The command line: parses argv, runs one subcommand, returns the process exit code.
// Each subcommand lives in its own file and registers itself with an add_*_command function.
#pragma once

#include <string>

#include "base/error.h"
#include "policies/policy.h"

namespace CLI {
class App;
}

namespace guard {

// Exit codes are part of the interface (README "Exit codes").
enum ExitCode : int {
  kExitOk = 0,            // no blocking finding / the action succeeded
  kExitChecksFailed = 1,  // blocking findings, or the gate is closed
  kExitUsage = 2,         // bad command line or policy
  kExitRolledBack = 3,    // the upgrade failed its checks and was rolled back
  kExitEnvironment = 4,   // not root, a lock held, no snapshot backend, a run in progress...
};

// Options every subcommand understands.
struct GlobalOptions {
  std::string root = "/";                         // --root DIR: the root to guard
  std::string policy_file;                        // --policy FILE: defaults < FILE only
  std::string config_dir = "/etc/upgrade-guard";  // where policy.toml and policy.d/ live
  std::string state_dir = "/var/lib/upgrade-guard";
  std::string log_dir = "/var/log/upgrade-guard";  // logs of guarded commands
  bool json = false;                              // --json: data on stdout as JSON
  bool verbose = false;
};

// Shared by the subcommand files: the parsed global options and the exit code the chosen
// subcommand's callback sets.
struct CliContext {
  GlobalOptions options;
  int exit_code = kExitOk;
};

// Loads the policy the options name (layered from config_dir, or --policy FILE).
[[nodiscard]] base::Result<policies::Policy> load_cli_policy(const GlobalOptions& options);
// Prints `error` once to stderr ("upgrade-guard: ...") and returns `code`.
int report_error(const base::Error& error, int code);

// Subcommand registration, one per file (guard/<name>_command.cc).
void add_check_command(CLI::App& app, CliContext& ctx);
void add_policy_command(CLI::App& app, CliContext& ctx);
void add_history_command(CLI::App& app, CliContext& ctx);
void add_snapshot_commands(CLI::App& app, CliContext& ctx);  // snapshot ..., rollback
void add_run_command(CLI::App& app, CliContext& ctx);
void add_gate_command(CLI::App& app, CliContext& ctx);
// `gate hold` (guard/gate_hold_command.cc), registered on the `gate` subcommand by add_gate_command.
void add_gate_hold_command(CLI::App& gate, CliContext& ctx);
void add_audit_command(CLI::App& app, CliContext& ctx);
void add_baseline_command(CLI::App& app, CliContext& ctx);  // baseline accept|show
void add_recover_command(CLI::App& app, CliContext& ctx);
void add_hook_command(CLI::App& app, CliContext& ctx);
void add_boot_check_command(CLI::App& app, CliContext& ctx);  // guard/boot_check_command.cc

int run_cli(int argc, char** argv);

}  // namespace guard
