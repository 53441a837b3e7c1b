// The D-Bus calls the reboot gate makes: reload systemd after changing its runtime drop-ins,
// and take a logind inhibitor. The real implementation (gate_bus.cc, the only file that
// includes sd-bus.h) talks to the system bus; unit tests use a fake that records.
#pragma once

#include <memory>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace guard {

// What a logind inhibitor blocks and who asks, as org.freedesktop.login1.Manager.Inhibit
// takes them. e.g. {"shutdown:sleep", "upgrade-guard", "reboot gate closed: run 12 failed", "block"}.
struct InhibitRequest {
  std::string what = "shutdown:sleep";
  std::string who = "upgrade-guard";
  std::string why;
  std::string mode = "block";
};

class GateBus {
 public:
  virtual ~GateBus() = default;
  // org.freedesktop.systemd1.Manager.Reload, like `systemctl daemon-reload`: returns once
  // systemd has re-read its unit files (and with them the drop-ins under /run/systemd/system).
  [[nodiscard]] virtual base::Result<void> reload_systemd() = 0;
  // org.freedesktop.login1.Manager.Inhibit: the inhibitor lasts as long as the returned
  // descriptor stays open (in this process or any it is passed to).
  [[nodiscard]] virtual base::Result<base::UniqueFd> inhibit(const InhibitRequest& request) = 0;
};

// The live system's buses. Connects on first use, so creating it never fails: a system
// without systemd or D-Bus only fails the calls that need them. Reload goes over systemd's
// private socket (/run/systemd/private) when it can, like systemctl does for root, so it
// works while dbus-daemon is down; Inhibit needs the system bus.
[[nodiscard]] std::unique_ptr<GateBus> make_system_gate_bus();

}  // namespace guard
