#include "policies/policy.h"

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

const char* to_string(Severity s) {
  switch (s) {
    case Severity::off: return "off";
    case Severity::info: return "info";
    case Severity::warn: return "warn";
    case Severity::block: return "block";
  }
  return "?";
}

const char* to_string(OnFail f) {
  switch (f) {
    case OnFail::rollback: return "rollback";
    case OnFail::block_reboot: return "block-reboot";
    case OnFail::warn: return "warn";
  }
  return "?";
}

const char* to_string(SnapshotBackendKind k) {
  switch (k) {
    case SnapshotBackendKind::automatic: return "auto";
    case SnapshotBackendKind::btrfs: return "btrfs";
    case SnapshotBackendKind::copy: return "copy";
    case SnapshotBackendKind::none: return "none";
  }
  return "?";
}

}  // namespace guard::policies
