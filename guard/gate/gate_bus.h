// The D-Bus calls the reboot gate makes: reload systemd after changing its runtime drop-ins,
// and take a logind inhibitor. The real implementation is guard/bus/ (the one sd-bus adapter);
// unit tests use a fake that records.
#pragma once

#include <memory>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace guard::gate {

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

}  // namespace guard::gate
