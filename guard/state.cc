// The SQLite adapter: the only file that includes sqlite3.h.
#include "guard/state.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/unique_fd.h"

namespace guard {

void CloseDatabase::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}
void FinalizeStatement::operator()(sqlite3_stmt* stmt) const {
  sqlite3_finalize(stmt);
}

namespace {

using base::Error;
using base::fail;
using base::Result;

constexpr int kBusyTimeoutMs = 5000;

// The schema history. Append only: a released migration is never edited, because databases
// in the field already carry it. Each one runs in its own transaction with its user_version.
struct Migration {
  int version;
  const char* sql;
};

constexpr std::array kMigrations = {
    Migration{1, R"sql(
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_unix INTEGER NOT NULL,
  finished_unix INTEGER,
  root TEXT NOT NULL,
  command TEXT NOT NULL,
  phase TEXT NOT NULL,
  phase_changed_unix INTEGER NOT NULL,
  outcome TEXT,
  exit_code INTEGER,
  command_status TEXT,
  snapshot_id TEXT,
  pid INTEGER NOT NULL,
  hostname TEXT NOT NULL DEFAULT '',
  boot_id TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_unfinished ON runs(id) WHERE finished_unix IS NULL;
CREATE TABLE run_phases (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  phase TEXT NOT NULL,
  at_unix_ms INTEGER NOT NULL
);
CREATE INDEX run_phases_run ON run_phases(run_id);
CREATE TABLE reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
  stage TEXT NOT NULL,
  root TEXT NOT NULL,
  created_unix INTEGER NOT NULL,
  verdict TEXT NOT NULL,
  json TEXT NOT NULL
);
CREATE INDEX reports_run ON reports(run_id, stage);
CREATE INDEX reports_root ON reports(root, stage);
CREATE TABLE findings (
  id INTEGER PRIMARY KEY,
  report_id INTEGER NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
  stage TEXT NOT NULL,
  check_id TEXT NOT NULL,
  severity TEXT NOT NULL,
  path TEXT NOT NULL DEFAULT '',
  package TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  hint TEXT NOT NULL DEFAULT '',
  finding_key TEXT NOT NULL,
  known INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX findings_run ON findings(run_id);
CREATE INDEX findings_report ON findings(report_id);
CREATE TABLE baselines (
  root TEXT PRIMARY KEY,
  created_unix INTEGER NOT NULL,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL
);
CREATE TABLE baseline_keys (
  root TEXT NOT NULL REFERENCES baselines(root) ON DELETE CASCADE,
  finding_key TEXT NOT NULL,
  PRIMARY KEY (root, finding_key)
) WITHOUT ROWID;
CREATE TABLE snapshots (
  id TEXT PRIMARY KEY,
  backend TEXT NOT NULL,
  label TEXT NOT NULL DEFAULT '',
  location TEXT NOT NULL DEFAULT '',
  root TEXT NOT NULL DEFAULT '',
  created_unix INTEGER NOT NULL,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  state TEXT NOT NULL,
  known_good INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE gate (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  closed INTEGER NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  changed_unix INTEGER NOT NULL,
  changed_by TEXT NOT NULL DEFAULT ''
);
)sql"},
    // Version 2: what the guarded upgrade, the reboot gate and the post-boot health check
    // need: the packages a run changed, the history of gate changes, boot trials with their
    // attempt counter, pinned snapshots.
    Migration{2, R"sql(
CREATE TABLE gate_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  closed INTEGER NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  at_unix INTEGER NOT NULL,
  changed_by TEXT NOT NULL DEFAULT ''
);
INSERT INTO gate_events (closed, reason, run_id, at_unix, changed_by)
  SELECT closed, reason, run_id, changed_unix, changed_by FROM gate;
CREATE TABLE boot_trials (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  snapshot_id TEXT NOT NULL,
  created_unix INTEGER NOT NULL,
  updated_unix INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX boot_trials_pending ON boot_trials(id) WHERE state = 'pending';
CREATE TABLE run_packages (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  package TEXT NOT NULL,
  old_version TEXT NOT NULL DEFAULT '',
  new_version TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, package)
) WITHOUT ROWID;
ALTER TABLE snapshots ADD COLUMN pinned_reason TEXT;
)sql"},
};
static_assert(kMigrations.back().version == StateStore::kSchemaVersion);

std::int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The first line of a small host file, e.g. /proc/sys/kernel/random/boot_id; empty when unreadable.
std::string read_first_line(const char* path) {
  base::UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof(buf));
  if (n <= 0) return {};
  std::string s(buf, static_cast<std::size_t>(n));
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return {};
  return buf;
}

// mkdir -p with the last component 0700. e.g. ensure_state_dir("/var/lib/upgrade-guard").
Result<void> ensure_state_dir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return fail("stat", dir, "the state directory is not a directory");
    return {};
  }
  if (errno != ENOENT) return base::fail_errno("stat", dir, errno, "cannot use the state directory");
  for (std::size_t pos = dir.find('/', 1); pos != std::string::npos; pos = dir.find('/', pos + 1)) {
    std::string parent = dir.substr(0, pos);
    if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
      return base::fail_errno("mkdir", parent, errno, "cannot create the state directory");
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return base::fail_errno("mkdir", dir, errno, "cannot create the state directory");
  }
  return {};
}

template <typename Enum, std::size_t N>
Result<Enum> parse_enum(std::string_view s, const std::array<Enum, N>& values, const char* kind) {
  for (Enum v : values) {
    if (s == to_string(v)) return v;
  }
  return fail("state", "", fmt::format("unknown {} '{}' in the state database", kind, s));
}

constexpr std::array kPhases = {RunPhase::preflight, RunPhase::baseline, RunPhase::snapshot,
                                RunPhase::command,   RunPhase::changes,  RunPhase::post_checks,
                                RunPhase::verdict,   RunPhase::rollback, RunPhase::done};
constexpr std::array kOutcomes = {RunOutcome::passed,  RunOutcome::rolled_back, RunOutcome::gated, RunOutcome::warned,
                                  RunOutcome::refused, RunOutcome::interrupted, RunOutcome::failed};
constexpr std::array kStages = {ReportStage::baseline, ReportStage::post, ReportStage::check, ReportStage::audit,
                                ReportStage::restored};
