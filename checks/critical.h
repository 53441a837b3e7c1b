// The critical check: the programs an administrator needs to repair a system (init, sh,
// dpkg, apt-get, mount, login, sshd) exist, are executable and load: interpreter, libraries
// and symbol versions through their whole dependency tree.
#pragma once

#include <string>
#include <vector>

#include "checks/check.h"

namespace guard::checks {

// Which listed paths must exist: /bin/sh, /usr/bin/dpkg, /usr/bin/apt-get, /bin/mount and
// /bin/login always (Essential or required in every Debian root); /sbin/init when a package
// ships it or the root has a kernel to boot (a container or chroot without init gets an info
// finding); any other path (e.g. /usr/sbin/sshd) only when an installed package lists it in
// /var/lib/dpkg/info/*.list (merged-/usr aliases count as the same path).
class CriticalCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "critical"; }
  [[nodiscard]] std::string_view summary() const override {
    return "init, sh, dpkg, apt-get, mount, login and sshd exist and load with all their libraries";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// /sbin/init /bin/sh /usr/bin/dpkg /usr/bin/apt-get /bin/mount /bin/login /usr/sbin/sshd
[[nodiscard]] const std::vector<std::string>& default_critical_paths();

}  // namespace guard::checks
