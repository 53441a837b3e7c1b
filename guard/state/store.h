// The crash-safe state store: runs (with their phase), reports and findings, baselines,
// snapshots, the reboot gate, boot trials and rollbacks, in one SQLite database
// (/var/lib/upgrade-guard/state.db, a rollback journal, synchronous=FULL; never memory-mapped,
// see use_rollback_journal in db.cc).
//
// The contract that makes recovery possible: every write is one transaction, committed
// before the function returns (or, inside transaction(), with the outermost body). A guard
// killed at any point (kill -9, power loss) leaves the database as it was after the last
// committed call.
//
// Only guard/state/*.cc talk to SQLite, split by table over db.cc (connection, statements,
// transactions) and schema.cc (migrations); everything here is plain data and Result<T>.
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
#include "guard/state/records.h"

struct sqlite3;
struct sqlite3_stmt;

namespace guard::state {

// Deleters for the SQLite handles; defined in db.cc.
struct CloseDatabase {
  void operator()(sqlite3* db) const;
};
struct FinalizeStatement {
  void operator()(sqlite3_stmt* stmt) const;
};

class StateStore {
 public:
  // The schema version this program writes (PRAGMA user_version after open()).
  static constexpr int kSchemaVersion = 3;
  // The database's file name inside the state directory.
  static constexpr const char* kFileName = "state.db";
  // Written (atomically) beside state.db once its first migration committed: from then on a
  // missing or empty state.db is a lost one, never a fresh start. e.g.
  // /var/lib/upgrade-guard/state.db.created.
  static constexpr const char* kMarkerName = "state.db.created";

  // Whether <state_dir> holds a state database: true when state.db exists and is not empty;
  // false when there is legitimately none yet (a fresh install: no state.db and no sign that
  // there ever was one, neither the marker nor a gate file); an error naming the file when it
  // was lost (missing or 0 bytes while the marker or the gate file exists), is not a regular
  // file, or cannot be looked at (not root, the state directory is a file). Changes nothing.
  // e.g. present("/var/lib/upgrade-guard").
  [[nodiscard]] static base::Result<bool> present(const std::string& state_dir);

  // Opens (creating when missing: directory 0700, file 0600) <state_dir>/state.db and
  // migrates it to kSchemaVersion. A database newer than this program, a file that is not
  // SQLite, or one failing PRAGMA quick_check is an error naming the file; such a file is
  // never rewritten. A lost database (see present()) is an error too: it is never replaced by
  // a new, empty one. The state directory and its parents must pass base::check_trusted_dir.
  // e.g. open("/var/lib/upgrade-guard").
  [[nodiscard]] static base::Result<StateStore> open(const std::string& state_dir);
  // True when `dir` (or, when it does not exist yet, its nearest existing parent) is on a
  // read-only filesystem, e.g. "/var/lib/upgrade-guard" on a boot from a read-only snapshot:
  // the store can then only be opened read-only.
  [[nodiscard]] static bool on_read_only_filesystem(std::string dir);
  // Opens an existing <state_dir>/state.db for reading only: it never creates, migrates or
  // writes anything (no journal, -wal or -shm either when the directory is read-only, e.g. a
  // boot from a read-only btrfs snapshot). A database with a hot journal (a transaction that
  // never finished), or one still in WAL (upgrade-guard 0.0.9) whose -shm cannot be created, is
  // read from a private copy of the database and its journal or -wal (under $TMPDIR, /run or
  // /tmp, removed again with the store), so it reads as after its last commit; without either
  // it is opened immutable. Every
  // write then fails naming the read-only store. A database older than this program is
  // migrated by open() when its directory is writable, else an error. A missing file is an
  // error (errno ENOENT). e.g. open_read_only("/var/lib/upgrade-guard").
  [[nodiscard]] static base::Result<StateStore> open_read_only(const std::string& state_dir);
  // Like open() but migrates only up to `version` (>= 1): for migration tests.
  [[nodiscard]] static base::Result<StateStore> open_at_version_for_test(const std::string& state_dir, int version);
  // <state_dir>/state.db, e.g. "/var/lib/upgrade-guard/state.db".
  [[nodiscard]] static std::string database_path(const std::string& state_dir);

  StateStore(StateStore&&) noexcept;
  StateStore& operator=(StateStore&&) noexcept;
  ~StateStore();

  [[nodiscard]] const std::string& path() const { return path_; }
  // True when opened by open_read_only() (and not migrated by open()).
  [[nodiscard]] bool read_only() const { return read_only_; }
  // How a read-only store was opened, e.g. "read-only", "immutable (read-only filesystem,
  // no write-ahead log)", "from a private copy (read-only filesystem)"; "" when writable.
  [[nodiscard]] const std::string& read_only_mode() const { return read_only_mode_; }
  [[nodiscard]] base::Result<StoreSettings> settings() const;
  // PRAGMA quick_check; an error naming the file unless it says "ok".
  [[nodiscard]] base::Result<void> quick_check() const;