constexpr std::array kSnapshotStates = {SnapshotState::present, SnapshotState::deleting, SnapshotState::deleted};
constexpr std::array kTrialStates = {BootTrialState::pending, BootTrialState::blessed, BootTrialState::rolled_back,
                                     BootTrialState::failed};

// What to tell the operator about a file that SQLite cannot use. Nothing was written to it.
std::string damaged_advice(const std::string& path) {
  return fmt::format(
      "it was left untouched: move it aside (mv {0} {0}.broken) and upgrade-guard starts a new, empty store "
      "(run history, baselines and the gate state are lost), or restore it from a backup",
      path);
}

}  // namespace

// ---- enum names ---------------------------------------------------------------------------

const char* to_string(RunPhase p) {
  switch (p) {
    case RunPhase::preflight:
      return "preflight";
    case RunPhase::baseline:
      return "baseline";
    case RunPhase::snapshot:
      return "snapshot";
    case RunPhase::command:
      return "command";
    case RunPhase::changes:
      return "changes";
    case RunPhase::post_checks:
      return "post-checks";
    case RunPhase::verdict:
      return "verdict";
    case RunPhase::rollback:
      return "rollback";
    case RunPhase::done:
      return "done";
  }
  return "?";
}

const char* to_string(RunOutcome o) {
  switch (o) {
    case RunOutcome::passed:
      return "passed";
    case RunOutcome::rolled_back:
      return "rolled-back";
    case RunOutcome::gated:
      return "gated";
    case RunOutcome::warned:
      return "warned";
    case RunOutcome::refused:
      return "refused";
    case RunOutcome::interrupted:
      return "interrupted";
    case RunOutcome::failed:
      return "failed";
  }
  return "?";
}

const char* to_string(ReportStage s) {
  switch (s) {
    case ReportStage::baseline:
      return "baseline";
    case ReportStage::post:
      return "post";
    case ReportStage::check:
      return "check";
    case ReportStage::audit:
      return "audit";
    case ReportStage::restored:
      return "restored";
  }
  return "?";
}

const char* to_string(SnapshotState s) {
  switch (s) {
    case SnapshotState::present:
      return "present";
    case SnapshotState::deleting:
      return "deleting";
    case SnapshotState::deleted:
      return "deleted";
  }
  return "?";
}

const char* to_string(BootTrialState s) {
  switch (s) {
    case BootTrialState::pending:
      return "pending";
    case BootTrialState::blessed:
      return "blessed";
    case BootTrialState::rolled_back:
      return "rolled-back";
    case BootTrialState::failed:
      return "failed";
  }
  return "?";
}

Result<RunPhase> parse_run_phase(std::string_view s) {
  return parse_enum(s, kPhases, "run phase");
}
Result<RunOutcome> parse_run_outcome(std::string_view s) {
  return parse_enum(s, kOutcomes, "run outcome");
}
Result<ReportStage> parse_report_stage(std::string_view s) {
  return parse_enum(s, kStages, "report stage");
}
Result<SnapshotState> parse_snapshot_state(std::string_view s) {
  return parse_enum(s, kSnapshotStates, "snapshot state");
}
Result<BootTrialState> parse_boot_trial_state(std::string_view s) {
  return parse_enum(s, kTrialStates, "boot trial state");
}

std::string current_boot_id() {
  return read_first_line("/proc/sys/kernel/random/boot_id");
}

bool run_process_alive(const RunRecord& run) {
  if (run.finished_unix || run.pid <= 0) return false;
  if (!run.boot_id.empty() && run.boot_id != current_boot_id()) return false;
  return ::kill(static_cast<pid_t>(run.pid), 0) == 0 || errno == EPERM;
}

// ---- Statement: one prepared statement, bound left to right -------------------------------

class StateStore::Statement {
 public:
  Statement(const StateStore& store, std::unique_ptr<sqlite3_stmt, FinalizeStatement> stmt, std::string context)
      : store_(&store), stmt_(std::move(stmt)), context_(std::move(context)) {}

