// The pre-reboot gate: its persisted state (state DB + a gate file for hooks) and the
// changes of it.
#pragma once

#include <optional>
#include <string>

#include "base/error.h"
#include "guard/state.h"

namespace guard {

// The gate file beside the database, read by the molly-guard hook and the gate holder
// service: "closed\nreason=...\nrun=12\n" or "open\n". e.g. /var/lib/upgrade-guard/gate.
[[nodiscard]] std::string gate_file_path(const std::string& state_dir);

// Closes or opens the gate: the state DB row (with an event), then the gate file, then the
// reboot block where one can be enforced (systemd drop-ins on a live system).
// e.g. set_gate(store, state_dir, {closed=true, reason="post-checks failed", run_id=12, changed_by="run 12"}).
[[nodiscard]] base::Result<void> change_gate(StateStore& store, const std::string& state_dir, GateState gate);

// Who is asking, for the record: "alice via sudo", "root".
[[nodiscard]] std::string invoking_user();

}  // namespace guard
