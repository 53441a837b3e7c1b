// The crash-safe state store: runs (with their phase), reports and findings, baselines,
// snapshots, the reboot gate and boot trials, in one SQLite database
// (/var/lib/upgrade-guard/state.db, WAL, synchronous=FULL).
//
// The contract that makes recovery possible: every write is one transaction, committed
// before the function returns. A guard killed at any point (kill -9, power loss) leaves
// the database as it was after the last returned call.
//
// Only guard/state.cc talks to SQLite; everything here is plain data and Result<T>.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "checks/report.h"

struct sqlite3;
struct sqlite3_stmt;

namespace guard {

// ---- Runs ---------------------------------------------------------------------------------

// The steps of a guarded run, in order. Stored as text ("post-checks").
enum class RunPhase { preflight, baseline, snapshot, command, changes, post_checks, verdict, rollback, done };
// How a run ended. Stored as text ("rolled-back").
enum class RunOutcome { passed, rolled_back, gated, warned, refused, interrupted, failed };

[[nodiscard]] const char* to_string(RunPhase p);    // RunPhase::post_checks -> "post-checks"
[[nodiscard]] const char* to_string(RunOutcome o);  // RunOutcome::rolled_back -> "rolled-back"
[[nodiscard]] base::Result<RunPhase> parse_run_phase(std::string_view s);
[[nodiscard]] base::Result<RunOutcome> parse_run_outcome(std::string_view s);

// One row of `runs`. e.g. {id=12, root="/", command={"apt-get","dist-upgrade"},
// phase=command, outcome=nullopt, pid=4242, hostname="web1", boot_id="1c7e..."}.
struct RunRecord {
  std::int64_t id = 0;
  std::int64_t started_unix = 0;
  std::optional<std::int64_t> finished_unix;  // nullopt while the run is unfinished
  std::string root;                           // host path of the guarded root, e.g. "/"
  std::vector<std::string> command;           // the argv run in the root
  RunPhase phase = RunPhase::preflight;
  std::int64_t phase_changed_unix = 0;
  std::optional<RunOutcome> outcome;
  std::optional<int> exit_code;               // upgrade-guard's exit code for the run
  std::optional<std::string> command_status;  // e.g. "exited 0", "killed by SIGKILL"
  std::optional<std::string> snapshot_id;     // the pre-upgrade snapshot
  std::int64_t pid = 0;                       // the guard process that ran it
  std::string hostname;
  std::string boot_id;  // /proc/sys/kernel/random/boot_id when the run began
  std::string message;  // the last word on the run, e.g. "libfoo.so.1 missing; rolled back"
};

// True when the guard process that began `run` may still be running: the same boot and a
// live pid. A false true is possible after pid reuse; a false false is not. e.g. the
// recover command treats an unfinished run whose process is gone as interrupted.
[[nodiscard]] bool run_process_alive(const RunRecord& run);
// This boot's id, from /proc/sys/kernel/random/boot_id; empty when unreadable.
[[nodiscard]] std::string current_boot_id();

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

// One snapshot the guard knows of. e.g. {id="20260122-101500-run12", backend="btrfs",
// label="pre run 12", location="/.snapshots/upgrade-guard/20260122-101500-run12", root="/"}.
struct SnapshotRecord {
  std::string id;
  std::string backend;  // "btrfs", "none"...
  std::string label;
  std::string location;  // where the backend keeps it (host path or backend-specific name)
  std::string root;      // host path of the root it was taken of
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

// ---- The store ----------------------------------------------------------------------------

// Effective connection settings, for diagnostics and tests.
// e.g. {journal_mode="wal", synchronous=2 (FULL), foreign_keys=true, busy_timeout_ms=5000, schema_version=2}.
struct StoreSettings {
  std::string journal_mode;
  int synchronous = 0;
  bool foreign_keys = false;
  int busy_timeout_ms = 0;
  int schema_version = 0;
};

// Deleters for the SQLite handles; defined in state.cc, the only file that includes sqlite3.h.
struct CloseDatabase {
  void operator()(sqlite3* db) const;
};
struct FinalizeStatement {
  void operator()(sqlite3_stmt* stmt) const;
};

class StateStore {
 public:
  // The schema version this program writes (PRAGMA user_version after open()).
  static constexpr int kSchemaVersion = 2;
  // The database's file name inside the state directory.
  static constexpr const char* kFileName = "state.db";

