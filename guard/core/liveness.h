// Whether the process that owns an unfinished run still lives, and the host facts a run
// records to tell that later (its boot id and host name).
#pragma once

#include <string>

#include "guard/state/records.h"

namespace guard {

// This boot's id, from /proc/sys/kernel/random/boot_id; empty when unreadable.
[[nodiscard]] std::string current_boot_id();
// gethostname(2); empty when it fails.
[[nodiscard]] std::string host_name();

// True when the process that owns `run` may still be running: the same boot and a live pid.
// A false true is possible after pid reuse; a false false is not. e.g. recover treats an
// unfinished run whose process is gone as interrupted.
[[nodiscard]] bool run_process_alive(const state::RunRecord& run);
// The same for a rollback recorded as running.
[[nodiscard]] bool rollback_process_alive(const state::RollbackRecord& rollback);

}  // namespace guard
