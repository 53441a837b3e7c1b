// The gate file `<state_dir>/gate` (e.g. /var/lib/upgrade-guard/gate): the gate's state for
// those that do not read the state database (the molly-guard hook, the gate holder service,
// scripts), written and parsed here only:
//   closed
//   reason=3 new blocking findings after `apt-get -y upgrade`; reboot gate closed
//   run=12
// or "open". Written atomically, 0644.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "guard/state/records.h"

namespace guard::gate {

// <state_dir>/gate, e.g. "/var/lib/upgrade-guard/gate".
[[nodiscard]] std::string gate_file_path(const std::string& state_dir);

struct GateFile {
  bool closed = false;
  std::string reason;                 // empty when the file has none
  std::optional<std::int64_t> run_id;  // the run that closed it, when one did
};

// The file's text for `gate` (a newline in the reason becomes a space, so it stays one line).
[[nodiscard]] std::string render_gate_file(const state::GateState& gate);

// Parses the gate file's bytes. An empty text (a missing file) is open; a first line that is
// neither "open" nor "closed" counts as closed, so a damaged file errs on the safe side.
[[nodiscard]] GateFile parse_gate_file(std::string_view text);

// Reads and parses `path` with plain open(2) (the live system's own state, not a checked
// root). A missing file is an open gate; one that cannot be read is an error (never "open").
// e.g. read_gate_file("/var/lib/upgrade-guard/gate").
[[nodiscard]] base::Result<GateFile> read_gate_file(const std::string& path);

}  // namespace guard::gate
