// The SQLite connection of the state store: open, checks of a file that is not ours, the
// journal (a rollback journal, never WAL: see use_rollback_journal), migrations, transactions. The tables live in runs.cc, reports.cc, snapshots.cc, gate.cc,
// boot_trials.cc and rollbacks.cc; the schema in schema.cc.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "base/atomic_file.h"
#include "base/trusted_dir.h"
#include "base/unique_fd.h"
#include "guard/state/db.h"

namespace guard::state {

using base::Error;
using base::fail;
using base::Result;

void CloseDatabase::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void FinalizeStatement::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

std::int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr int kBusyTimeoutMs = 5000;

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

// What to tell the operator about a file that SQLite cannot use. Nothing was written to it.
std::string damaged_advice(const std::string& path) {
  return fmt::format(
      "it was left untouched: move it aside (mv {0} {0}.broken) and upgrade-guard starts a new, empty store "
      "(run history, baselines and the gate state are lost), or restore it from a backup",
      path);
}

// What to tell the operator about a state.db that is missing or empty although there was one.
std::string lost_advice(const std::string& dir, const std::string& path) {
  return fmt::format(
      "restore it from a backup; or, knowingly losing the run history, baselines and the gate state, start a new, "
      "empty store: rm -f {} {}/{}",
      path, dir, StateStore::kMarkerName);
}

// <state_dir>/<name> for a file beside state.db.
std::string beside(const std::string& state_dir, const char* name) {
  std::string path = StateStore::database_path(state_dir);
  return path.substr(0, path.size() - std::string_view(StateStore::kFileName).size()) + name;
}

// A file name as an SQLite URI path: everything but unreserved characters and '/' escaped.
// e.g. "/var/lib/upgrade-guard/state.db" -> "file:/var/lib/upgrade-guard/state.db".
std::string file_uri(const std::string& path, std::string_view query) {
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') uri += static_cast<char>(c);
    else uri += fmt::format("%{:02X}", c);
  }
  if (!query.empty()) uri += "?" + std::string(query);
  return uri;
}

// Copies file `from` to `to` (created 0600, never over an existing file).
Result<void> copy_file(const std::string& from, const std::string& to) {
  base::UniqueFd in(::open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in) return base::fail_errno("open", from, errno, "cannot read the state database");
  base::UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out) return base::fail_errno("open", to, errno, "cannot copy the state database");
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::fail_errno("read", from, errno, "cannot read the state database");
    if (n == 0) return {};
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out.get(), buf + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return base::fail_errno("write", to, errno, "cannot copy the state database");
      done += w;
    }
  }
}

// sqlite3_open_v2 of `name` (a path or a URI) with `flags`; an error naming `path` and saying
// what could not be done, e.g. "cannot open the state database for reading".
Result<std::unique_ptr<sqlite3, CloseDatabase>> open_connection(const std::string& name, int flags,
                                                                const std::string& path, std::string_view what) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(name.c_str(), &raw, flags | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE, nullptr);
  std::unique_ptr<sqlite3, CloseDatabase> db(raw);
  if (rc != SQLITE_OK) {
    int err = raw ? sqlite3_system_errno(raw) : 0;
    std::string detail = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return fail(Error{"sqlite3_open_v2", path, err, fmt::format("{}: sqlite3_open_v2: {}", what, detail)});
  }
  return db;
}

}  // namespace

// The directory holding a private copy: its files are removed with it.
struct StateStore::TempCopy {
  std::string dir;
};

void StateStore::RemoveTempCopy::operator()(TempCopy* copy) const {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"})
    ::unlink((copy->dir + "/" + kFileName + suffix).c_str());
  ::rmdir(copy->dir.c_str());
  delete copy;
}

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
  if (read_only_ && db && (sqlite3_errcode(db) & 0xff) == SQLITE_READONLY)
    detail += " (the state database is open read-only: " + read_only_mode_ + ")";
  // A full disk (SQLITE_FULL) or a failing one (SQLITE_IOERR_*): the errno says which, e.g.
  // "...: sqlite3_step: database or disk is full: /var/lib/upgrade-guard/state.db: No space left on device".
  int code = db ? sqlite3_errcode(db) & 0xff : 0;
  int err = (code == SQLITE_FULL || code == SQLITE_IOERR || code == SQLITE_CANTOPEN) ? sqlite3_system_errno(db) : 0;
  return Error{std::string(call), path_, err, fmt::format("{}: {}: {}", context, call, detail)};
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

