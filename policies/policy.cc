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
      {"validators", {}},
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

const std::vector<Validator>& default_validators() {
  // Each validates configuration without side effects and without the network; runtime_dirs
  // are what the daemon's unit or init script creates under /run before it runs the same test.
  static const std::vector<Validator> validators = [] {
    auto v = [](std::string name, std::string program, std::vector<std::string> argv) {
      Validator out;
      out.name = std::move(name);
      out.program = std::move(program);
      out.argv = std::move(argv);
      return out;
    };
    std::vector<Validator> out;
    out.push_back(v("sshd", "/usr/sbin/sshd", {"/usr/sbin/sshd", "-t"}));
    out.back().runtime_dirs = {"/run/sshd"};  // its privilege separation directory
    out.back().warn_output = {"no hostkeys available"};  // keys made at first boot (cloud images)
    // nginx -t opens its log files for writing: refused in the read-only root.
    out.push_back(v("nginx", "/usr/sbin/nginx", {"/usr/sbin/nginx", "-t", "-q"}));
    out.back().warn_output = {"Read-only file system"};
    // apache2ctl reads /etc/apache2/envvars (APACHE_RUN_DIR...) and creates the run directory.
    out.push_back(v("apache2", "/usr/sbin/apache2ctl", {"/usr/sbin/apache2ctl", "-t"}));
    out.back().warn_output = {"Read-only file system"};
    out.push_back(v("named", "/usr/bin/named-checkconf", {"/usr/bin/named-checkconf"}));
    out.push_back(v("sudoers", "/usr/sbin/visudo", {"/usr/sbin/visudo", "-c", "-q"}));
    out.push_back(v("haproxy", "/usr/sbin/haproxy", {"/usr/sbin/haproxy", "-c", "-q", "-f", "/etc/haproxy/haproxy.cfg"}));
    return out;
  }();
  return validators;
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