  Statement& bind(std::int64_t v) { return check_bind(sqlite3_bind_int64(stmt_.get(), ++index_, v)); }
  Statement& bind(std::string_view v) {
    return check_bind(sqlite3_bind_text64(stmt_.get(), ++index_, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Statement& bind(const std::string& v) { return bind(std::string_view(v)); }
  Statement& bind(const char* v) { return bind(std::string_view(v)); }
  Statement& bind(const std::optional<std::int64_t>& v) {
    return v ? bind(*v) : check_bind(sqlite3_bind_null(stmt_.get(), ++index_));
  }
  Statement& bind(const std::optional<std::string>& v) {
    return v ? bind(std::string_view(*v)) : check_bind(sqlite3_bind_null(stmt_.get(), ++index_));
  }

  // True when a row is available, false when done.
  Result<bool> step() {
    if (bind_failed_) return fail(store_->error("sqlite3_bind", context_));
    int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return fail(store_->error("sqlite3_step", context_));
  }
  // Steps to the end, for statements that return no rows.
  Result<void> run() {
    for (;;) {
      auto row = step();
      if (!row) return fail(row.error());
      if (!*row) return {};
    }
  }

  // Ready to bind and run again, e.g. one INSERT per finding.
  void reset() {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
    index_ = 0;
    bind_failed_ = false;
  }
  // Finalizes now, e.g. before a COMMIT while a row was left unread.
  void close() { stmt_.reset(); }

  [[nodiscard]] bool is_null(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  [[nodiscard]] std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  [[nodiscard]] std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_.get(), col);
    int n = sqlite3_column_bytes(stmt_.get(), col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
  }
  [[nodiscard]] std::optional<std::int64_t> opt_integer(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::int64_t>(integer(col));
  }
  [[nodiscard]] std::optional<std::string> opt_text(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::string>(text(col));
  }

 private:
  Statement& check_bind(int rc) {
    if (rc != SQLITE_OK) bind_failed_ = true;
    return *this;
  }

  const StateStore* store_;
  std::unique_ptr<sqlite3_stmt, FinalizeStatement> stmt_;
  std::string context_;
  int index_ = 0;
  bool bind_failed_ = false;
};

// ---- TransactionGuard: BEGIN IMMEDIATE at the outside, savepoints inside ------------------

class StateStore::TransactionGuard {
 public:
  static Result<TransactionGuard> begin(StateStore& store, std::string_view context) {
    int level = store.transaction_depth_;
    // IMMEDIATE takes the write lock now, so a busy database waits in the busy handler here
    // instead of failing later when a read would have to become a write.
    std::string sql = level == 0 ? std::string("BEGIN IMMEDIATE") : fmt::format("SAVEPOINT ug_{}", level);
    if (auto r = store.exec(sql.c_str(), context); !r) return fail(r.error());
    ++store.transaction_depth_;
    return TransactionGuard(store, level, std::string(context));
  }

  TransactionGuard(TransactionGuard&& other) noexcept
      : store_(std::exchange(other.store_, nullptr)), level_(other.level_), context_(std::move(other.context_)) {}
  TransactionGuard& operator=(TransactionGuard&&) = delete;
  ~TransactionGuard() { rollback(); }

  Result<void> commit() {
    std::string sql = level_ == 0 ? std::string("COMMIT") : fmt::format("RELEASE ug_{}", level_);
    if (auto r = store_->exec(sql.c_str(), context_); !r) return r;  // the destructor rolls back
    --store_->transaction_depth_;
    store_ = nullptr;
    return {};
  }

 private:
  TransactionGuard(StateStore& store, int level, std::string context)
      : store_(&store), level_(level), context_(std::move(context)) {}

  void rollback() {
    if (!store_) return;
    sqlite3* db = store_->db_.get();
    if (level_ == 0) {
      if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    } else {
      std::string sql = fmt::format("ROLLBACK TO ug_{0}; RELEASE ug_{0}", level_);
      sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    }
    --store_->transaction_depth_;
    store_ = nullptr;
  }

  StateStore* store_;
  int level_;
  std::string context_;
};

// ---- open, migrate, settings --------------------------------------------------------------

StateStore::StateStore(DbPtr db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}
StateStore::StateStore(StateStore&&) noexcept = default;
StateStore& StateStore::operator=(StateStore&&) noexcept = default;
StateStore::~StateStore() = default;

std::string StateStore::database_path(const std::string& state_dir) {
  std::string dir = state_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir == "/" ? std::string("/") + kFileName : dir + "/" + kFileName;
}

Error StateStore::error(std::string_view call, std::string_view context) const {
  sqlite3* db = db_.get();
  std::string detail = db ? sqlite3_errmsg(db) : "out of memory";
  return Error{std::string(call), path_, 0, fmt::format("{}: {}: {}", context, call, detail)};
}

Result<StateStore::Statement> StateStore::prepare(std::string_view sql, std::string_view context) const {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, FinalizeStatement> stmt(raw);
  if (rc != SQLITE_OK) return fail(error("sqlite3_prepare_v2", context));
  return Statement(*this, std::move(stmt), std::string(context));
}

Result<void> StateStore::exec(const char* sql, std::string_view context) const {
  if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail(error("sqlite3_exec", context));
  }
  return {};
}

Result<StateStore> StateStore::open(const std::string& state_dir) {
  return open_impl(state_dir, kSchemaVersion);
}

Result<StateStore> StateStore::open_at_version_for_test(const std::string& state_dir, int version) {
  if (version < 1 || version > kSchemaVersion) {
    return fail("state", state_dir, fmt::format("no schema version {}", version));
  }
  return open_impl(state_dir, version);
}

Result<StateStore> StateStore::open_impl(const std::string& state_dir, int target_version) {
  if (auto r = ensure_state_dir(state_dir); !r) return fail(r.error());
  std::string path = database_path(state_dir);

  // Create the file ourselves so that it is 0600 from the first byte; SQLite gives the
  // -wal and -shm files the mode of the database. An empty file is an empty database.
  {
    base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd && errno != EEXIST) return base::fail_errno("open", path, errno, "cannot create the state database");
  }

  // SQLite would quietly fall back to read-only; say what is wrong instead.
  if (::access(path.c_str(), R_OK | W_OK) != 0) {
    return base::fail_errno("access", path, errno, "cannot open the state database for writing (run as root?)");
  }

  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE,
                           nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    int err = raw ? sqlite3_system_errno(raw) : 0;
    std::string detail = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return fail(Error{"sqlite3_open_v2", path, err,
                      fmt::format("cannot open the state database: sqlite3_open_v2: {}", detail)});
  }
  StateStore store(std::move(db), path);
  sqlite3_busy_timeout(store.db_.get(), kBusyTimeoutMs);

  // Read before anything writes: a file that is not ours, is damaged or is newer than this
  // program must stay exactly as it is. (journal_mode=WAL would rewrite the header.)
  auto version = [&]() -> Result<int> {
    auto stmt = store.prepare("PRAGMA user_version", "cannot read the state database's schema version");
    if (!stmt) return fail(stmt.error());
    auto row = stmt->step();
    if (!row) return fail(row.error());
    return *row ? static_cast<int>(stmt->integer(0)) : 0;
  }();
  if (!version) {
    int code = sqlite3_errcode(store.db_.get()) & 0xff;
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
      return fail(Error{"sqlite3_step", path, 0,
                        fmt::format("the state database is not a usable SQLite database ({}); {}",
                                    sqlite3_errmsg(store.db_.get()), damaged_advice(path))});
    }
    return fail(version.error());
  }
  if (*version > kSchemaVersion) {
    return fail(Error{"user_version", path, 0,
                      fmt::format("state.db has schema version {}, this upgrade-guard knows up to {}: upgrade "
                                  "upgrade-guard",
                                  *version, kSchemaVersion)});
  }
  if (auto r = store.quick_check(); !r) return fail(r.error());

  if (auto r = store.enable_wal(); !r) return fail(r.error());
  if (auto r = store.exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", "cannot configure the state database");
      !r) {
    return fail(r.error());
  }
  if (auto r = store.migrate(target_version); !r) return fail(r.error());
  return store;
}

Result<void> StateStore::enable_wal() {
  // Switching a new database from rollback to WAL needs an exclusive lock, and SQLite does
  // not run the busy handler for it: two guards opening a fresh store at once would see
  // "database is locked". Retry for as long as the busy timeout.
  const char* context = "cannot switch the state database to WAL";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (;;) {
    auto stmt = prepare("PRAGMA journal_mode=WAL", context);
    if (!stmt) return fail(stmt.error());
    auto row = stmt->step();
    if (row) {
      if (!*row || stmt->text(0) != "wal") {
        return fail("journal_mode", path_, fmt::format("{} (is it on a filesystem without shared memory?)", context));
      }
      return {};
    }
    int code = sqlite3_errcode(db_.get()) & 0xff;
    if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || std::chrono::steady_clock::now() >= deadline) {
      return fail(row.error());
    }
    stmt->close();
    ::usleep(10'000);
  }
}