Result<bool> StateStore::present(const std::string& state_dir) {
  const std::string path = database_path(state_dir);
  struct stat st {};
  const int err = ::lstat(path.c_str(), &st) == 0 ? 0 : errno;
  const bool missing = err == ENOENT;
  if (err != 0 && !missing) {
    return base::fail_errno("stat", path, err,
                            err == EACCES    ? "cannot read the state database (run as root: the state directory is "
                                               "root's alone)"
                            : err == ENOTDIR ? "cannot read the state database: the state directory is not a directory"
                                             : "cannot read the state database");
  }
  if (!missing && !S_ISREG(st.st_mode))
    return fail(Error{"stat", path, 0, "the state database is not a regular file; " + damaged_advice(path)});
  if (!missing && st.st_size > 0) return true;
  // Missing or empty: a fresh start, unless the directory says there was a database here.
  std::string evidence;
  for (const char* name : {kMarkerName, "gate"}) {
    struct stat mst {};
    const std::string other = beside(state_dir, name);
    if (::lstat(other.c_str(), &mst) == 0) {
      evidence = other;
      break;
    }
    if (errno != ENOENT) return base::fail_errno("stat", other, errno, "cannot read the state directory");
  }
  if (evidence.empty()) return false;
  return fail(Error{"state", path, 0,
                    fmt::format("the state database is {} although {} says this directory had one: it was lost (a "
                                "full disk, a damaged filesystem, or removed by hand), and with it the run history "
                                "and the gate's state. Nothing was changed; {}",
                                missing ? "missing" : "empty (0 bytes)", evidence, lost_advice(state_dir, path))});
}

Result<StateStore> StateStore::open(const std::string& state_dir) {
  return open_impl(state_dir, kSchemaVersion);
}

Result<StateStore> StateStore::open_read_only_uri(const std::string& uri, const std::string& path,
                                                  std::string mode) {
  auto db = open_connection(uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, path,
                            "cannot open the state database for reading");
  if (!db) return fail(db.error());
  StateStore store(std::move(*db), path);
  store.read_only_ = true;
  store.read_only_mode_ = std::move(mode);
  sqlite3_busy_timeout(store.db_.get(), kBusyTimeoutMs);
  if (auto r = store.exec("PRAGMA mmap_size=0", "cannot configure the state database"); !r) return fail(r.error());
  // The first read opens the write-ahead log of a database still in WAL (upgrade-guard 0.0.9)
  // or finds a hot rollback journal: this is where a read-only directory fails.
  if (auto r = store.exec("SELECT count(*) FROM sqlite_master", "cannot read the state database"); !r)
    return fail(r.error());
  return store;
}

Result<StateStore> StateStore::open_read_only(const std::string& state_dir) {
  std::string path = database_path(state_dir);
  if (auto r = base::check_trusted_dir(state_dir, "the state directory"); !r) return fail(r.error());
  auto is_present = present(state_dir);
  if (!is_present) return fail(is_present.error());
  if (!*is_present) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return base::fail_errno("stat", path, errno, "cannot open the state database");
    return fail(Error{"stat", path, 0, "the state database is empty and cannot be created read-only"});
  }

  // 1. As any reader: with the -shm of the writers, so a running guard's commits are seen.
  auto store = open_read_only_uri(file_uri(path, "mode=ro"), path, "read-only");
  if (!store) {
    // The log that holds what the file alone does not say: the write-ahead log of a database
    // still in WAL, or the rollback journal of a transaction that never finished (a hot
    // journal, which a read-only connection cannot roll back).
    std::string log_suffix;
    for (const char* suffix : {"-wal", "-journal"}) {
      struct stat lst {};
      if (::stat((path + suffix).c_str(), &lst) == 0 && lst.st_size > 0) {
        log_suffix = suffix;
        break;
      }
    }
    if (log_suffix.empty()) {
      // 2. No -shm can be made (a read-only filesystem) and no log to replay: the file is
      // all there is. immutable=1 reads it without the -shm.
      store = open_read_only_uri(file_uri(path, "mode=ro&immutable=1"), path,
                                 "immutable, its directory is read-only and it has no write-ahead log");
    } else {
      // 3. immutable=1 would ignore the log: read a private copy of both, where SQLite can
      // replay the -wal or roll the hot journal back.
      std::unique_ptr<TempCopy, RemoveTempCopy> copy;
      std::string tried;
      const char* env_tmp = std::getenv("TMPDIR");
      for (const std::string& base : {std::string(env_tmp ? env_tmp : ""), std::string("/run"), std::string("/dev/shm"),
                               std::string("/tmp")}) {
        if (base.empty()) continue;
        std::string tmpl = base + "/upgrade-guard-state-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) {
          tried += (tried.empty() ? "" : ", ") + base;
          continue;
        }
        copy.reset(new TempCopy{tmpl});
        break;
      }
      if (!copy)
        return fail(Error{"mkdtemp", path, 0,
                          "cannot read the state database on a read-only filesystem: no writable directory for a "
                          "private copy (tried " + tried + ")"});
      std::string copy_path = copy->dir + "/" + kFileName;
      if (auto r = copy_file(path, copy_path); !r) return fail(r.error());
      if (auto r = copy_file(path + log_suffix, copy_path + log_suffix); !r) return fail(r.error());
      {
        auto replay = open_connection(copy_path, SQLITE_OPEN_READWRITE, path, "cannot read the state database");
        if (!replay) return fail(replay.error());
        sqlite3_exec(replay->get(), "PRAGMA mmap_size=0; SELECT count(*) FROM sqlite_master", nullptr, nullptr,
                     nullptr);
      }
      store = open_read_only_uri(file_uri(copy_path, "mode=ro"), path,
                                 "a private copy, its directory is read-only (" + copy->dir + ")");
      if (store) store->temp_copy_ = std::move(copy);
    }
    if (!store) return fail(store.error());
  }

  auto version = store->schema_version();
  if (!version) return fail(version.error());
  if (*version > kSchemaVersion) {
    return fail(Error{"user_version", path, 0,
                      fmt::format("state.db has schema version {}, this upgrade-guard knows up to {}: upgrade "
                                  "upgrade-guard",
                                  *version, kSchemaVersion)});
  }
  if (*version < kSchemaVersion) {
    // Older than this program: its tables lack what the readers ask for. Migrating writes.
    if (!on_read_only_filesystem(state_dir) && ::access(state_dir.c_str(), W_OK) == 0) {
      { StateStore closing = std::move(*store); }  // closed before open() takes the write lock
      return open(state_dir);
    }
    return fail(Error{"user_version", path, EROFS,
                      fmt::format("state.db has schema version {}, this upgrade-guard reads version {}; it cannot be "
                                  "migrated while its directory is read-only",
                                  *version, kSchemaVersion)});
  }
  return std::move(*store);
}

