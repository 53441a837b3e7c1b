// The `services` check: do the units systemd will start at boot exist, with their binaries?
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "checks/check.h"

namespace guard::checks {

// On a systemd root (/lib/systemd/systemd or /usr/lib/systemd/systemd present; else skipped):
// every link in /etc/systemd/system/*.wants/ and *.requires/ resolves to a unit file in the root
// (dangling blocks; a link to /dev/null is a masked unit, fine); default.target (from /etc, else
// /lib, /usr/lib) resolves to a unit; aliases directly in /etc/systemd/system that dangle warn.
// For every enabled .service (templates instantiated: getty@tty1.service uses getty@.service),
// the binaries of ExecStart=, ExecStartPre=, ExecStartPost= after drop-ins (<unit>.d/*.conf,
// <template>.d/, service.d/; an empty assignment resets) exist and are executable in the root,
// unless the unit's path conditions (ConditionPathExists=, ConditionFileIsExecutable=…) say it
// would not run. Lookup paths: /etc/systemd/system, /run/systemd/system (live only),
// /lib/systemd/system, /usr/lib/systemd/system.
class ServicesCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "services"; }
  [[nodiscard]] std::string_view summary() const override {
    return "enabled unit links, default.target and the binaries of enabled services";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// The program an Exec*= value runs, after the prefixes -@:+! and !!; nullopt when it starts
// with a $variable or holds a %specifier. A name without '/' is returned as is (systemd
// searches it in its fixed PATH). e.g. "-/usr/sbin/sshd -D $SSHD_OPTS" -> "/usr/sbin/sshd".
[[nodiscard]] std::optional<std::string> exec_binary(std::string_view value);

}  // namespace guard::checks
