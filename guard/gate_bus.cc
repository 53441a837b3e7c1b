// The sd-bus adapter for the reboot gate: the only file in guard/ that includes sd-bus.h.
#include "guard/gate_bus.h"

#include <fcntl.h>
#include <systemd/sd-bus.h>

#include <cstdint>
#include <cstring>

namespace guard {
namespace {

struct BusCloser {
  void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
using BusPtr = std::unique_ptr<sd_bus, BusCloser>;

struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

// An sd_bus_error freed at scope exit.
class BusError {
 public:
  BusError() = default;
  BusError(const BusError&) = delete;
  BusError& operator=(const BusError&) = delete;
  ~BusError() { sd_bus_error_free(&error_); }
  sd_bus_error* get() { return &error_; }
  // "org.freedesktop.DBus.Error.AccessDenied: Permission denied", or strerror(-r).
  [[nodiscard]] std::string describe(int r) const {
    if (sd_bus_error_is_set(&error_) != 0) {
      std::string s = error_.name != nullptr ? error_.name : "";
      if (error_.message != nullptr) s += std::string(s.empty() ? "" : ": ") + error_.message;
      return s;
    }
    return std::strerror(-r);
  }

 private:
  sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

constexpr std::uint64_t kReloadTimeoutUsec = 90ULL * 1000 * 1000;  // a reload of a big system takes a while
constexpr const char* kPrivateSystemdSocket = "/run/systemd/private";

base::Result<BusPtr> connect_system_bus() {
  sd_bus* raw = nullptr;
  int r = sd_bus_open_system(&raw);
  BusPtr bus(raw);
  if (r < 0) return base::fail_errno("sd_bus_open_system", "", -r, "cannot connect to the D-Bus system bus");
  return bus;
}

// systemd's own socket: what systemctl uses as root, independent of dbus-daemon.
base::Result<BusPtr> connect_private_systemd() {
  sd_bus* raw = nullptr;
  int r = sd_bus_new(&raw);
  BusPtr bus(raw);
  if (r < 0) return base::fail_errno("sd_bus_new", kPrivateSystemdSocket, -r);
  r = sd_bus_set_address(bus.get(), (std::string("unix:path=") + kPrivateSystemdSocket).c_str());
  if (r < 0) return base::fail_errno("sd_bus_set_address", kPrivateSystemdSocket, -r);
  r = sd_bus_start(bus.get());
  if (r < 0) return base::fail_errno("sd_bus_start", kPrivateSystemdSocket, -r, "cannot connect to systemd");
  return bus;
}

class SystemGateBus final : public GateBus {
 public:
  base::Result<void> reload_systemd() override {
    auto bus = ::geteuid() == 0 ? connect_private_systemd() : connect_system_bus();
    if (!bus && ::geteuid() == 0) bus = connect_system_bus();
    if (!bus) return base::fail(bus.error());
    sd_bus_message* raw_call = nullptr;
    int r = sd_bus_message_new_method_call(bus->get(), &raw_call, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "Reload");
    MessagePtr call(raw_call);
    if (r < 0) return base::fail_errno("sd_bus_message_new_method_call", "", -r, "cannot build the Reload call");
    BusError error;
    sd_bus_message* raw_reply = nullptr;
    r = sd_bus_call(bus->get(), call.get(), kReloadTimeoutUsec, error.get(), &raw_reply);
    MessagePtr reply(raw_reply);
    if (r < 0)
      return base::fail(base::Error{"org.freedesktop.systemd1.Manager.Reload", "", -r,
                                    "systemd did not reload its units: " + error.describe(r)});
    return {};
  }

  base::Result<base::UniqueFd> inhibit(const InhibitRequest& request) override {
    if (!system_bus_) {
      auto bus = connect_system_bus();
      if (!bus) return base::fail(bus.error());
      system_bus_ = std::move(*bus);
    }
    BusError error;
    sd_bus_message* raw_reply = nullptr;
    int r = sd_bus_call_method(system_bus_.get(), "org.freedesktop.login1", "/org/freedesktop/login1",
                               "org.freedesktop.login1.Manager", "Inhibit", error.get(), &raw_reply, "ssss",
                               request.what.c_str(), request.who.c_str(), request.why.c_str(), request.mode.c_str());
    MessagePtr reply(raw_reply);
    if (r < 0)
      return base::fail(base::Error{"org.freedesktop.login1.Manager.Inhibit", "", -r,
                                    "logind did not grant the inhibitor: " + error.describe(r)});
    int fd = -1;
    r = sd_bus_message_read_basic(reply.get(), SD_BUS_TYPE_UNIX_FD, &fd);
    if (r < 0) return base::fail_errno("sd_bus_message_read_basic", "", -r, "logind's Inhibit reply has no fd");
    // The reply owns `fd` and closes it with the message: keep our own copy.
    base::UniqueFd own(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!own) return base::fail_errno("fcntl(F_DUPFD_CLOEXEC)", "", errno, "cannot keep the inhibitor fd");
    return own;
  }

 private:
  BusPtr system_bus_;
};

}  // namespace

std::unique_ptr<GateBus> make_system_gate_bus() {
  return std::make_unique<SystemGateBus>();
}

}  // namespace guard
