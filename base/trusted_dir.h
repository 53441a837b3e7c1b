// Directories the guard writes into as root (its state and log directories) must not be
// changeable by anyone else: otherwise a planted symlink is followed as root (a guarded
// command's output appended to a file of another user's choice, the gate file written there).
// The rule is the policy file's (policies/loader.cc) extended to every parent up to /.
#pragma once

#include <string>

#include "base/error.h"

namespace guard::base {

// Checks `dir` and every parent up to "/" before anything in `dir` is followed:
//  - each existing component (and the target of each symlink on the way) is owned by root, or
//    by the caller when it is not root;
//  - no component is writable by others unless it is sticky (/tmp: nobody can rename
//    another user's entry there);
//  - `dir` itself, when it exists, is a directory writable by neither group nor others.
// A `dir` that does not exist yet is checked up to its nearest existing parent (it will be
// created 0700 or 0750). `what` names it in the error, e.g. "the state directory".
// e.g. check_trusted_dir("/var/log/upgrade-guard", "the log directory") fails with
// "the log directory /var/log/upgrade-guard is writable by others (mode 0777): ... chmod o-w".
[[nodiscard]] Result<void> check_trusted_dir(const std::string& dir, const std::string& what);

}  // namespace guard::base
