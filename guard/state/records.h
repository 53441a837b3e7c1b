// What the state store holds, as plain data: runs, reports and findings, snapshots, the gate,
// boot trials and rollbacks, and the enums stored as text. No SQLite here (guard/state/store.h
// is the store itself).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "checks/report.h"

namespace guard::state {

// ---- Runs ---------------------------------------------------------------------------------

// The steps of a guarded run, in order. Stored as text ("post-checks").
enum class RunPhase { preflight, baseline, snapshot, command, changes, post_checks, verdict, rollback, done };
// How a run ended. Stored as text ("rolled-back"). command_failed: the guarded command failed
// (non-zero exit, signal, timeout) and the checks found no regression.
enum class RunOutcome { passed, rolled_back, gated, warned, refused, interrupted, failed, command_failed };
// What made the run: `upgrade-guard run -- CMD`, apt's hooks, or `upgrade-guard rollback`.
enum class RunKind { run, hook, rollback };

[[nodiscard]] const char* to_string(RunPhase p);    // RunPhase::post_checks -> "post-checks"
[[nodiscard]] const char* to_string(RunOutcome o);  // RunOutcome::rolled_back -> "rolled-back"
[[nodiscard]] const char* to_string(RunKind k);     // RunKind::hook -> "hook"
[[nodiscard]] base::Result<RunPhase> parse_run_phase(std::string_view s);
[[nodiscard]] base::Result<RunOutcome> parse_run_outcome(std::string_view s);
[[nodiscard]] base::Result<RunKind> parse_run_kind(std::string_view s);

// What begin_run records. e.g. {root="/", command={"apt-get","dist-upgrade"}, pid=4242,
// kind=run, hostname="web1", boot_id="1c7e..."}.
struct RunStart {
  std::string root;
  std::vector<std::string> command;
  std::int64_t pid = 0;  // the process that owns the run: the guard, or apt in hook mode
  RunKind kind = RunKind::run;
  std::string hostname;
  std::string boot_id;  // /proc/sys/kernel/random/boot_id when the run began
};

// One row of `runs`. e.g. {id=12, root="/", command={"apt-get","dist-upgrade"},
// phase=command, outcome=nullopt, pid=4242, hostname="web1", boot_id="1c7e..."}.
struct RunRecord {
  std::int64_t id = 0;
  RunKind kind = RunKind::run;
  std::int64_t started_unix = 0;
  std::optional<std::int64_t> finished_unix;  // nullopt while the run is unfinished
  std::string root;                           // host path of the guarded root, e.g. "/"
  std::vector<std::string> command;           // the argv run in the root
  RunPhase phase = RunPhase::preflight;
  std::int64_t phase_changed_unix = 0;
  std::optional<RunOutcome> outcome;
  std::optional<int> exit_code;               // upgrade-guard's exit code for the run
  std::optional<std::string> command_status;  // e.g. "exited with status 0", "killed by signal 9"
  std::optional<std::string> snapshot_id;     // the pre-upgrade snapshot (a rollback: its target)
  std::int64_t pid = 0;                       // the process that owns the run
  std::string hostname;
  std::string boot_id;
  std::string message;  // the last word on the run, e.g. "libfoo.so.1 missing; rolled back"
};

// One phase transition of a run, for timing. e.g. {phase=command, at_unix_ms=1700000000123}.
struct PhaseRecord {
  RunPhase phase = RunPhase::preflight;
  std::int64_t at_unix_ms = 0;
};

// One package the run's command changed, from the dpkg status diff.
// e.g. {package="libc6:amd64", old_version="2.36-9+deb12u3", new_version="2.36-9+deb12u4"};
// an empty old_version means installed, an empty new_version removed.
struct PackageChange {
  std::string package;
  std::string old_version;
  std::string new_version;
};

// ---- Reports and findings -----------------------------------------------------------------

// Which report of a run (or of a standalone command) it is.
enum class ReportStage { baseline, post, check, audit, restored };
[[nodiscard]] const char* to_string(ReportStage s);
[[nodiscard]] base::Result<ReportStage> parse_report_stage(std::string_view s);

// One finding as stored for `history`. e.g. {run_id=12, stage=post, check="libraries",
// severity="block", path="/usr/bin/curl", package="curl", known=false}.
struct FindingRecord {
  std::int64_t report_id = 0;
  std::optional<std::int64_t> run_id;
  ReportStage stage = ReportStage::check;
  std::string check;
  std::string severity;  // "block", "warn", "info"
  std::string path;
  std::string package;
  std::string message;
  std::string hint;
  std::string key;  // checks::Finding::key()
  bool known = false;
};

// A stored report with its row data. e.g. {id=7, run_id=12, stage=post, created_unix=...}.
struct StoredReport {
  std::int64_t id = 0;
  std::optional<std::int64_t> run_id;
  ReportStage stage = ReportStage::check;
  std::string root;
  std::int64_t created_unix = 0;
  checks::Report report;
};

// ---- Snapshots ----------------------------------------------------------------------------

enum class SnapshotState { present, deleting, deleted };
[[nodiscard]] const char* to_string(SnapshotState s);
[[nodiscard]] base::Result<SnapshotState> parse_snapshot_state(std::string_view s);

// One snapshot the guard knows of. e.g. {id="20260122-101500-pre-run12", backend="btrfs",
// label="pre-run12", location="/run/upgrade-guard/top/@upgrade-guard/20260122-101500-pre-run12", root="/"}.
struct SnapshotRecord {
  std::string id;
  std::string backend;  // "btrfs", "copy"
  std::string label;
  std::string location;  // where the backend keeps it (host path or backend-specific name)
  std::string root;      // the root key it was taken of
  std::int64_t created_unix = 0;
  std::optional<std::int64_t> run_id;
  SnapshotState state = SnapshotState::present;
  bool known_good = false;
  std::optional<std::string> pinned_reason;  // set: never pruned, e.g. "broken root of run 12"
};

// ---- Gate ---------------------------------------------------------------------------------

// The reboot gate. Open (closed=false) when no row was ever written.
// e.g. {closed=true, reason="post-checks failed", run_id=12, changed_by="run 12"}.
struct GateState {
  bool closed = false;
  std::string reason;
  std::optional<std::int64_t> run_id;
  std::int64_t changed_unix = 0;
  std::string changed_by;  // who: "run 12", "root via gate open --force", "audit"
};

// One change of the gate, newest first in gate_events().
struct GateEvent {
  std::int64_t id = 0;
  bool closed = false;
  std::string reason;
  std::optional<std::int64_t> run_id;
  std::int64_t at_unix = 0;
  std::string changed_by;
};

// ---- Boot trials --------------------------------------------------------------------------

enum class BootTrialState { pending, blessed, rolled_back, failed };
[[nodiscard]] const char* to_string(BootTrialState s);  // rolled_back -> "rolled-back"
[[nodiscard]] base::Result<BootTrialState> parse_boot_trial_state(std::string_view s);

// The next boot after a guarded upgrade is a trial. `attempts` counts boots that started
// checking it, so an automatic rollback happens at most once per upgrade.
struct BootTrialRecord {
  std::int64_t id = 0;
  std::optional<std::int64_t> run_id;
  std::string snapshot_id;  // the snapshot to roll back to if the trial fails
  std::int64_t created_unix = 0;
  std::int64_t updated_unix = 0;
  int attempts = 0;
  BootTrialState state = BootTrialState::pending;
  std::string message;
};

// ---- Rollbacks ----------------------------------------------------------------------------

// running: recorded before the snapshot backend is asked, until it says done or failed (a
// guard killed meanwhile leaves it running); failed: the backend failed (e.g. no space), the
// root is as the backend left it and `recover` tries again; abandoned: the operator said so.
enum class RollbackState { running, done, failed, abandoned };
[[nodiscard]] const char* to_string(RollbackState s);
[[nodiscard]] base::Result<RollbackState> parse_rollback_state(std::string_view s);

// One rollback of a root to a snapshot, by a run, by `upgrade-guard rollback` or by boot-check.
// e.g. {id=3, run_id=12, root="/", snapshot_id="20260122-101500-pre-run12", state=done,
// journal="/run/upgrade-guard/top/@upgrade-guard/rollback-20260122-101702.journal",
// broken="@upgrade-guard/rollback-20260122-101702-broken"}.
struct RollbackRecord {
  std::int64_t id = 0;
  std::optional<std::int64_t> run_id;
  std::string root;
  std::string snapshot_id;
  std::int64_t started_unix = 0;
  std::int64_t updated_unix = 0;
  RollbackState state = RollbackState::running;
  std::string journal;  // the backend's journal, once known
  std::string broken;   // where the replaced root is kept, once known
  std::string message;
  std::int64_t pid = 0;  // the process doing it, and its boot: a running record whose process is gone was interrupted
  std::string boot_id;

  // The tag the snapshot backend stores in the rollback's journal (RollbackOptions::owner), so
  // that a journal found after a crash is matched to its record. e.g. "upgrade-guard rollback 3".
  [[nodiscard]] std::string owner() const;
};

// ---- The store's own settings -------------------------------------------------------------

// Effective connection settings, for diagnostics and tests.
// e.g. {journal_mode="wal", synchronous=2 (FULL), foreign_keys=true, busy_timeout_ms=5000, schema_version=3}.
struct StoreSettings {
  std::string journal_mode;
  int synchronous = 0;
  bool foreign_keys = false;
  int busy_timeout_ms = 0;
  int schema_version = 0;
};

}  // namespace guard::state