  // Runs `body` in one transaction: every store call inside it joins it, and nothing is
  // committed unless `body` succeeds. e.g. finish a run, save its baseline and mark its
  // snapshot known-good atomically.
  [[nodiscard]] base::Result<void> transaction(const std::function<base::Result<void>()>& body);

  // ---- runs (runs.cc) ----
  // Records a new run in phase preflight; returns its id.
  [[nodiscard]] base::Result<std::int64_t> begin_run(const RunStart& start);
  // Records the phase and commits before returning (the crash-safety contract).
  [[nodiscard]] base::Result<void> set_phase(std::int64_t run_id, RunPhase phase);
  [[nodiscard]] base::Result<void> set_run_snapshot(std::int64_t run_id, const std::string& snapshot_id);
  // e.g. set_command_status(12, "exited with status 100").
  [[nodiscard]] base::Result<void> set_command_status(std::int64_t run_id, const std::string& status);
  [[nodiscard]] base::Result<void> set_run_message(std::int64_t run_id, const std::string& message);
  // Sets outcome, exit code, message, finished_unix and phase done, at `ended_unix_ms` when the
  // run ended before it could be recorded (a live rollback that finished before the reboot whose
  // boot-check records it), else now.
  [[nodiscard]] base::Result<void> finish_run(std::int64_t run_id, RunOutcome outcome, int exit_code,
                                              const std::string& message,
                                              std::optional<std::int64_t> ended_unix_ms = std::nullopt);
  // Rewrites the outcome of a finished run, e.g. a gated run whose failed rollback `recover`
  // completed later: amend_run(12, rolled_back, 3, "rolled back by recover ...").
  [[nodiscard]] base::Result<void> amend_run(std::int64_t run_id, RunOutcome outcome, int exit_code,
                                             const std::string& message);
  // Finishes the run as interrupted with no exit code and the message "interrupted during
  // <phase>: <why>", keeping the phase it died in (the caller has checked that its pid is gone).
  [[nodiscard]] base::Result<void> mark_interrupted(std::int64_t run_id, const std::string& why = {});
  // Takes a finished run back to phase command (outcome and exit code cleared) with `pid` as
  // its process: apt's hook mode, when one apt process invokes dpkg again after a run's
  // post-checks (unattended-upgrades installs in minimal steps), continues the same run.
  [[nodiscard]] base::Result<void> reopen_run(std::int64_t run_id, std::int64_t pid);
  // nullopt when no such run.
  [[nodiscard]] base::Result<std::optional<RunRecord>> get_run(std::int64_t run_id) const;
  // Newest first; limit <= 0 means all.
  [[nodiscard]] base::Result<std::vector<RunRecord>> list_runs(int limit) const;
  // Runs without finished_unix, oldest first. The caller decides whether their pid lives.
  // A row this program cannot read (e.g. a phase written by a newer version) is an error
  // naming the run: an unreadable run must stop a new one, never be skipped.
  [[nodiscard]] base::Result<std::vector<RunRecord>> unfinished_runs() const;
  // Records what the run's command changed (replacing what was recorded before).
  [[nodiscard]] base::Result<void> save_package_changes(std::int64_t run_id, const std::vector<PackageChange>& changes);
  // Sorted by package name.
  [[nodiscard]] base::Result<std::vector<PackageChange>> package_changes(std::int64_t run_id) const;
  // The phase transitions of a run, oldest first.
  [[nodiscard]] base::Result<std::vector<PhaseRecord>> run_phases(std::int64_t run_id) const;

  // ---- reports, findings, baselines (reports.cc) ----
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

  // ---- snapshots (snapshots.cc) ----
  // Records a snapshot; an id recorded already is an error.
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

  // ---- gate (gate.cc) ----
  // One row; every change is also appended to gate_events.
  [[nodiscard]] base::Result<GateState> get_gate() const;
  // Stores `gate` (changed_unix is set to now when 0).
  [[nodiscard]] base::Result<void> set_gate(const GateState& gate);
  // Newest first; limit <= 0 means all.
  [[nodiscard]] base::Result<std::vector<GateEvent>> gate_events(int limit) const;

