// The running system's D-Bus peers, behind the interfaces the engines use: systemd and logind
// for the reboot gate (guard/gate/gate_bus.h), systemd for the post-boot check
// (guard/boot/boot_bus.h). Only the CLI makes them; unit tests use fakes that record.
#pragma once

#include <memory>

#include "guard/boot/boot_bus.h"
#include "guard/gate/gate_bus.h"

namespace guard::bus {

// Connects on first use, so making one never fails: a system without systemd or D-Bus only
// fails the calls that need them. Reload goes over systemd's private socket
// (/run/systemd/private) when it can, like systemctl does for root, so it works while
// dbus-daemon is down; Inhibit needs the system bus.
[[nodiscard]] std::unique_ptr<gate::GateBus> make_system_gate_bus();

// systemd over its private socket as root, else the system bus. Connects on first use.
[[nodiscard]] std::unique_ptr<boot::BootBus> make_system_boot_bus();

}  // namespace guard::bus