  // Opens (creating when missing: directory 0700, file 0600) <state_dir>/state.db and
  // migrates it to kSchemaVersion. A database newer than this program, a file that is not
  // SQLite, or one failing PRAGMA quick_check is an error naming the file; such a file is
  // never rewritten. e.g. open("/var/lib/upgrade-guard").
  [[nodiscard]] static base::Result<StateStore> open(const std::string& state_dir);
  // Like open() but migrates only up to `version` (>= 1): for migration tests.
  [[nodiscard]] static base::Result<StateStore> open_at_version_for_test(const std::string& state_dir, int version);
  // <state_dir>/state.db, e.g. "/var/lib/upgrade-guard/state.db".
  [[nodiscard]] static std::string database_path(const std::string& state_dir);

  StateStore(StateStore&&) noexcept;
  StateStore& operator=(StateStore&&) noexcept;
  ~StateStore();

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] base::Result<StoreSettings> settings() const;
  // PRAGMA quick_check; an error naming the file unless it says "ok".
  [[nodiscard]] base::Result<void> quick_check() const;

  // Runs `body` in one transaction: every store call inside it joins it, and nothing is
  // committed unless `body` succeeds. e.g. finish a run, save its baseline and mark its
  // snapshot known-good atomically.
  [[nodiscard]] base::Result<void> transaction(const std::function<base::Result<void>()>& body);

  // Runs: a run is created in phase preflight with the host's name and boot id.
  [[nodiscard]] base::Result<std::int64_t> begin_run(const std::string& root, const std::vector<std::string>& argv,
                                                     std::int64_t pid);
  // Records the phase and commits before returning (the crash-safety contract).
  [[nodiscard]] base::Result<void> set_phase(std::int64_t run_id, RunPhase phase);
  [[nodiscard]] base::Result<void> set_run_snapshot(std::int64_t run_id, const std::string& snapshot_id);
  // e.g. set_command_status(12, "exited 100").
  [[nodiscard]] base::Result<void> set_command_status(std::int64_t run_id, const std::string& status);
  [[nodiscard]] base::Result<void> set_run_message(std::int64_t run_id, const std::string& message);
  // Sets outcome, exit code, message, finished_unix and phase done.
  [[nodiscard]] base::Result<void> finish_run(std::int64_t run_id, RunOutcome outcome, int exit_code,
                                              const std::string& message);
  // Finishes the run as interrupted with no exit code and the message "interrupted during
  // <phase>", keeping the phase it died in (the caller has checked that its pid is gone).
  [[nodiscard]] base::Result<void> mark_interrupted(std::int64_t run_id);
  // Takes a finished run back to phase command (outcome and exit code cleared) with `pid` as
  // its process: apt's hook mode, when one apt process invokes dpkg again after a run's
  // post-checks (unattended-upgrades installs in minimal steps), continues the same run.
  [[nodiscard]] base::Result<void> reopen_run(std::int64_t run_id, std::int64_t pid);
  // nullopt when no such run.
  [[nodiscard]] base::Result<std::optional<RunRecord>> get_run(std::int64_t run_id) const;
  // Newest first; limit <= 0 means all.
  [[nodiscard]] base::Result<std::vector<RunRecord>> list_runs(int limit) const;
  // Runs without finished_unix, oldest first. The caller decides whether their pid lives.
  [[nodiscard]] base::Result<std::vector<RunRecord>> unfinished_runs() const;
  // Records what the run's command changed (replacing what was recorded before).
  [[nodiscard]] base::Result<void> save_package_changes(std::int64_t run_id, const std::vector<PackageChange>& changes);
  // Sorted by package name.
  [[nodiscard]] base::Result<std::vector<PackageChange>> package_changes(std::int64_t run_id) const;
  // The phase transitions of a run, oldest first.
  [[nodiscard]] base::Result<std::vector<PhaseRecord>> run_phases(std::int64_t run_id) const;

  // Reports: stored as the JSON of checks::to_json, with one findings row per finding.
  [[nodiscard]] base::Result<std::int64_t> save_report(std::optional<std::int64_t> run_id, ReportStage stage,
                                                       const checks::Report& report);
  // The newest report of a run at a stage; nullopt when none.
  [[nodiscard]] base::Result<std::optional<StoredReport>> load_report(std::int64_t run_id, ReportStage stage) const;
  // The newest report of a root at a stage across runs (e.g. the last audit of "/").
  [[nodiscard]] base::Result<std::optional<StoredReport>> latest_report(const std::string& root,
                                                                        ReportStage stage) const;
  // The findings stored for a run, in report then finding order.
  [[nodiscard]] base::Result<std::vector<FindingRecord>> findings_for_run(std::int64_t run_id) const;

  // Baselines: the accepted finding keys of a root (replaced as a whole).
  [[nodiscard]] base::Result<void> save_baseline(const std::string& root, const std::vector<std::string>& keys,
                                                 std::optional<std::int64_t> run_id = std::nullopt);
  // nullopt when the root has no baseline yet (different from an empty one).
  [[nodiscard]] base::Result<std::optional<std::vector<std::string>>> load_baseline(const std::string& root) const;

