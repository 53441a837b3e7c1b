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

// Closes or opens the gate: the state DB row (with an event), then the gate file, then, when
// `live` (the gate is the running system's), the reboot block at once: systemd drop-ins with
// RefuseManualStart=yes and a daemon-reload (upgrade-guard-gate.service adds the logind
// inhibitor when the gate file changes). Returns what was enforced, for the operator.
// e.g. change_gate(store, "/var/lib/upgrade-guard", {closed=true, reason="post-checks failed", run_id=12}, true).
[[nodiscard]] base::Result<std::string> change_gate(StateStore& store, const std::string& state_dir, GateState gate,
                                                    bool live);

// Who is asking, for the record: "alice via sudo", "root".
[[nodiscard]] std::string invoking_user();

}  // namespace guard
