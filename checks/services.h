// The `services` check: do the units systemd will start at boot exist, with their binaries?
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checks/check.h"
#include "checks/unit_file.h"

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

// One enabled .service as systemd would load it: the unit file, then its drop-ins.
// e.g. {"getty@tty1.service", {"/lib/systemd/system/getty@.service"}, {<parsed>}}.
struct EnabledService {
  std::string unit;
  std::vector<std::string> paths;  // the fragment first, then the drop-ins, in order
  std::vector<UnitFile> files;     // parsed, in the same order
};

// The enabled services of the root (the links in /etc/systemd/system/*.wants and *.requires,
// templates instantiated, masked ones and those whose path conditions fail left out), as the
// services check finds them; empty on a root without systemd.
[[nodiscard]] base::Result<std::vector<EnabledService>> enabled_services(const CheckContext& ctx);

}  // namespace guard::checks
