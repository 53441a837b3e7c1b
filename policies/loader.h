// Loading policies from TOML: built-in defaults < /etc/upgrade-guard/policy.toml <
// /etc/upgrade-guard/policy.d/*.toml (sorted by name), or defaults < --policy FILE.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "policies/policy.h"

namespace guard::policies {

struct LoadOptions {
  std::string policy_file;                     // --policy FILE: defaults < this file only
  std::string config_dir = "/etc/upgrade-guard";
  bool check_permissions = true;               // refuse files/dirs writable by group/other or not root's
};

// The built-in defaults (the values documented in policies/default.toml): the key table's
// defaults over Policy's initializers, every value's origin "built-in".
[[nodiscard]] Policy default_policy();

// Every key a policy file may set, in `policy show` order: check keys once per known check id,
// the fields of [[custom]] entries as "custom[].FIELD". e.g. {"on_fail", "command_timeout",
// "checks.dpkg-state.severity", ..., "backup.max_age", ..., "custom[].name", ...}.
[[nodiscard]] std::vector<std::string> policy_keys();

// Loads the layered policy: defaults < <config_dir>/policy.toml (optional) <
// <config_dir>/policy.d/*.toml (optional; non-hidden names ending in .toml, in byte order);
// with `policy_file` set, defaults < that file (which must exist). A missing config_dir gives
// the defaults. With check_permissions, config_dir, policy.d and every file read must be owned
// by root or the effective uid and not writable by group or other.
// Any error names the file, line, column and key and changes nothing; the Error has
// what = "policy" (or "policy permissions", or the failed call), path = the file, and
// message = the whole text, e.g.
// "/etc/upgrade-guard/policy.d/10-db.toml:4:12: checks.symlinks.severity: unknown severity 'high' (...)".
// Print error.message: Error::to_string() would repeat the path after it.
[[nodiscard]] base::Result<Policy> load_policy(const LoadOptions& options);

// Merges one TOML layer (its text) into `policy`; `file` names it in errors and origins.
// Scalars replace, arrays replace as a whole, [[custom]] entries append (same name replaces).
// On error `policy` is untouched. A syntax error reads "FILE:LINE:COLUMN: syntax error: ...".
// e.g. apply_policy_toml(p, "[snapshot]\nkeep = 3\n", "/etc/upgrade-guard/policy.toml")
[[nodiscard]] base::Result<void> apply_policy_toml(Policy& policy, std::string_view text, const std::string& file);

// Refuses a policy file or directory (stat follows symlinks) that is not owned by exactly
// `owner_uid` or is writable by group or other, like sshd's StrictModes; `owner_uid` is root's
// uid except in tests. load_policy applies the same rule, accepting root or the effective uid.
// e.g. "/etc/upgrade-guard/policy.toml is writable by group or other: run chmod go-w /etc/upgrade-guard/policy.toml"
[[nodiscard]] base::Result<void> check_policy_permissions(const std::string& path, unsigned owner_uid = 0);

// The effective policy as TOML that loads back to the same settings, each value line followed
// by "# from FILE:LINE:COLUMN" or "# built-in" (from policy.origins); for `policy show`.
[[nodiscard]] std::string render_policy(const Policy& policy);

}  // namespace guard::policies
