// How the engines' results look to the operator: the human report and the JSON ("schema": 1)
// of a run, a recover, a manual rollback and a boot check.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "guard/boot/boot_check.h"
#include "guard/boot/trial_status.h"
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

// What `boot-check --status` found: the state and why, or (report nullopt) why it is unknown.
struct BootStatusView {
  std::optional<boot::TrialStatusReport> report;
  boot::TrialRecords records;
  std::optional<boot::BootFacts> boot;
  std::string error;  // why the state is unknown, e.g. "... state.db: database is locked"
  std::int64_t waited_ms = 0;
};
// Its exit code: boot::exit_code of the state; 4 when unknown.
[[nodiscard]] int boot_status_exit_code(const BootStatusView& view);
// One line, e.g. "trial boot: blessed (trial 3, run 12, upgrade of 3 packages): this boot passed its checks".
[[nodiscard]] std::string render_boot_status(const BootStatusView& view);
// JSON ("schema": 1) with "state" (the words of boot::to_string, or "unknown"), "settled", the
// trial with its times, the run and this boot's facts.
[[nodiscard]] std::string render_boot_status_json(const BootStatusView& view);

}  // namespace guard::cli