Result<StateStore> StateStore::open_at_version_for_test(const std::string& state_dir, int version) {
  if (version < 1 || version > kSchemaVersion) {
    return fail("state", state_dir, fmt::format("no schema version {}", version));
  }
  return open_impl(state_dir, version);
}

Result<StateStore> StateStore::open_impl(const std::string& state_dir, int target_version) {
  // Before anything in it is followed or created: a directory others can change is refused.
  if (auto r = base::check_trusted_dir(state_dir, "the state directory"); !r) return fail(r.error());
  if (auto r = ensure_state_dir(state_dir); !r) return fail(r.error());
  if (auto r = base::check_trusted_dir(state_dir, "the state directory"); !r) return fail(r.error());
  std::string path = database_path(state_dir);
  // A lost database is not replaced by an empty one: that would read as "no runs, gate open".
  if (auto r = present(state_dir); !r) return fail(r.error());

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

  auto db = open_connection(path, SQLITE_OPEN_READWRITE, path, "cannot open the state database");
  if (!db) return fail(db.error());
  StateStore store(std::move(*db), path);
  sqlite3_busy_timeout(store.db_.get(), kBusyTimeoutMs);
  // Before the first read (see use_rollback_journal): no memory-mapped file at all, and a
  // database still in WAL is opened with its wal-index on the heap instead of in a -shm.
  if (auto r = store.exec("PRAGMA mmap_size=0; PRAGMA locking_mode=EXCLUSIVE", "cannot configure the state database");
      !r)
    return fail(r.error());

  // Read before anything writes: a file that is not ours, is damaged or is newer than this
  // program must stay exactly as it is. (Changing the journal mode may rewrite the header.)
  auto version = store.read_retrying_busy();
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

  if (auto r = store.use_rollback_journal(); !r) return fail(r.error());
  if (auto r = store.exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", "cannot configure the state database");
      !r) {
    return fail(r.error());
  }
  if (auto r = store.migrate(target_version); !r) return fail(r.error());
  // The database is complete: from now on a missing or empty state.db is a lost one.
  const std::string marker = beside(state_dir, kMarkerName);
  struct stat mst {};
  if (::lstat(marker.c_str(), &mst) != 0) {
    if (auto w = base::write_file_atomic(marker,
                                         "upgrade-guard's state database state.db was created in this directory: "
                                         "if it is missing or empty, it was lost.\n",
                                         0644);
        !w)
      return fail(w.error());
  }
  return store;
}

