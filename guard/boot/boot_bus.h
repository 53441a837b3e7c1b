// The D-Bus calls the post-boot check makes to systemd: how far the boot got, which units are
// active or failed, and the reboot after a rollback. The real implementation is
// guard/bus/ (the one sd-bus adapter); unit tests use a fake that records.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "guard/boot/trial.h"

namespace guard::boot {

class BootBus {
 public:
  virtual ~BootBus() = default;
  // org.freedesktop.systemd1.Manager.SystemState: "initializing", "starting", "running",
  // "degraded", "maintenance" or "stopping".
  [[nodiscard]] virtual base::Result<std::string> system_state() = 0;
  // Manager.ListJobs: the jobs still queued, e.g. {{"upgrade-guard-boot-check.service", "running"}}.
  [[nodiscard]] virtual base::Result<std::vector<BootJob>> jobs() = 0;
  // The ActiveState of `unit` (loaded if needed): "active", "failed", "inactive", "activating"...
  [[nodiscard]] virtual base::Result<std::string> unit_active_state(const std::string& unit) = 0;
  // Manager.ListUnitsFiltered(["failed"]): the names of the failed units.
  [[nodiscard]] virtual base::Result<std::vector<std::string>> failed_units() = 0;
  // Manager.StartUnit("reboot.target", "replace-irreversibly"), what `systemctl reboot` does.
  [[nodiscard]] virtual base::Result<void> reboot() = 0;
};


}  // namespace guard::boot
