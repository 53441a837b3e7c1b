#include "guard/gate/gate.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include "base/atomic_file.h"
#include "guard/gate/enforcement.h"

namespace guard::gate {
namespace {

void enforce_now(const state::GateState& gate, const Enforcement& e, GateChange& change) {
  auto outcome = gate.closed ? apply_reboot_block(e.root, gate.reason, e.bus) : remove_reboot_block(e.root, e.bus);
  if (!outcome) {
    change.problems.push_back("the reboot block was not changed: " + outcome.error().to_string());
    return;
  }
  change.enforced = !outcome->note.empty() ? outcome->note
                    : gate.closed          ? "reboot, poweroff, halt and kexec are refused until the gate opens"
                                           : "reboots are allowed again";
}

void record(state::StateStore& store, const state::GateState& gate, GateChange& change) {
  if (auto r = store.set_gate(gate); !r) {
    change.problems.push_back(r.error().to_string());
    return;
  }
  change.recorded = true;
}

}  // namespace

std::string GateChange::summary() const {
  std::string out = enforced;
  for (const auto& p : problems) out += (out.empty() ? "" : "; ") + p;
  if (out.empty()) out = "the gate is recorded; nothing enforced for a root that is not running";
  return out;
}

GateChange publish_gate(const std::string& state_dir, const state::GateState& gate,
                        const std::optional<Enforcement>& enforce) {
  GateChange change;
  change.recorded = true;
  if (auto w = base::write_file_atomic(gate_file_path(state_dir), render_gate_file(gate), 0644); !w)
    change.problems.push_back(w.error().to_string());
  else
    change.file_written = true;
  if (enforce) enforce_now(gate, *enforce, change);
  return change;
}

GateChange change_gate(state::StateStore& store, const std::string& state_dir, const state::GateState& gate,
                       const std::optional<Enforcement>& enforce) {
  if (gate.closed) {
    GateChange change = publish_gate(state_dir, gate, enforce);
    change.recorded = false;
    record(store, gate, change);
    return change;
  }
  GateChange change;
  record(store, gate, change);
  if (!change.recorded) return change;  // the row still says closed: the file must too
  GateChange published = publish_gate(state_dir, gate, enforce);
  published.problems.insert(published.problems.begin(), change.problems.begin(), change.problems.end());
  return published;
}

state::GateState effective_gate(const state::GateState& row, const GateFile& file) {
  if (row.closed || !file.closed) return row;
  state::GateState g;
  g.closed = true;
  g.reason = (file.reason.empty() ? std::string("closed") : file.reason) +
             " (the gate file says closed while the state database says open: a gate change was interrupted; "
             "`upgrade-guard gate open` opens both)";
  g.run_id = file.run_id;
  g.changed_by = "the gate file";
  return g;
}

base::Result<bool> closed_by_run(const state::StateStore& store, const std::string& state_dir, std::int64_t run_id) {
  auto row = store.get_gate();
  if (!row) return base::fail(row.error());
  if (row->closed && row->run_id == run_id) return true;
  auto file = read_gate_file(gate_file_path(state_dir));
  if (!file) return base::fail(file.error());
  return !row->closed && file->closed && file->run_id == run_id;
}

std::string invoking_user() {
  const char* sudo = std::getenv("SUDO_USER");
  if (sudo != nullptr && *sudo != '\0') return std::string(sudo) + " via sudo";
  struct passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr ? pw->pw_name : "uid " + std::to_string(::getuid());
}

}  // namespace guard::gate