bool StateStore::on_read_only_filesystem(std::string dir) {
  for (;;) {
    struct statvfs vfs {};
    if (::statvfs(dir.c_str(), &vfs) == 0) return (vfs.f_flag & ST_RDONLY) != 0;
    if (errno != ENOENT) return false;
    auto slash = dir.find_last_of('/');
    if (slash == std::string::npos || dir == "/") return false;
    dir = slash == 0 ? std::string("/") : dir.substr(0, slash);
  }
}

Result<int> StateStore::schema_version() const {
  auto stmt = prepare("PRAGMA user_version", "cannot read the state database's schema version");
  if (!stmt) return fail(stmt.error());
  auto row = stmt->step();
  if (!row) return fail(row.error());
  return *row ? static_cast<int>(stmt->integer(0)) : 0;
}

Result<int> StateStore::read_retrying_busy() {
  // The first read of a database still in WAL takes the exclusive lock (locking_mode=
  // EXCLUSIVE), and SQLite does not run the busy handler for it: retry for as long as the
  // busy timeout, e.g. while an upgrade-guard 0.0.9 still has it open.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (;;) {
    auto version = schema_version();
    int code = sqlite3_errcode(db_.get()) & 0xff;
    if (version || (code != SQLITE_BUSY && code != SQLITE_LOCKED) || std::chrono::steady_clock::now() >= deadline)
      return version;
    ::usleep(10'000);
  }
}

// The state database keeps a rollback journal (journal_mode=TRUNCATE), not a write-ahead log.
// WAL readers and writers share the wal-index through a memory-mapped <db>-shm file; on btrfs
// (copy-on-write) every store into a mapped page needs a newly allocated block, and when the
// filesystem is full that store is a SIGBUS, not an error: the guard died in
// set_command_status right after a command had filled the disk (the default state directory
// is on the root's filesystem). A rollback journal is written with write(), whose ENOSPC is
// SQLITE_FULL, an error the run handles (the gate closes, `recover` finishes the run); with
// mmap_size=0 nothing of the database is mapped at all. WAL with locking_mode=EXCLUSIVE (the
// wal-index on the heap) would lock every reader, `gate status` included, out for a whole run;
// reserving space cannot help on a copy-on-write filesystem. What readers lose is little: a
// reader waits (busy timeout) while a commit writes, which takes milliseconds. TRUNCATE rather
// than DELETE: the journal file stays, empty, between transactions, so a commit does not create
// and remove a directory entry.
//
// A database from upgrade-guard 0.0.9 is still in WAL: open_impl set locking_mode=EXCLUSIVE
// before its first read, so its -wal is read with the wal-index on the heap (no -shm mapped),
// and leaving WAL here checkpoints the -wal into the file and removes it. Then the usual shared
// locking again.
Result<void> StateStore::use_rollback_journal() {
  const char* context = "cannot switch the state database to a rollback journal";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (;;) {
    auto stmt = prepare("PRAGMA journal_mode=TRUNCATE", context);
    if (!stmt) return fail(stmt.error());
    auto row = stmt->step();
    if (row) {
      if (!*row || stmt->text(0) != "truncate")
        return fail("journal_mode", path_, fmt::format("{}: it stays {}", context, *row ? stmt->text(0) : "?"));
      break;
    }
    int code = sqlite3_errcode(db_.get()) & 0xff;
    if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || std::chrono::steady_clock::now() >= deadline) {
      return fail(row.error());
    }
    stmt->close();
    ::usleep(10'000);
  }
  // A -shm left by a WAL database is nobody's now: no connection can be in WAL while this one
  // holds its lock, and the file says rollback journal from now on.
  if (::unlink((path_ + "-shm").c_str()) != 0 && errno != ENOENT)
    return base::fail_errno("unlink", path_ + "-shm", errno, context);
  // Back to shared locking; the lock this connection holds goes with its next read.
  if (auto r = exec("PRAGMA locking_mode=NORMAL; SELECT count(*) FROM sqlite_master", context); !r) return r;
  return {};
}

Result<void> StateStore::migrate(int target_version) {
  for (const Migration& m : migrations()) {
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

int StateStore::changes() const { return sqlite3_changes(db_.get()); }
std::int64_t StateStore::last_insert_id() const { return sqlite3_last_insert_rowid(db_.get()); }

Result<void> StateStore::update_one(std::string_view sql, const std::string& context,
                                    const std::function<void(Statement&)>& bind) {
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(sql, context);
  if (!stmt) return fail(stmt.error());
  bind(*stmt);
  if (auto r = stmt->run(); !r) return r;
  if (changes() != 1) return fail("state", path_, context + ": not found");
  return txn->commit();
}

}  // namespace guard::state