Result<void> StateStore::migrate(int target_version) {
  for (const Migration& m : kMigrations) {
    if (m.version > target_version) break;
    std::string context = fmt::format("cannot migrate the state database to schema version {}", m.version);
    auto txn = TransactionGuard::begin(*this, context);
    if (!txn) return fail(txn.error());
    // Read again inside the write lock: another upgrade-guard may have migrated meanwhile.
    auto stmt = prepare("PRAGMA user_version", context);
    if (!stmt) return fail(stmt.error());
    auto row = stmt->step();
    if (!row) return fail(row.error());
    int current = *row ? static_cast<int>(stmt->integer(0)) : 0;
    stmt->close();
    if (current >= m.version) continue;  // the guard rolls back the empty transaction
    if (current != m.version - 1) {
      return fail("user_version", path_, fmt::format("{}: the database is at version {}", context, current));
    }
    if (auto r = exec(m.sql, context); !r) return r;
    std::string set_version = fmt::format("PRAGMA user_version = {}", m.version);
    if (auto r = exec(set_version.c_str(), context); !r) return r;
    if (auto r = txn->commit(); !r) return r;
  }
  return {};
}

Result<StoreSettings> StateStore::settings() const {
  StoreSettings s;
  auto pragma = [&](const char* sql) -> Result<Statement> {
    auto stmt = prepare(sql, "cannot read the state database's settings");
    if (!stmt) return fail(stmt.error());
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) return fail("sqlite3_step", path_, std::string(sql) + " returned nothing");
    return stmt;
  };
  auto j = pragma("PRAGMA journal_mode");
  if (!j) return fail(j.error());
  s.journal_mode = j->text(0);
  auto sync = pragma("PRAGMA synchronous");
  if (!sync) return fail(sync.error());
  s.synchronous = static_cast<int>(sync->integer(0));
  auto fk = pragma("PRAGMA foreign_keys");
  if (!fk) return fail(fk.error());
  s.foreign_keys = fk->integer(0) != 0;
  auto busy = pragma("PRAGMA busy_timeout");
  if (!busy) return fail(busy.error());
  s.busy_timeout_ms = static_cast<int>(busy->integer(0));
  auto version = pragma("PRAGMA user_version");
  if (!version) return fail(version.error());
  s.schema_version = static_cast<int>(version->integer(0));
  return s;
}

Result<void> StateStore::quick_check() const {
  const char* context = "cannot check the state database";
  auto stmt = prepare("PRAGMA quick_check", context);
  if (!stmt) return fail(stmt.error());
  std::vector<std::string> problems;
  for (;;) {
    auto row = stmt->step();
    if (!row) {
      int code = sqlite3_errcode(db_.get()) & 0xff;
      if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
        return fail(Error{
            "quick_check", path_, 0,
            fmt::format("the state database is damaged ({}); {}", sqlite3_errmsg(db_.get()), damaged_advice(path_))});
      }
      return fail(row.error());
    }
    if (!*row) break;
    std::string line = stmt->text(0);
    if (line != "ok" && problems.size() < 3) problems.push_back(std::move(line));
  }
  if (!problems.empty()) {
    std::string joined;
    for (const auto& p : problems) joined += (joined.empty() ? "" : "; ") + p;
    return fail(Error{
        "quick_check", path_, 0,
        fmt::format("the state database is damaged (PRAGMA quick_check: {}); {}", joined, damaged_advice(path_))});
  }
  return {};
}

Result<void> StateStore::transaction(const std::function<Result<void>()>& body) {
  auto txn = TransactionGuard::begin(*this, "cannot begin a state database transaction");
  if (!txn) return fail(txn.error());
  if (auto r = body(); !r) return r;
  return txn->commit();
}

// ---- runs ---------------------------------------------------------------------------------

namespace {
constexpr const char* kRunColumns =
    "SELECT id, started_unix, finished_unix, root, command, phase, phase_changed_unix, outcome, exit_code, "
    "command_status, snapshot_id, pid, hostname, boot_id, message FROM runs ";
}  // namespace

