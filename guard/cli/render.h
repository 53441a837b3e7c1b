// How the engines' results look to the operator: the human report and the JSON ("schema": 1)
// of a run, a recover, a manual rollback and a boot check.
#pragma once

#include <cstdint>
#include <string>

#include "guard/boot/boot_check.h"
#include "guard/run/pipeline.h"

namespace guard::cli {

// "2026-01-22 10:15:00" in local time (like journalctl), or "2026-01-22T10:15:00Z" in UTC.
[[nodiscard]] std::string local_time(std::int64_t unix_seconds);
[[nodiscard]] std::string iso_utc(std::int64_t unix_seconds);

// The human report of a run: what changed, what broke, what was done, how to undo it.
[[nodiscard]] std::string render_run_summary(const run::RunSummary& summary, bool color, bool verbose = false);
// The same as JSON ("schema": 1).
[[nodiscard]] std::string render_run_json(const run::RunSummary& summary);

[[nodiscard]] std::string render_boot_check(const boot::BootCheckSummary& summary);
[[nodiscard]] std::string render_boot_check_json(const boot::BootCheckSummary& summary);

}  // namespace guard::cli
