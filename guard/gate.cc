#include "guard/gate.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include "base/atomic_file.h"

namespace guard {

std::string gate_file_path(const std::string& state_dir) { return state_dir + "/gate"; }

base::Result<void> change_gate(StateStore& store, const std::string& state_dir, GateState gate) {
  if (auto r = store.set_gate(gate); !r) return r;
  std::string text = gate.closed ? "closed\n" : "open\n";
  if (gate.closed) {
    std::string reason = gate.reason;
    for (auto& c : reason) {
      if (c == '\n') c = ' ';
    }
    text += "reason=" + reason + "\n";
    if (gate.run_id) text += "run=" + std::to_string(*gate.run_id) + "\n";
  }
  return base::write_file_atomic(gate_file_path(state_dir), text, 0644);
}

std::string invoking_user() {
  const char* sudo = std::getenv("SUDO_USER");
  struct passwd* pw = ::getpwuid(::getuid());
  std::string me = pw != nullptr ? pw->pw_name : "uid " + std::to_string(::getuid());
  if (sudo != nullptr && *sudo != '\0') return std::string(sudo) + " via sudo";
  return me;
}

}  // namespace guard
