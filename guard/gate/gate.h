// The pre-reboot gate: its state (the state database's gate row, mirrored in the gate file)
// and every change of it. Enforcing a closed gate on a running system (systemd drop-ins, the
// logind inhibitor) is guard/gate/enforcement.h.
//
// The order of a change is what keeps a crash on the safe side: closing writes the gate file
// and applies the reboot block before the database row; opening writes the row first and the
// file after. A crash between the two leaves the gate closed in one of them, and readers take
// closed from either (effective_gate).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "guard/gate/gate_bus.h"
#include "guard/gate/gate_file.h"
#include "guard/state/store.h"

namespace guard::gate {

// Where a gate change is enforced at once: the running system's root (whose
// /run/systemd/system gets the drop-ins) and the bus that reloads systemd. e.g. {Root "/", bus}.
struct Enforcement {
  const base::Root& root;
  GateBus* bus = nullptr;
};

// What a gate change did, for the operator. `recorded` is false when the state database could
// not take it; `problems` says what failed, each naming the file or call.
struct GateChange {
  bool recorded = false;
  bool file_written = false;
  std::string enforced;  // e.g. "systemd refuses reboot, poweroff, halt, kexec and soft-reboot"
  std::vector<std::string> problems;

  // One line: what was enforced, then the problems. e.g. "reboots are allowed again".
  [[nodiscard]] std::string summary() const;
};

// Closes or opens the gate: the database row (with an event), the gate file, and with
// `enforce` the reboot block at once. Closing is done as far as it can be even when a step
// fails (a closed file alone already stops molly-guard and the gate holder).
// e.g. change_gate(store, "/var/lib/upgrade-guard", {closed=true, reason=..., run_id=12}, Enforcement{root, bus}).
[[nodiscard]] GateChange change_gate(state::StateStore& store, const std::string& state_dir,
                                     const state::GateState& gate, const std::optional<Enforcement>& enforce);

// The file and enforcement half of a change whose database row the caller wrote inside its
// own transaction (a passing run opening the gate it closed): call after the commit.
[[nodiscard]] GateChange publish_gate(const std::string& state_dir, const state::GateState& gate,
                                      const std::optional<Enforcement>& enforce);

// The gate as `gate status` reads it: closed when the database row or the gate file says
// closed. e.g. an open row and a closed file (a change interrupted half-way) is closed, with a
// reason saying so.
[[nodiscard]] state::GateState effective_gate(const state::GateState& row, const GateFile& file);

// True when run `run_id` closed the gate, by the database row or by the gate file alone (a
// close whose row could not be written): a run that ends well opens what it closed.
[[nodiscard]] base::Result<bool> closed_by_run(const state::StateStore& store, const std::string& state_dir,
                                               std::int64_t run_id);

// Who is asking, for the record: "alice via sudo", "root".
[[nodiscard]] std::string invoking_user();

}  // namespace guard::gate
