// The sd-bus adapter: the only file in upgrade-guard that includes sd-bus.h.
#include "guard/bus/system_bus.h"

#include <fcntl.h>
#include <systemd/sd-bus.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>


namespace guard::bus {
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

class SystemGateBus final : public gate::GateBus {
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

  base::Result<base::UniqueFd> inhibit(const gate::InhibitRequest& request) override {
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

std::unique_ptr<gate::GateBus> make_system_gate_bus() {
  return std::make_unique<SystemGateBus>();
}

}  // namespace guard::bus

// ---- The post-boot check's calls (guard/boot_bus.h) ----------------------------------------

namespace guard::bus {
namespace {

constexpr const char* kSystemd = "org.freedesktop.systemd1";
constexpr const char* kSystemdPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
constexpr std::uint64_t kCallTimeoutUsec = 25ULL * 1000 * 1000;

class SystemBootBus final : public boot::BootBus {
 public:
  base::Result<std::string> system_state() override {
    return property(kSystemdPath, kManager, "SystemState");
  }

  base::Result<std::vector<boot::BootJob>> jobs() override {
    auto reply = call("ListJobs", nullptr);
    if (!reply) return base::fail(reply.error());
    std::vector<boot::BootJob> out;
    sd_bus_message* m = reply->get();
    int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(usssoo)");
    while (r >= 0) {
      std::uint32_t id = 0;
      const char *unit = nullptr, *type = nullptr, *state = nullptr, *job_path = nullptr, *unit_path = nullptr;
      r = sd_bus_message_read(m, "(usssoo)", &id, &unit, &type, &state, &job_path, &unit_path);
      if (r <= 0) break;
      out.push_back(boot::BootJob{unit, state});
    }
    if (r < 0) return base::fail_errno("sd_bus_message_read", "ListJobs", -r, "cannot read systemd's job list");
    return out;
  }

  base::Result<std::string> unit_active_state(const std::string& unit) override {
    auto reply = call("LoadUnit", unit.c_str());
    if (!reply) return base::fail(reply.error());
    const char* path = nullptr;
    int r = sd_bus_message_read(reply->get(), "o", &path);
    if (r < 0) return base::fail_errno("sd_bus_message_read", unit, -r, "LoadUnit gave no object path");
    return property(path, "org.freedesktop.systemd1.Unit", "ActiveState");
  }

  base::Result<std::vector<std::string>> failed_units() override {
    auto b = connect();
    if (!b) return base::fail(b.error());
    sd_bus_message* raw_call = nullptr;
    int r = sd_bus_message_new_method_call(bus_.get(), &raw_call, kSystemd, kSystemdPath, kManager,
                                           "ListUnitsFiltered");
    MessagePtr msg(raw_call);
    if (r >= 0) r = sd_bus_message_append_strv(msg.get(), const_cast<char**>(kFailedFilter));
    if (r < 0) return base::fail_errno("sd_bus_message_new_method_call", "ListUnitsFiltered", -r);
    BusError error;
    sd_bus_message* raw_reply = nullptr;
    r = sd_bus_call(bus_.get(), msg.get(), kCallTimeoutUsec, error.get(), &raw_reply);
    MessagePtr reply(raw_reply);
    if (r < 0)
      return base::fail(base::Error{"org.freedesktop.systemd1.Manager.ListUnitsFiltered", "", -r, error.describe(r)});
    std::vector<std::string> out;
    r = sd_bus_message_enter_container(reply.get(), SD_BUS_TYPE_ARRAY, "(ssssssouso)");
    while (r >= 0) {
      const char *name = nullptr, *desc = nullptr, *load = nullptr, *active = nullptr, *sub = nullptr,
                 *following = nullptr, *path = nullptr, *job_type = nullptr, *job_path = nullptr;
      std::uint32_t job = 0;
      r = sd_bus_message_read(reply.get(), "(ssssssouso)", &name, &desc, &load, &active, &sub, &following, &path,
                              &job, &job_type, &job_path);
      if (r <= 0) break;
      out.emplace_back(name);
    }
    if (r < 0) return base::fail_errno("sd_bus_message_read", "ListUnitsFiltered", -r);
    return out;
  }

  base::Result<void> reboot() override {
    auto b = connect();
    if (!b) return base::fail(b.error());
    BusError error;
    sd_bus_message* raw_reply = nullptr;
    int r = sd_bus_call_method(bus_.get(), kSystemd, kSystemdPath, kManager, "StartUnit", error.get(), &raw_reply,
                               "ss", "reboot.target", "replace-irreversibly");
    MessagePtr reply(raw_reply);
    if (r < 0)
      return base::fail(base::Error{"org.freedesktop.systemd1.Manager.StartUnit", "reboot.target", -r,
                                    "systemd did not start the reboot: " + error.describe(r)});
    return {};
  }

 private:
  static constexpr const char* kFailedFilter[] = {"failed", nullptr};

  base::Result<void> connect() {
    if (bus_) return {};
    auto bus = ::geteuid() == 0 ? connect_private_systemd() : connect_system_bus();
    if (!bus && ::geteuid() == 0) bus = connect_system_bus();
    if (!bus) return base::fail(bus.error());
    bus_ = std::move(*bus);
    return {};
  }

  // A Manager method taking one string (or none).
  base::Result<MessagePtr> call(const char* method, const char* arg) {
    auto b = connect();
    if (!b) return base::fail(b.error());
    BusError error;
    sd_bus_message* raw_reply = nullptr;
    int r = arg != nullptr ? sd_bus_call_method(bus_.get(), kSystemd, kSystemdPath, kManager, method, error.get(),
                                                &raw_reply, "s", arg)
                           : sd_bus_call_method(bus_.get(), kSystemd, kSystemdPath, kManager, method, error.get(),
                                                &raw_reply, "");
    MessagePtr reply(raw_reply);
    if (r < 0)
      return base::fail(base::Error{std::string(kManager) + "." + method, arg != nullptr ? arg : "", -r,
                                    error.describe(r)});
    return reply;
  }

  base::Result<std::string> property(const char* path, const char* interface, const char* name) {
    auto b = connect();
    if (!b) return base::fail(b.error());
    BusError error;
    char* value = nullptr;
    int r = sd_bus_get_property_string(bus_.get(), kSystemd, path, interface, name, error.get(), &value);
    if (r < 0) return base::fail(base::Error{std::string(interface) + "." + name, path, -r, error.describe(r)});
    std::string out(value);
    std::free(value);
    return out;
  }

  BusPtr bus_;
};

}  // namespace

std::unique_ptr<boot::BootBus> make_system_boot_bus() {
  return std::make_unique<SystemBootBus>();
}

}  // namespace guard::bus
