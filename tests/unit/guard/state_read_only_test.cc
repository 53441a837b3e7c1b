// The state store read where nothing may be written: a read-only filesystem (a boot from the
// pre-upgrade btrfs snapshot, which is read-only) and the reading commands. Each case runs in a
// forked child that sees the state directory through a read-only bind mount in its own mount
// namespace (a user namespace too when not root), so it is a real EROFS for root as well.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>

#include "guard/core/liveness.h"
#include "guard/state/store.h"
#include "tests/common/test_env.h"

namespace guard {
namespace {

using guard::testing::read_file;
using guard::testing::TempDir;
using ::testing::HasSubstr;
using namespace guard::state;

constexpr int kCannotIsolate = 77;

bool write_text(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// Runs `body` in a child that sees `dir` read-only (EROFS); its return value is the child's
// exit code, kCannotIsolate when the namespaces could not be made. Messages go to stderr.
int in_read_only_view(const std::string& dir, const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t child = ::fork();
  if (child == -1) return -1;
  if (child == 0) {
    if (::geteuid() == 0) {
      if (::unshare(CLONE_NEWNS) != 0) ::_exit(kCannotIsolate);
    } else {
      uid_t uid = ::geteuid();
      gid_t gid = ::getegid();
      if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) ::_exit(kCannotIsolate);
      write_text("/proc/self/setgroups", "deny");
      if (!write_text("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n") ||
          !write_text("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n"))
        ::_exit(kCannotIsolate);
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
        ::mount(nullptr, dir.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0)
      ::_exit(kCannotIsolate);
    // Really read-only, or the test proves nothing.
    std::string probe = dir + "/.probe";
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EROFS) ::_exit(kCannotIsolate);
    int code = body();
    std::fflush(nullptr);
    ::_exit(code);
  }
  int status = 0;
  if (::waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define UG_IN_READ_ONLY_VIEW(dir, body)                                          \
  do {                                                                           \
    int code_ = in_read_only_view((dir), (body));                                \
    if (code_ == kCannotIsolate) UG_SKIP_OR_FAIL("cannot make a read-only view"); \
    EXPECT_EQ(code_, 0) << "the child's checks failed (see its stderr)";         \
  } while (0)

// A child's check: prints what failed and gives its exit code.
int expect(bool ok, int code, const std::string& what) {
  if (!ok) std::fprintf(stderr, "FAILED (%d): %s\n", code, what.c_str());
  return ok ? 0 : code;
}

class ReadOnlyStateTest : public ::testing::Test {
 protected:
  // A store with one run that has a phase, as a guard leaves it.
  std::int64_t seed(StateStore& store, const std::string& message) {
    auto id = store.begin_run(RunStart{"/", {"apt-get", "dist-upgrade"}, 42, RunKind::run, host_name(), ""});
    EXPECT_TRUE(id) << id.error().to_string();
    EXPECT_TRUE(store.set_phase(*id, RunPhase::command));
    EXPECT_TRUE(store.set_run_message(*id, message));
    return *id;
  }

  // Reads run `id` from a read-only store of `dir` in the child: 0 when it shows `message`
  // and the store refuses to write, saying it is read-only.
  static int read_back(const std::string& dir, std::int64_t id, const std::string& message,
                       const std::string& mode_says) {
    auto store = StateStore::open_read_only(dir);
    if (!store) return expect(false, 10, "open_read_only: " + store.error().to_string());
    if (int c = expect(store->read_only(), 11, "read_only()")) return c;
    if (int c = expect(store->read_only_mode().find(mode_says) != std::string::npos, 12,
                       "mode '" + store->read_only_mode() + "' says '" + mode_says + "'"))
      return c;
    auto run = store->get_run(id);
    if (!run || !*run) return expect(false, 13, "the run is not there");
    if (int c = expect((*run)->message == message && (*run)->phase == RunPhase::command, 14,
                       "the run reads back: " + (*run)->message))
      return c;
    auto gate = store->get_gate();
    if (int c = expect(gate.has_value(), 15, "the gate reads")) return c;
    auto written = store->set_run_message(id, "changed");
    if (int c = expect(!written, 16, "a write fails")) return c;
    return expect(written.error().to_string().find("read-only") != std::string::npos, 17,
                  "the write's error says read-only: " + written.error().to_string());
  }

  // The database as upgrade-guard 0.0.9 left it: in WAL mode, with `message` written to run
  // `id` only in the log, by a connection that stays open (closing would checkpoint the log
  // into the database). The store itself never uses WAL any more.
  static sqlite3* write_in_wal(const std::string& dir, std::int64_t id, const std::string& message) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open((dir + "/state.db").c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr), SQLITE_OK);
    const std::string sql = "UPDATE runs SET message = '" + message + "' WHERE id = " + std::to_string(id);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    return db;
  }

  TempDir tmp_;
  std::string dir_ = tmp_ / "state";
};

TEST_F(ReadOnlyStateTest, ReadsACleanlyClosedDatabaseOnAReadOnlyFilesystem) {
  std::int64_t id = 0;
  {
    auto store = StateStore::open(dir_);
    ASSERT_TRUE(store) << store.error().to_string();
    id = seed(*store, "closed cleanly");
  }
  ASSERT_FALSE(std::filesystem::exists(dir_ + "/state.db-wal")) << "a rollback journal: no log";
  // A rollback-journal database needs no -shm: SQLite's own read-only mode reads it.
  UG_IN_READ_ONLY_VIEW(dir_, [&] { return read_back(dir_, id, "closed cleanly", "read-only"); });
}

TEST_F(ReadOnlyStateTest, ReadsTheWriteAheadLogOfADatabaseCopiedWhileOpen) {
  // A snapshot taken while a guard had the store open holds state.db and state.db-wal: the
  // commits in the log must be read (immutable=1 alone would ignore them).
  std::int64_t id = 0;
  {
    auto store = StateStore::open(dir_);
    ASSERT_TRUE(store) << store.error().to_string();
    id = seed(*store, "before the log");
  }
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> writer(write_in_wal(dir_, id, "only in the log"), &sqlite3_close);
  std::string copy = tmp_ / "snapshot";
  std::filesystem::create_directories(copy);
  for (const char* f : {"state.db", "state.db-wal"})
    std::filesystem::copy_file(dir_ + "/" + f, copy + "/" + f);
  ASSERT_GT(std::filesystem::file_size(copy + "/state.db-wal"), 0u);
  UG_IN_READ_ONLY_VIEW(copy, [&] { return read_back(copy, id, "only in the log", "private copy"); });
  // The private copy is gone again: nothing is left in $TMPDIR, /run or /tmp.
  for (const char* base : {"/run", "/tmp"}) {
    for (const auto& e : std::filesystem::directory_iterator(base))
      EXPECT_THAT(e.path().filename().string(), ::testing::Not(HasSubstr("upgrade-guard-state-")))
          << "left behind in " << base;
  }
}

TEST_F(ReadOnlyStateTest, ReadsTheLogAndSharedMemoryOfADatabaseOpenInAWriter) {
  std::int64_t id = 0;
  {
    auto store = StateStore::open(dir_);
    ASSERT_TRUE(store) << store.error().to_string();
    id = seed(*store, "before the log");
  }
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> writer(write_in_wal(dir_, id, "a writer has it open"), &sqlite3_close);
  ASSERT_TRUE(std::filesystem::exists(dir_ + "/state.db-shm"));
  UG_IN_READ_ONLY_VIEW(dir_, [&] { return read_back(dir_, id, "a writer has it open", "read-only"); });
}

TEST_F(ReadOnlyStateTest, OpenReadOnlyNeverCreatesTheDatabase) {
  std::filesystem::create_directories(dir_);
  auto store = StateStore::open_read_only(dir_);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().err, ENOENT) << store.error().to_string();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/state.db"));
}

TEST_F(ReadOnlyStateTest, AnOlderSchemaIsMigratedWhereWritableAndRefusedOnAReadOnlyFilesystem) {
  {
    auto v2 = StateStore::open_at_version_for_test(dir_, 2);
    ASSERT_TRUE(v2) << v2.error().to_string();
  }
  UG_IN_READ_ONLY_VIEW(dir_, [&] {
    auto store = StateStore::open_read_only(dir_);
    if (store) return expect(false, 20, "an old schema opened read-only");
    return expect(store.error().to_string().find("cannot be migrated while its directory is read-only") !=
                      std::string::npos,
                  21, store.error().to_string());
  });
  auto store = StateStore::open_read_only(dir_);
  ASSERT_TRUE(store) << store.error().to_string();
  auto settings = store->settings();
  ASSERT_TRUE(settings);
  EXPECT_EQ(settings->schema_version, StateStore::kSchemaVersion);
}

TEST_F(ReadOnlyStateTest, HistoryAndGateStatusWorkOnAReadOnlyStateDirAndTheGateStaysClosed) {
  {
    auto store = StateStore::open(dir_);
    ASSERT_TRUE(store) << store.error().to_string();
    seed(*store, "a run");
    ASSERT_TRUE(store->set_gate(GateState{true, "post-checks failed", std::nullopt, 0, "test"}));
  }
  const std::string bin = guard::testing::binary();
  UG_IN_READ_ONLY_VIEW(dir_, [&] {
    auto history = guard::testing::run({bin, "history", "--state-dir", dir_, "--run-dir", tmp_ / "run"});
    if (int c = expect(history.exit_code == 0 && history.out.find("apt-get dist-upgrade") != std::string::npos, 30,
                       "history: " + std::to_string(history.exit_code) + " " + history.out + history.err))
      return c;
    auto gate = guard::testing::run({bin, "gate", "status", "--state-dir", dir_, "--run-dir", tmp_ / "run"});
    return expect(gate.exit_code == 1 && gate.out.find("gate CLOSED") != std::string::npos, 31,
                  "gate status: " + std::to_string(gate.exit_code) + " " + gate.out + gate.err);
  });
}

TEST_F(ReadOnlyStateTest, AnUnreadableStateIsNeverAnOpenGate) {
  {
    auto store = StateStore::open(dir_);
    ASSERT_TRUE(store) << store.error().to_string();
  }
  // Not a database any more: the gate is unknown, which is not open.
  guard::testing::write_file(dir_ + "/state.db", std::string(8192, 'x'), 0600);
  const std::string bin = guard::testing::binary();
  UG_IN_READ_ONLY_VIEW(dir_, [&] {
    auto gate = guard::testing::run({bin, "gate", "status", "--state-dir", dir_, "--run-dir", tmp_ / "run"});
    return expect(gate.exit_code == 4 && gate.out.find("gate open") == std::string::npos, 40,
                  "gate status: " + std::to_string(gate.exit_code) + " " + gate.out + gate.err);
  });
}

}  // namespace
}  // namespace guard
