#include "policies/policy.h"

#include "base/string_table.h"

namespace guard::policies {

namespace {

struct KnownCheck {
  std::string id;
  std::vector<std::string> default_paths;
};

// Every check, in report order, with its built-in paths.
const std::vector<KnownCheck>& known_checks() {
  static const std::vector<KnownCheck> checks = {
      {"dpkg-state", {}},
      {"package-files", {}},
      {"package-hashes", {}},
      {"libraries", {"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec", "/usr/local/bin", "/usr/local/lib", "/opt"}},
      {"symlinks", {"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec", "/etc", "/boot", "/usr/local/bin", "/opt"}},
      {"boot", {}},
      {"mounts", {}},
      {"services", {}},
      {"critical",
       {"/sbin/init", "/bin/sh", "/usr/bin/dpkg", "/usr/bin/apt-get", "/bin/mount", "/bin/login", "/usr/sbin/sshd"}},
      {"pam", {}},
      {"nss", {}},
      {"preload", {}},
      {"apt-hooks", {}},
      {"login-shells", {}},
      {"interpreters", {}},
      {"space", {}},
      {"filesystem", {}},
      {"backup", {}},
      {"custom", {}},
  };
  return checks;
}

}  // namespace

const std::vector<std::string>& known_check_ids() {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> out;
    for (const auto& c : known_checks()) out.push_back(c.id);
    return out;
  }();
  return ids;
}

const std::vector<std::string>& default_check_paths(std::string_view id) {
  static const std::vector<std::string> none;
  for (const auto& c : known_checks()) {
    if (c.id == id) return c.default_paths;
  }
  return none;
}

const CheckPolicy& Policy::check(const std::string& id) const {
  static const CheckPolicy fallback;
  auto it = checks.find(id);
  return it == checks.end() ? fallback : it->second;
}

namespace {

constexpr base::StringTable<Severity, 4> kSeverities{{{
    {Severity::off, "off"},
    {Severity::info, "info"},
    {Severity::warn, "warn"},
    {Severity::block, "block"},
}}};

constexpr base::StringTable<OnFail, 3> kOnFail{{{
    {OnFail::rollback, "rollback"},
    {OnFail::block_reboot, "block-reboot"},
    {OnFail::warn, "warn"},
}}};

constexpr base::StringTable<SnapshotBackendKind, 4> kBackends{{{
    {SnapshotBackendKind::automatic, "auto"},
    {SnapshotBackendKind::btrfs, "btrfs"},
    {SnapshotBackendKind::copy, "copy"},
    {SnapshotBackendKind::none, "none"},
}}};

}  // namespace

const char* to_string(Severity s) { return kSeverities.name(s); }
const char* to_string(OnFail f) { return kOnFail.name(f); }
const char* to_string(SnapshotBackendKind k) { return kBackends.name(k); }

}  // namespace guard::policies