  // Snapshots.
  [[nodiscard]] base::Result<void> record_snapshot(const SnapshotRecord& snapshot);
  [[nodiscard]] base::Result<std::optional<SnapshotRecord>> get_snapshot(const std::string& id) const;
  // Newest first; an empty root lists every root's snapshots.
  [[nodiscard]] base::Result<std::vector<SnapshotRecord>> list_snapshots(const std::string& root = {}) const;
  [[nodiscard]] base::Result<void> set_snapshot_state(const std::string& id, SnapshotState state);
  [[nodiscard]] base::Result<void> set_snapshot_known_good(const std::string& id, bool known_good);
  // A reason pins the snapshot against pruning; nullopt unpins.
  [[nodiscard]] base::Result<void> set_snapshot_pinned(const std::string& id, std::optional<std::string> reason);
  // The newest present known-good snapshot of `root`.
  [[nodiscard]] base::Result<std::optional<SnapshotRecord>> last_known_good(const std::string& root) const;

  // Gate: one row; every change is also appended to gate_events.
  [[nodiscard]] base::Result<GateState> get_gate() const;
  // Stores `gate` (changed_unix is set to now when 0).
  [[nodiscard]] base::Result<void> set_gate(const GateState& gate);
  // Newest first; limit <= 0 means all.
  [[nodiscard]] base::Result<std::vector<GateEvent>> gate_events(int limit) const;

  // Boot trials.
  [[nodiscard]] base::Result<std::int64_t> create_boot_trial(std::optional<std::int64_t> run_id,
                                                             const std::string& snapshot_id);
  [[nodiscard]] base::Result<std::optional<BootTrialRecord>> get_boot_trial(std::int64_t id) const;
  // The newest trial still pending, if any.
  [[nodiscard]] base::Result<std::optional<BootTrialRecord>> pending_boot_trial() const;
  // Every trial of run `run_id`, newest first: e.g. the failed trial that was rolled back
  // and the trial of the restored root after it.
  [[nodiscard]] base::Result<std::vector<BootTrialRecord>> boot_trials_of_run(std::int64_t run_id) const;
  // Increments attempts and commits; returns the new count.
  [[nodiscard]] base::Result<int> record_boot_attempt(std::int64_t id);
  [[nodiscard]] base::Result<void> set_boot_trial_state(std::int64_t id, BootTrialState state,
                                                        const std::string& message = {});

 private:
  using DbPtr = std::unique_ptr<sqlite3, CloseDatabase>;
  StateStore(DbPtr db, std::string path);
  static base::Result<StateStore> open_impl(const std::string& state_dir, int target_version);

  class Statement;
  class TransactionGuard;
  [[nodiscard]] base::Result<Statement> prepare(std::string_view sql, std::string_view context) const;
  [[nodiscard]] base::Result<void> exec(const char* sql, std::string_view context) const;
  [[nodiscard]] base::Error error(std::string_view call, std::string_view context) const;
  [[nodiscard]] base::Result<void> enable_wal();
  [[nodiscard]] base::Result<void> migrate(int target_version);
  // Runs one UPDATE that must change exactly one row, in its own transaction.
  [[nodiscard]] base::Result<void> update_one(std::string_view sql, const std::string& context,
                                              const std::function<void(Statement&)>& bind);
  [[nodiscard]] base::Result<void> finish_impl(std::int64_t run_id, RunOutcome outcome, std::optional<int> exit_code,
                                               const std::string& message);
  [[nodiscard]] base::Result<std::vector<RunRecord>> query_runs(std::string_view where_and_order,
                                                                std::optional<std::int64_t> arg) const;
  [[nodiscard]] base::Result<std::optional<StoredReport>> query_report(std::string_view where,
                                                                       const std::string& text_arg,
                                                                       std::int64_t int_arg, ReportStage stage) const;
  [[nodiscard]] base::Result<std::vector<SnapshotRecord>> query_snapshots(std::string_view where,
                                                                          const std::string& arg) const;
  [[nodiscard]] base::Result<std::optional<BootTrialRecord>> query_boot_trial(std::string_view where,
                                                                              std::optional<std::int64_t> arg) const;
  // limit -1: all.
  [[nodiscard]] base::Result<std::vector<BootTrialRecord>> query_boot_trials(std::string_view where,
                                                                             std::optional<std::int64_t> arg,
                                                                             int limit) const;

  DbPtr db_;
  std::string path_;
  int transaction_depth_ = 0;
};

}  // namespace guard
