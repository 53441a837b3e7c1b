// The command line: parses argv, runs one subcommand, returns the process exit code. Each
// subcommand lives in its own file and registers itself with an add_*_command function; the
// engines below (guard/run, guard/boot, guard/audit, guard/gate, guard/state) never include
// anything from here.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"
#include "guard/core/exit_code.h"

namespace CLI {
class App;
}

namespace guard::cli {

class Invocation;

// Options every subcommand understands.
struct GlobalOptions {
  std::string root = "/";                         // --root DIR: the root to guard
  std::string policy_file;                        // --policy FILE: defaults < FILE only
  std::string config_dir = "/etc/upgrade-guard";  // where policy.toml and policy.d/ live
  std::string state_dir = "/var/lib/upgrade-guard";
  std::string log_dir = "/var/log/upgrade-guard";  // logs of guarded commands
  std::string run_dir = "/run/upgrade-guard";       // the guard's lock and apt's hook session
  bool json = false;                               // --json: data on stdout as JSON
  bool verbose = false;
};

// Shared by the subcommand files: the parsed global options, the parts built from them (made
// once, on first use, after parsing) and the exit code the chosen subcommand sets.
struct CliContext {
  CliContext();
  ~CliContext();
  GlobalOptions options;
  int exit_code = kExitOk;
  // The policy, root, state store, runner, snapshot backend and bus of this invocation.
  Invocation& invocation();

 private:
  std::unique_ptr<Invocation> invocation_;
};

// Prints `error` once to stderr ("upgrade-guard: ...") and returns `code`.
int report_error(const base::Error& error, int code);
// Prints "upgrade-guard: WHAT must run as root" and returns 4 unless we are root (then 0).
int require_root(const char* what);

// Prints "upgrade-guard: LINE" to stderr, LINE's control characters escaped (it may quote a
// root's file, a snapshot's name, a state row); `indent` instead of the prefix for a sub-line.
void print_problem(std::string_view line, bool indent = false);

// Subcommand registration, one per file (guard/cli/<name>_command.cc).
void add_check_command(CLI::App& app, CliContext& ctx);
void add_policy_command(CLI::App& app, CliContext& ctx);
void add_history_command(CLI::App& app, CliContext& ctx);
void add_snapshot_commands(CLI::App& app, CliContext& ctx);  // snapshot ..., rollback
void add_run_command(CLI::App& app, CliContext& ctx);
void add_recover_command(CLI::App& app, CliContext& ctx);
void add_gate_command(CLI::App& app, CliContext& ctx);
// `gate hold` (gate_hold_command.cc), registered on the `gate` subcommand by add_gate_command.
void add_gate_hold_command(CLI::App& gate, CliContext& ctx);
void add_audit_command(CLI::App& app, CliContext& ctx);
void add_baseline_command(CLI::App& app, CliContext& ctx);  // baseline accept|show
void add_hook_command(CLI::App& app, CliContext& ctx);
void add_boot_check_command(CLI::App& app, CliContext& ctx);
// Hidden: `completion bash|zsh|tree|values KIND`, generated from `app`'s command tree.
void add_completion_command(CLI::App& app, CliContext& ctx);

int run_cli(int argc, char** argv);

}  // namespace guard::cli
