#include "policies/policy.h"

namespace guard::policies {

const std::vector<std::string>& known_check_ids() {
  static const std::vector<std::string> ids = {
      "dpkg-state", "package-files", "package-hashes", "libraries", "symlinks", "boot", "mounts",
      "services",   "critical",      "space",          "filesystem", "backup", "custom",
  };
  return ids;
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