  // ---- boot trials (boot_trials.cc) ----
  [[nodiscard]] base::Result<std::int64_t> create_boot_trial(std::optional<std::int64_t> run_id,
                                                             const std::string& snapshot_id);
  [[nodiscard]] base::Result<std::optional<BootTrialRecord>> get_boot_trial(std::int64_t id) const;
  // The newest trial still pending, if any.
  [[nodiscard]] base::Result<std::optional<BootTrialRecord>> pending_boot_trial() const;
  // The newest trial in any state, if any (e.g. the one `boot-check --status` reports on).
  [[nodiscard]] base::Result<std::optional<BootTrialRecord>> latest_boot_trial() const;
  // Every trial of run `run_id`, newest first: e.g. the failed trial that was rolled back
  // and the trial of the restored root after it.
  [[nodiscard]] base::Result<std::vector<BootTrialRecord>> boot_trials_of_run(std::int64_t run_id) const;
  // Increments attempts and commits; returns the new count.
  [[nodiscard]] base::Result<int> record_boot_attempt(std::int64_t id);
  [[nodiscard]] base::Result<void> set_boot_trial_state(std::int64_t id, BootTrialState state,
                                                        const std::string& message = {});

  // ---- rollbacks (rollbacks.cc) ----
  // Records a rollback about to start (state running) by process `pid` of boot `boot_id`;
  // returns its id.
  [[nodiscard]] base::Result<std::int64_t> begin_rollback(std::optional<std::int64_t> run_id, const std::string& root,
                                                          const std::string& snapshot_id, std::int64_t pid,
                                                          const std::string& boot_id);
  // Records how it went: state, the backend's journal and the kept broken root (either may be
  // empty when unknown) and a message.
  [[nodiscard]] base::Result<void> set_rollback_state(std::int64_t id, RollbackState state, const std::string& journal,
                                                      const std::string& broken, const std::string& message);
  [[nodiscard]] base::Result<std::optional<RollbackRecord>> get_rollback(std::int64_t id) const;
  // Rollbacks of `root` (every root when empty) still running or failed, oldest first.
  [[nodiscard]] base::Result<std::vector<RollbackRecord>> open_rollbacks(const std::string& root = {}) const;
  // Every rollback of run `run_id`, newest first.
  [[nodiscard]] base::Result<std::vector<RollbackRecord>> rollbacks_of_run(std::int64_t run_id) const;

 private:
  using DbPtr = std::unique_ptr<sqlite3, CloseDatabase>;
  // A private copy of a read-only database (removed when the store closes).
  struct TempCopy;
  struct RemoveTempCopy {
    void operator()(TempCopy* copy) const;
  };
  StateStore(DbPtr db, std::string path);
  static base::Result<StateStore> open_read_only_uri(const std::string& uri, const std::string& path,
                                                     std::string mode);
  static base::Result<StateStore> open_impl(const std::string& state_dir, int target_version);

  class Statement;
  class TransactionGuard;
  [[nodiscard]] base::Result<Statement> prepare(std::string_view sql, std::string_view context) const;
  [[nodiscard]] base::Result<void> exec(const char* sql, std::string_view context) const;
  [[nodiscard]] base::Error error(std::string_view call, std::string_view context) const;
  // PRAGMA user_version: 0 for a new, empty file.
  [[nodiscard]] base::Result<int> schema_version() const;
  // schema_version(), retried while the database is busy.
  [[nodiscard]] base::Result<int> read_retrying_busy();
  [[nodiscard]] base::Result<void> use_rollback_journal();
  [[nodiscard]] base::Result<void> migrate(int target_version);
  // Rows changed by the last statement, and the rowid it inserted.
  [[nodiscard]] int changes() const;
  [[nodiscard]] std::int64_t last_insert_id() const;
  // Runs one UPDATE that must change exactly one row, in its own transaction.
  [[nodiscard]] base::Result<void> update_one(std::string_view sql, const std::string& context,
                                              const std::function<void(Statement&)>& bind);
  [[nodiscard]] base::Result<void> log_phase(std::int64_t run_id, RunPhase phase, const std::string& context,
                                             std::optional<std::int64_t> at_unix_ms = std::nullopt);
  [[nodiscard]] base::Result<void> finish_impl(std::int64_t run_id, RunOutcome outcome, std::optional<int> exit_code,
                                               const std::string& message,
                                               std::optional<std::int64_t> ended_unix_ms = std::nullopt);
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
  [[nodiscard]] base::Result<std::vector<RollbackRecord>> query_rollbacks(std::string_view where,
                                                                          const std::string& text_arg,
                                                                          std::optional<std::int64_t> int_arg) const;

  // Declared before db_: the connection closes before its copy is removed.
  std::unique_ptr<TempCopy, RemoveTempCopy> temp_copy_;
  DbPtr db_;
  std::string path_;
  bool read_only_ = false;
  std::string read_only_mode_;
  int transaction_depth_ = 0;
};

// Seconds and milliseconds since the epoch, as the store writes them.
[[nodiscard]] std::int64_t now_unix();
[[nodiscard]] std::int64_t now_unix_ms();

}  // namespace guard::state