Result<std::int64_t> StateStore::begin_run(const std::string& root, const std::vector<std::string>& argv,
                                           std::int64_t pid) {
  const char* context = "cannot record the start of the run";
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  std::int64_t now = now_unix();
  auto stmt = prepare(
      "INSERT INTO runs (started_unix, root, command, phase, phase_changed_unix, pid, hostname, boot_id) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(now).bind(root).bind(nlohmann::json(argv).dump()).bind(to_string(RunPhase::preflight)).bind(now);
  stmt->bind(pid).bind(host_name()).bind(current_boot_id());
  if (auto r = stmt->run(); !r) return fail(r.error());
  std::int64_t id = sqlite3_last_insert_rowid(db_.get());
  auto phase = prepare("INSERT INTO run_phases (run_id, phase, at_unix_ms) VALUES (?, ?, ?)", context);
  if (!phase) return fail(phase.error());
  phase->bind(id).bind(to_string(RunPhase::preflight)).bind(now_unix_ms());
  if (auto r = phase->run(); !r) return fail(r.error());
  if (auto r = txn->commit(); !r) return fail(r.error());
  return id;
}

Result<void> StateStore::set_phase(std::int64_t run_id, RunPhase phase) {
  std::string context = fmt::format("cannot record phase {} of run {}", to_string(phase), run_id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt =
      prepare("UPDATE runs SET phase = ?, phase_changed_unix = ? WHERE id = ? AND finished_unix IS NULL", context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(to_string(phase)).bind(now_unix()).bind(run_id);
  if (auto r = stmt->run(); !r) return r;
  if (sqlite3_changes(db_.get()) != 1) {
    return fail("state", path_, fmt::format("{}: no unfinished run {}", context, run_id));
  }
  auto log = prepare("INSERT INTO run_phases (run_id, phase, at_unix_ms) VALUES (?, ?, ?)", context);
  if (!log) return fail(log.error());
  log->bind(run_id).bind(to_string(phase)).bind(now_unix_ms());
  if (auto r = log->run(); !r) return r;
  return txn->commit();
}

Result<void> StateStore::update_one(std::string_view sql, const std::string& context,
                                    const std::function<void(Statement&)>& bind) {
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(sql, context);
  if (!stmt) return fail(stmt.error());
  bind(*stmt);
  if (auto r = stmt->run(); !r) return r;
  if (sqlite3_changes(db_.get()) != 1) return fail("state", path_, context + ": not found");
  return txn->commit();
}

Result<void> StateStore::set_run_snapshot(std::int64_t run_id, const std::string& snapshot_id) {
  return update_one("UPDATE runs SET snapshot_id = ? WHERE id = ?",
                    fmt::format("cannot record the snapshot of run {}", run_id),
                    [&](Statement& s) { s.bind(snapshot_id).bind(run_id); });
}

Result<void> StateStore::set_command_status(std::int64_t run_id, const std::string& status) {
  return update_one("UPDATE runs SET command_status = ? WHERE id = ?",
                    fmt::format("cannot record the command status of run {}", run_id),
                    [&](Statement& s) { s.bind(status).bind(run_id); });
}

Result<void> StateStore::set_run_message(std::int64_t run_id, const std::string& message) {
  return update_one("UPDATE runs SET message = ? WHERE id = ?",
                    fmt::format("cannot record the message of run {}", run_id),
                    [&](Statement& s) { s.bind(message).bind(run_id); });
}

Result<void> StateStore::finish_run(std::int64_t run_id, RunOutcome outcome, int exit_code,
                                    const std::string& message) {
  return finish_impl(run_id, outcome, exit_code, message);
}

Result<void> StateStore::finish_impl(std::int64_t run_id, RunOutcome outcome, std::optional<int> exit_code,
                                     const std::string& message) {
  std::string context = fmt::format("cannot record the end of run {}", run_id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  // An interrupted run keeps the phase it died in; every other outcome ends in "done".
  bool keep_phase = outcome == RunOutcome::interrupted;
  auto stmt = prepare(
      "UPDATE runs SET outcome = ?, exit_code = ?, message = ?, finished_unix = ?, "
      "phase = CASE WHEN ? THEN phase ELSE 'done' END, "
      "phase_changed_unix = CASE WHEN ? THEN phase_changed_unix ELSE ? END "
      "WHERE id = ? AND finished_unix IS NULL",
      context);
  if (!stmt) return fail(stmt.error());
  std::int64_t now = now_unix();
  stmt->bind(to_string(outcome))
      .bind(exit_code ? std::optional<std::int64_t>(*exit_code) : std::nullopt)
      .bind(message)
      .bind(now);
  stmt->bind(std::int64_t{keep_phase}).bind(std::int64_t{keep_phase}).bind(now).bind(run_id);
  if (auto r = stmt->run(); !r) return r;
  if (sqlite3_changes(db_.get()) != 1) {
    return fail("state", path_, fmt::format("{}: no unfinished run {}", context, run_id));
  }
  if (!keep_phase) {
    auto log = prepare("INSERT INTO run_phases (run_id, phase, at_unix_ms) VALUES (?, 'done', ?)", context);
    if (!log) return fail(log.error());
    log->bind(run_id).bind(now_unix_ms());
    if (auto r = log->run(); !r) return r;
  }
  return txn->commit();
}

Result<void> StateStore::reopen_run(std::int64_t run_id, std::int64_t pid) {
  std::string context = fmt::format("cannot reopen run {}", run_id);
  return transaction([&]() -> Result<void> {
    auto r = update_one(
        "UPDATE runs SET finished_unix = NULL, outcome = NULL, exit_code = NULL, phase = 'command', "
        "phase_changed_unix = ?, pid = ? WHERE id = ? AND finished_unix IS NOT NULL",
        context, [&](Statement& s) { s.bind(now_unix()).bind(pid).bind(run_id); });
    if (!r) return r;
    auto log = prepare("INSERT INTO run_phases (run_id, phase, at_unix_ms) VALUES (?, 'command', ?)", context);
    if (!log) return fail(log.error());
    log->bind(run_id).bind(now_unix_ms());
    return log->run();
  });
}

Result<void> StateStore::mark_interrupted(std::int64_t run_id) {
  std::string context = fmt::format("cannot mark run {} interrupted", run_id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto run = get_run(run_id);
  if (!run) return fail(run.error());
  if (!*run) return fail("state", path_, context + ": no such run");
  auto r = finish_impl(run_id, RunOutcome::interrupted, std::nullopt,
                       fmt::format("interrupted during {}", to_string((*run)->phase)));
  if (!r) return r;
  return txn->commit();
}

Result<std::vector<RunRecord>> StateStore::query_runs(std::string_view where_and_order,
                                                      std::optional<std::int64_t> arg) const {
  const char* context = "cannot read runs";
  auto stmt = prepare(std::string(kRunColumns) + std::string(where_and_order), context);
  if (!stmt) return fail(stmt.error());
  if (arg) stmt->bind(*arg);
  std::vector<RunRecord> runs;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    RunRecord r;
    r.id = stmt->integer(0);
    r.started_unix = stmt->integer(1);
    r.finished_unix = stmt->opt_integer(2);
    r.root = stmt->text(3);
    auto cmd = nlohmann::json::parse(stmt->text(4), nullptr, false);
    if (cmd.is_array()) {
      for (const auto& a : cmd) {
        if (a.is_string()) r.command.push_back(a.get<std::string>());
      }
    }
    auto phase = parse_run_phase(stmt->text(5));
    if (!phase) return fail(Error{"state", path_, 0, fmt::format("run {}: {}", r.id, phase.error().message)});
    r.phase = *phase;
    r.phase_changed_unix = stmt->integer(6);
    if (auto o = stmt->opt_text(7)) {
      auto outcome = parse_run_outcome(*o);
      if (!outcome) return fail(Error{"state", path_, 0, fmt::format("run {}: {}", r.id, outcome.error().message)});
      r.outcome = *outcome;
    }
    if (auto e = stmt->opt_integer(8)) r.exit_code = static_cast<int>(*e);
    r.command_status = stmt->opt_text(9);
    r.snapshot_id = stmt->opt_text(10);
    r.pid = stmt->integer(11);
    r.hostname = stmt->text(12);
    r.boot_id = stmt->text(13);
    r.message = stmt->text(14);
    runs.push_back(std::move(r));
  }
  return runs;
}

Result<std::optional<RunRecord>> StateStore::get_run(std::int64_t run_id) const {
  auto runs = query_runs("WHERE id = ?", run_id);
  if (!runs) return fail(runs.error());
  if (runs->empty()) return std::optional<RunRecord>();
  return std::optional<RunRecord>(std::move(runs->front()));
}

Result<std::vector<RunRecord>> StateStore::list_runs(int limit) const {
  return query_runs("ORDER BY id DESC LIMIT ?", std::int64_t{limit > 0 ? limit : -1});
}

Result<std::vector<RunRecord>> StateStore::unfinished_runs() const {
  return query_runs("WHERE finished_unix IS NULL ORDER BY id", std::nullopt);
}

Result<void> StateStore::save_package_changes(std::int64_t run_id, const std::vector<PackageChange>& changes) {
  std::string context = fmt::format("cannot record the package changes of run {}", run_id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto del = prepare("DELETE FROM run_packages WHERE run_id = ?", context);
  if (!del) return fail(del.error());
  del->bind(run_id);
  if (auto r = del->run(); !r) return r;
  auto ins = prepare(
      "INSERT OR REPLACE INTO run_packages (run_id, package, old_version, new_version) VALUES (?, ?, ?, ?)", context);
  if (!ins) return fail(ins.error());
  for (const auto& c : changes) {
    ins->reset();
    ins->bind(run_id).bind(c.package).bind(c.old_version).bind(c.new_version);
    if (auto r = ins->run(); !r) return r;
  }
  return txn->commit();
}

Result<std::vector<PackageChange>> StateStore::package_changes(std::int64_t run_id) const {
  auto stmt = prepare("SELECT package, old_version, new_version FROM run_packages WHERE run_id = ? ORDER BY package",
                      "cannot read the package changes of a run");
  if (!stmt) return fail(stmt.error());
  stmt->bind(run_id);
  std::vector<PackageChange> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    out.push_back(PackageChange{stmt->text(0), stmt->text(1), stmt->text(2)});
  }
  return out;
}

Result<std::vector<PhaseRecord>> StateStore::run_phases(std::int64_t run_id) const {
  auto stmt = prepare("SELECT phase, at_unix_ms FROM run_phases WHERE run_id = ? ORDER BY rowid",
                      "cannot read the phases of a run");
  if (!stmt) return fail(stmt.error());
  stmt->bind(run_id);
  std::vector<PhaseRecord> phases;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    auto phase = parse_run_phase(stmt->text(0));
    if (!phase) return fail(phase.error());
    phases.push_back(PhaseRecord{*phase, stmt->integer(1)});
  }
  return phases;
}

// ---- reports and findings -----------------------------------------------------------------

Result<std::int64_t> StateStore::save_report(std::optional<std::int64_t> run_id, ReportStage stage,
                                             const checks::Report& report) {
  std::string context = run_id ? fmt::format("cannot save the {} report of run {}", to_string(stage), *run_id)
                               : fmt::format("cannot save the {} report", to_string(stage));
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(
      "INSERT INTO reports (run_id, stage, root, created_unix, verdict, json) VALUES (?, ?, ?, ?, ?, ?)", context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(run_id).bind(to_string(stage)).bind(report.root).bind(now_unix()).bind(checks::to_string(report.verdict));
  stmt->bind(checks::to_json(report).dump());
  if (auto r = stmt->run(); !r) return fail(r.error());
  std::int64_t report_id = sqlite3_last_insert_rowid(db_.get());
  auto ins = prepare(
      "INSERT INTO findings (report_id, run_id, stage, check_id, severity, path, package, message, hint, "
      "finding_key, known) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      context);
  if (!ins) return fail(ins.error());
  for (const auto& f : report.findings) {
    ins->reset();
    ins->bind(report_id).bind(run_id).bind(to_string(stage)).bind(f.check).bind(policies::to_string(f.severity));
    ins->bind(f.path).bind(f.package).bind(f.message).bind(f.hint).bind(f.key()).bind(std::int64_t{f.known});
    if (auto r = ins->run(); !r) return fail(r.error());
  }
  if (auto r = txn->commit(); !r) return fail(r.error());
  return report_id;
}

Result<std::optional<StoredReport>> StateStore::query_report(std::string_view where, const std::string& text_arg,
                                                             std::int64_t int_arg, ReportStage stage) const {
  auto stmt = prepare(fmt::format("SELECT id, run_id, root, created_unix, json FROM reports WHERE {} AND stage = ? "
                                  "ORDER BY id DESC LIMIT 1",
                                  where),
                      "cannot read a report");
  if (!stmt) return fail(stmt.error());
  if (text_arg.empty())
    stmt->bind(int_arg);
  else
    stmt->bind(text_arg);
  stmt->bind(to_string(stage));
  auto row = stmt->step();
  if (!row) return fail(row.error());
  if (!*row) return std::optional<StoredReport>();
  StoredReport out;
  out.id = stmt->integer(0);
  out.run_id = stmt->opt_integer(1);
  out.stage = stage;
  out.root = stmt->text(2);
  out.created_unix = stmt->integer(3);
  auto json = nlohmann::json::parse(stmt->text(4), nullptr, false);
  if (json.is_discarded()) return fail("state", path_, fmt::format("report {} is not valid JSON", out.id));
  auto report = checks::report_from_json(json);
  if (!report) return fail(Error{"state", path_, 0, fmt::format("report {}: {}", out.id, report.error().message)});
  out.report = std::move(*report);
  return std::optional<StoredReport>(std::move(out));
}

Result<std::optional<StoredReport>> StateStore::load_report(std::int64_t run_id, ReportStage stage) const {
  return query_report("run_id = ?", {}, run_id, stage);
}

Result<std::optional<StoredReport>> StateStore::latest_report(const std::string& root, ReportStage stage) const {
  if (root.empty()) return fail("state", path_, "latest_report needs a root");
  return query_report("root = ?", root, 0, stage);
}

Result<std::vector<FindingRecord>> StateStore::findings_for_run(std::int64_t run_id) const {
  auto stmt = prepare(
      "SELECT report_id, run_id, stage, check_id, severity, path, package, message, hint, finding_key, known "
      "FROM findings WHERE run_id = ? ORDER BY report_id, id",
      "cannot read the findings of a run");
  if (!stmt) return fail(stmt.error());
  stmt->bind(run_id);
  std::vector<FindingRecord> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    FindingRecord f;
    f.report_id = stmt->integer(0);
    f.run_id = stmt->opt_integer(1);
    auto stage = parse_report_stage(stmt->text(2));
    if (!stage) return fail(stage.error());
    f.stage = *stage;
    f.check = stmt->text(3);
    f.severity = stmt->text(4);
    f.path = stmt->text(5);
    f.package = stmt->text(6);
    f.message = stmt->text(7);
    f.hint = stmt->text(8);
    f.key = stmt->text(9);
    f.known = stmt->integer(10) != 0;
    out.push_back(std::move(f));
  }
  return out;
}

// ---- baselines ----------------------------------------------------------------------------

Result<void> StateStore::save_baseline(const std::string& root, const std::vector<std::string>& keys,
                                       std::optional<std::int64_t> run_id) {
  std::string context = fmt::format("cannot save the baseline of {}", root);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto del = prepare("DELETE FROM baselines WHERE root = ?", context);
  if (!del) return fail(del.error());
  del->bind(root);
  if (auto r = del->run(); !r) return r;
  auto ins = prepare("INSERT INTO baselines (root, created_unix, run_id) VALUES (?, ?, ?)", context);
  if (!ins) return fail(ins.error());
  ins->bind(root).bind(now_unix()).bind(run_id);
  if (auto r = ins->run(); !r) return r;
  auto k = prepare("INSERT OR IGNORE INTO baseline_keys (root, finding_key) VALUES (?, ?)", context);
  if (!k) return fail(k.error());
  for (const auto& key : keys) {
    k->reset();
    k->bind(root).bind(key);
    if (auto r = k->run(); !r) return r;
  }
  return txn->commit();
}

Result<std::optional<std::vector<std::string>>> StateStore::load_baseline(const std::string& root) const {
  const char* context = "cannot read a baseline";
  auto head = prepare("SELECT 1 FROM baselines WHERE root = ?", context);
  if (!head) return fail(head.error());
  head->bind(root);
  auto found = head->step();
  if (!found) return fail(found.error());
  if (!*found) return std::optional<std::vector<std::string>>();
  auto stmt = prepare("SELECT finding_key FROM baseline_keys WHERE root = ? ORDER BY finding_key", context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(root);
  std::vector<std::string> keys;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    keys.push_back(stmt->text(0));
  }
  return std::optional<std::vector<std::string>>(std::move(keys));
}

// ---- snapshots ----------------------------------------------------------------------------

Result<void> StateStore::record_snapshot(const SnapshotRecord& s) {
  std::string context = fmt::format("cannot record snapshot {}", s.id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(
      "INSERT INTO snapshots (id, backend, label, location, root, created_unix, run_id, state, known_good, "
      "pinned_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(s.id).bind(s.backend).bind(s.label).bind(s.location).bind(s.root);
  stmt->bind(s.created_unix != 0 ? s.created_unix : now_unix()).bind(s.run_id).bind(to_string(s.state));
  stmt->bind(std::int64_t{s.known_good}).bind(s.pinned_reason);
  if (auto r = stmt->run(); !r) return r;
  return txn->commit();
}

Result<std::vector<SnapshotRecord>> StateStore::query_snapshots(std::string_view where, const std::string& arg) const {
  auto stmt = prepare(fmt::format("SELECT id, backend, label, location, root, created_unix, run_id, state, known_good, "
                                  "pinned_reason FROM snapshots {} ORDER BY created_unix DESC, rowid DESC",
                                  where),
                      "cannot read snapshots");
  if (!stmt) return fail(stmt.error());
  if (!where.empty()) stmt->bind(arg);
  std::vector<SnapshotRecord> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    SnapshotRecord s;
    s.id = stmt->text(0);
    s.backend = stmt->text(1);
    s.label = stmt->text(2);
    s.location = stmt->text(3);
    s.root = stmt->text(4);
    s.created_unix = stmt->integer(5);
    s.run_id = stmt->opt_integer(6);
    auto state = parse_snapshot_state(stmt->text(7));
    if (!state) return fail(state.error());
    s.state = *state;
    s.known_good = stmt->integer(8) != 0;
    s.pinned_reason = stmt->opt_text(9);
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::optional<SnapshotRecord>> StateStore::get_snapshot(const std::string& id) const {
  auto list = query_snapshots("WHERE id = ?", id);
  if (!list) return fail(list.error());
  if (list->empty()) return std::optional<SnapshotRecord>();
  return std::optional<SnapshotRecord>(std::move(list->front()));
}

Result<std::vector<SnapshotRecord>> StateStore::list_snapshots(const std::string& root) const {
  return root.empty() ? query_snapshots("", {}) : query_snapshots("WHERE root = ?", root);
}

Result<std::optional<SnapshotRecord>> StateStore::last_known_good(const std::string& root) const {
  auto list = query_snapshots("WHERE root = ? AND known_good = 1 AND state = 'present'", root);
  if (!list) return fail(list.error());
  if (list->empty()) return std::optional<SnapshotRecord>();
  return std::optional<SnapshotRecord>(std::move(list->front()));
}

Result<void> StateStore::set_snapshot_state(const std::string& id, SnapshotState state) {
  return update_one("UPDATE snapshots SET state = ? WHERE id = ?",
                    fmt::format("cannot mark snapshot {} {}", id, to_string(state)),
                    [&](Statement& s) { s.bind(to_string(state)).bind(id); });
}

Result<void> StateStore::set_snapshot_known_good(const std::string& id, bool known_good) {
  return update_one("UPDATE snapshots SET known_good = ? WHERE id = ?",
                    fmt::format("cannot mark snapshot {} {}", id, known_good ? "known-good" : "not known-good"),
                    [&](Statement& s) { s.bind(std::int64_t{known_good}).bind(id); });
}

Result<void> StateStore::set_snapshot_pinned(const std::string& id, std::optional<std::string> reason) {
  return update_one("UPDATE snapshots SET pinned_reason = ? WHERE id = ?",
                    fmt::format("cannot {} snapshot {}", reason ? "pin" : "unpin", id),
                    [&](Statement& s) { s.bind(reason).bind(id); });
}

// ---- gate ---------------------------------------------------------------------------------

Result<GateState> StateStore::get_gate() const {
  auto stmt = prepare("SELECT closed, reason, run_id, changed_unix, changed_by FROM gate WHERE id = 1",
                      "cannot read the gate state");
  if (!stmt) return fail(stmt.error());
  auto row = stmt->step();
  if (!row) return fail(row.error());
  GateState g;
  if (!*row) return g;
  g.closed = stmt->integer(0) != 0;
  g.reason = stmt->text(1);
  g.run_id = stmt->opt_integer(2);
  g.changed_unix = stmt->integer(3);
  g.changed_by = stmt->text(4);
  return g;
}

Result<void> StateStore::set_gate(const GateState& gate) {
  std::string context = gate.closed ? "cannot record the closed gate" : "cannot record the open gate";
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  std::int64_t when = gate.changed_unix != 0 ? gate.changed_unix : now_unix();
  auto stmt = prepare(
      "INSERT INTO gate (id, closed, reason, run_id, changed_unix, changed_by) VALUES (1, ?, ?, ?, ?, ?) "
      "ON CONFLICT (id) DO UPDATE SET closed = excluded.closed, reason = excluded.reason, run_id = excluded.run_id, "
      "changed_unix = excluded.changed_unix, changed_by = excluded.changed_by",
      context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(std::int64_t{gate.closed}).bind(gate.reason).bind(gate.run_id).bind(when).bind(gate.changed_by);
  if (auto r = stmt->run(); !r) return r;
  auto ev =
      prepare("INSERT INTO gate_events (closed, reason, run_id, at_unix, changed_by) VALUES (?, ?, ?, ?, ?)", context);
  if (!ev) return fail(ev.error());
  ev->bind(std::int64_t{gate.closed}).bind(gate.reason).bind(gate.run_id).bind(when).bind(gate.changed_by);
  if (auto r = ev->run(); !r) return r;
  return txn->commit();
}

Result<std::vector<GateEvent>> StateStore::gate_events(int limit) const {
  auto stmt =
      prepare("SELECT id, closed, reason, run_id, at_unix, changed_by FROM gate_events ORDER BY id DESC LIMIT ?",
              "cannot read the gate history");
  if (!stmt) return fail(stmt.error());
  stmt->bind(std::int64_t{limit > 0 ? limit : -1});
  std::vector<GateEvent> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    out.push_back(GateEvent{stmt->integer(0), stmt->integer(1) != 0, stmt->text(2), stmt->opt_integer(3),
                            stmt->integer(4), stmt->text(5)});
  }
  return out;
}

// ---- boot trials --------------------------------------------------------------------------

Result<std::int64_t> StateStore::create_boot_trial(std::optional<std::int64_t> run_id, const std::string& snapshot_id) {
  const char* context = "cannot record the boot trial";
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(
      "INSERT INTO boot_trials (run_id, snapshot_id, created_unix, updated_unix, attempts, state) "
      "VALUES (?, ?, ?, ?, 0, 'pending')",
      context);
  if (!stmt) return fail(stmt.error());
  std::int64_t now = now_unix();
  stmt->bind(run_id).bind(snapshot_id).bind(now).bind(now);
  if (auto r = stmt->run(); !r) return fail(r.error());
  std::int64_t id = sqlite3_last_insert_rowid(db_.get());
  if (auto r = txn->commit(); !r) return fail(r.error());
  return id;
}

Result<std::vector<BootTrialRecord>> StateStore::query_boot_trials(std::string_view where,
                                                                    std::optional<std::int64_t> arg,
                                                                    int limit) const {
  auto stmt = prepare(fmt::format("SELECT id, run_id, snapshot_id, created_unix, updated_unix, attempts, state, "
                                  "message FROM boot_trials {} ORDER BY id DESC LIMIT {}",
                                  where, limit),
                      "cannot read a boot trial");
  if (!stmt) return fail(stmt.error());
  if (arg) stmt->bind(*arg);
  std::vector<BootTrialRecord> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    BootTrialRecord t;
    t.id = stmt->integer(0);
    t.run_id = stmt->opt_integer(1);
    t.snapshot_id = stmt->text(2);
    t.created_unix = stmt->integer(3);
    t.updated_unix = stmt->integer(4);
    t.attempts = static_cast<int>(stmt->integer(5));
    auto state = parse_boot_trial_state(stmt->text(6));
    if (!state) return fail(state.error());
    t.state = *state;
    t.message = stmt->text(7);
    out.push_back(std::move(t));
  }
  return out;
}

Result<std::optional<BootTrialRecord>> StateStore::query_boot_trial(std::string_view where,
                                                                    std::optional<std::int64_t> arg) const {
  auto trials = query_boot_trials(where, arg, 1);
  if (!trials) return fail(trials.error());
  if (trials->empty()) return std::optional<BootTrialRecord>();
  return std::optional<BootTrialRecord>(std::move(trials->front()));
}

Result<std::vector<BootTrialRecord>> StateStore::boot_trials_of_run(std::int64_t run_id) const {
  return query_boot_trials("WHERE run_id = ?", run_id, -1);
}

Result<std::optional<BootTrialRecord>> StateStore::get_boot_trial(std::int64_t id) const {
  return query_boot_trial("WHERE id = ?", id);
}

Result<std::optional<BootTrialRecord>> StateStore::pending_boot_trial() const {
  return query_boot_trial("WHERE state = 'pending'", std::nullopt);
}

Result<int> StateStore::record_boot_attempt(std::int64_t id) {
  std::string context = fmt::format("cannot count a boot attempt of trial {}", id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(
      "UPDATE boot_trials SET attempts = attempts + 1, updated_unix = ? WHERE id = ? RETURNING attempts", context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(now_unix()).bind(id);
  auto row = stmt->step();
  if (!row) return fail(row.error());
  if (!*row) return fail("state", path_, fmt::format("{}: no such trial", context));
  int attempts = static_cast<int>(stmt->integer(0));
  stmt->close();
  if (auto r = txn->commit(); !r) return fail(r.error());
  return attempts;
}

Result<void> StateStore::set_boot_trial_state(std::int64_t id, BootTrialState state, const std::string& message) {
  return update_one("UPDATE boot_trials SET state = ?, message = ?, updated_unix = ? WHERE id = ?",
                    fmt::format("cannot mark boot trial {} {}", id, to_string(state)),
                    [&](Statement& s) { s.bind(to_string(state)).bind(message).bind(now_unix()).bind(id); });
}

}  // namespace guard
