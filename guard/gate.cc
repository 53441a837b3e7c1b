#include "guard/gate.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include "base/atomic_file.h"
#include "base/root.h"
#include "guard/gate_bus.h"
#include "guard/gate_enforcement.h"

namespace guard {

std::string gate_file_path(const std::string& state_dir) { return state_dir + "/gate"; }

base::Result<std::string> change_gate(StateStore& store, const std::string& state_dir, GateState gate, bool live) {
  if (auto r = store.set_gate(gate); !r) return base::fail(r.error());
  std::string text = gate.closed ? "closed\n" : "open\n";
  if (gate.closed) {
    std::string reason = gate.reason;
    for (auto& c : reason) {
      if (c == '\n') c = ' ';
    }
    text += "reason=" + reason + "\n";
    if (gate.run_id) text += "run=" + std::to_string(*gate.run_id) + "\n";
  }
  if (auto w = base::write_file_atomic(gate_file_path(state_dir), text, 0644); !w) return base::fail(w.error());
  if (!live) return std::string("the gate is recorded; nothing enforced for a root that is not running");
  // The gate itself is recorded now; enforcing it is best effort and says when it failed.
  auto host = base::Root::open("/");
  if (!host) return "the gate is recorded, but the reboot block was not applied: " + host.error().to_string();
  auto bus = make_system_gate_bus();
  auto outcome = gate.closed ? apply_reboot_block(*host, gate.reason, bus.get()) : remove_reboot_block(*host, bus.get());
  if (!outcome) return "the gate is recorded, but the reboot block was not changed: " + outcome.error().to_string();
  if (!outcome->note.empty()) return outcome->note;
  return std::string(gate.closed ? "reboot, poweroff, halt and kexec are refused until the gate opens"
                                 : "reboots are allowed again");
}

std::string invoking_user() {
  const char* sudo = std::getenv("SUDO_USER");
  struct passwd* pw = ::getpwuid(::getuid());
  std::string me = pw != nullptr ? pw->pw_name : "uid " + std::to_string(::getuid());
  if (sudo != nullptr && *sudo != '\0') return std::string(sudo) + " via sudo";
  return me;
}

}  // namespace guard
