// The command line: parses argv, runs one subcommand, returns the process exit code.
#pragma once

namespace guard {

// Exit codes are part of the interface (README "Exit codes").
enum ExitCode : int {
  kExitOk = 0,           // no blocking finding / the action succeeded
  kExitChecksFailed = 1, // blocking findings, or the gate is closed
  kExitUsage = 2,        // bad command line or policy
  kExitRolledBack = 3,   // the upgrade failed its checks and was rolled back
  kExitEnvironment = 4,  // not root, a lock held, no snapshot backend, not built yet...
};

int run_cli(int argc, char** argv);

}  // namespace guard
