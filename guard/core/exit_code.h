// upgrade-guard's exit codes: part of the interface (README "Exit codes", upgrade-guard(8)).
#pragma once

namespace guard {

enum ExitCode : int {
  kExitOk = 0,             // no blocking finding / the action succeeded
  kExitChecksFailed = 1,   // blocking findings, or the gate is closed
  kExitUsage = 2,          // bad command line or policy
  kExitRolledBack = 3,     // the upgrade failed its checks and was rolled back
  kExitEnvironment = 4,    // not root, a lock held, no snapshot backend, a run in progress, the state store failed
  kExitCommandFailed = 5,  // the guarded command failed and the checks found no regression: nothing was
                           // rolled back and nothing marked known-good
};

}  // namespace guard
