// Loading policies from TOML: built-in defaults < /etc/upgrade-guard/policy.toml <
// /etc/upgrade-guard/policy.d/*.toml (sorted by name), or defaults < --policy FILE.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"
#include "policies/policy.h"

namespace guard::policies {

struct LoadOptions {
  std::string policy_file;                     // --policy FILE: defaults < this file only
  std::string config_dir = "/etc/upgrade-guard";
  bool check_permissions = true;               // refuse files/dirs writable by group/other or not root's
};

// The built-in defaults (the values documented in policies/default.toml).
[[nodiscard]] Policy default_policy();

// Loads the layered policy. Any error names the file, line, column and key and changes nothing.
// e.g. "/etc/upgrade-guard/policy.d/10-db.toml:4:12: checks.symlinks.severity: unknown severity 'high'".
[[nodiscard]] base::Result<Policy> load_policy(const LoadOptions& options);

// Merges one TOML layer (its text) into `policy`; `file` names it in errors and origins.
[[nodiscard]] base::Result<void> apply_policy_toml(Policy& policy, std::string_view text, const std::string& file);

// Refuses a policy file or directory that is not owned by root or is writable by group or
// other, like sshd's StrictModes; `owner_uid` is root's uid except in tests.
[[nodiscard]] base::Result<void> check_policy_permissions(const std::string& path, unsigned owner_uid = 0);

// The effective policy as TOML, each value commented with where it came from.
[[nodiscard]] std::string render_policy(const Policy& policy);

}  // namespace guard::policies
