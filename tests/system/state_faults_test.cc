// The gate fails closed, driven through the built binary (UG_BINARY): a state database that is
// lost (0 bytes, missing while state.db.created says there was one), truncated, garbage, newer
// than this program or holding a row that does not parse is "unknown" (exit 4, a message naming
// the file, the file byte-identical afterwards), never "open"; a state directory replaced by a
// file, a non-root caller of each reading command, and state/log directories others can write
// to (a planted symlink must not be followed as root) are refused the same way.
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/common/test_env.h"
#include "tests/system/loop_image.h"

namespace guard {
namespace {

namespace fs = std::filesystem;
using guard::testing::read_file;
using guard::testing::run;
using guard::testing::TempDir;
using guard::testing::write_file;

class StateFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root: the state directory is root's");
    ::chmod(dir_.path().c_str(), 0755);  // as /var/lib: the state directory's own 0700 is the barrier
    guard::testing::make_dirs(root_dir(), 0755);
  }
  std::string state() const { return dir_ / "state"; }
  std::string db() const { return state() + "/state.db"; }
  std::string root_dir() const { return dir_ / "root"; }  // an empty root: no enforcement on the host
  base::ProcessResult guard(const std::vector<std::string>& args) {
    std::vector<std::string> argv{guard::testing::binary(), "--root", root_dir(), "--state-dir", state(),
                                  "--log-dir", dir_ / "log", "--run-dir", dir_ / "run"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 120);
  }
  // A real store: the gate closed and opened again (gate file "open", the row closed = 0).
  void make_store() {
    auto closed = guard({"gate", "close", "--reason", "test"});
    ASSERT_EQ(closed.exit_code, 0) << closed.err;
    auto opened = guard({"gate", "open", "--force", "--reason", "test over"});
    ASSERT_EQ(opened.exit_code, 0) << opened.err;
    ASSERT_EQ(read_file(state() + "/gate"), "open\n");
    ASSERT_TRUE(fs::exists(state() + "/state.db.created"));
    ASSERT_FALSE(fs::exists(db() + "-wal"));  // checkpointed: state.db is the whole database
  }
  void sql(const std::string& statement) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(raw, statement.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(raw);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
    fs::remove(db() + "-wal");
    fs::remove(db() + "-shm");
  }
  // gate status (text and JSON) reads unknown: exit 4, never 0 or 1 with "open"; stderr names
  // `named`; state.db stays exactly `bytes`.
  void expect_unknown(const std::string& named, const std::string& why) {
    const std::string before = read_file(db());
    auto status = guard({"gate", "status"});
    EXPECT_EQ(status.exit_code, 4) << why << "\n" << status.out << status.err;
    EXPECT_EQ(status.out.find("gate open"), std::string::npos) << why << "\n" << status.out;
    EXPECT_NE(status.out.find("gate UNKNOWN"), std::string::npos) << why << "\n" << status.out;
    EXPECT_NE(status.err.find(named), std::string::npos) << why << "\n" << status.err;
    auto json = guard({"--json", "gate", "status"});
    EXPECT_EQ(json.exit_code, 4) << why << "\n" << json.err;
    auto j = nlohmann::json::parse(json.out, nullptr, false);
    EXPECT_TRUE(j.is_object() && j["reboot_safe"] == false && j["state"] == "unknown") << why << "\n" << json.out;
    auto history = guard({"history"});
    EXPECT_EQ(history.exit_code, 4) << why << "\n" << history.out << history.err;
    EXPECT_NE(history.err.find(named), std::string::npos) << why << "\n" << history.err;
    auto started = guard({"run", "--", "/bin/true"});
    EXPECT_EQ(started.exit_code, 4) << why << "\n" << started.out << started.err;
    EXPECT_EQ(read_file(db()), before) << why << ": state.db was changed";
  }

  TempDir dir_{"ug-state-faults"};
};

TEST_F(StateFaultsTest, AFreshInstallWithoutAStateDirectoryReadsOpen) {
  auto status = guard({"gate", "status"});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  EXPECT_NE(status.out.find("gate open"), std::string::npos) << status.out;
  EXPECT_FALSE(fs::exists(state())) << "a reading command created the state directory";
}

TEST_F(StateFaultsTest, AnEmptyDatabaseIsLostNotNew) {
  make_store();
  ::truncate(db().c_str(), 0);
  expect_unknown(db(), "0 bytes");
  EXPECT_EQ(fs::file_size(db()), 0U);
  auto err = guard({"gate", "status"}).err;
  EXPECT_NE(err.find("empty (0 bytes)"), std::string::npos) << err;
  EXPECT_NE(err.find("state.db.created"), std::string::npos) << err;
}

TEST_F(StateFaultsTest, AMissingDatabaseIsLostNotRecreated) {
  make_store();
  fs::remove(db());
  auto status = guard({"gate", "status"});
  EXPECT_EQ(status.exit_code, 4) << status.out << status.err;
  EXPECT_NE(status.err.find("is missing"), std::string::npos) << status.err;
  auto closing = guard({"gate", "close", "--reason", "again"});
  EXPECT_EQ(closing.exit_code, 4) << closing.out << closing.err;
  EXPECT_FALSE(fs::exists(db())) << "a new, empty database replaced the lost one";
}

TEST_F(StateFaultsTest, ATruncatedDatabaseIsUnknownAtEveryCut) {
  make_store();
  const std::string whole = read_file(db());
  ASSERT_GT(whole.size(), 16384U);
  for (std::size_t cut : {std::size_t{50}, std::size_t{100}, std::size_t{4096}, std::size_t{8192},
                          whole.size() / 2, whole.size() - 4096}) {
    write_file(db(), whole.substr(0, cut), 0600);
    expect_unknown(db(), "cut at " + std::to_string(cut));
  }
}

TEST_F(StateFaultsTest, GarbageBytesAreUnknown) {
  make_store();
  std::mt19937 gen(15);
  std::string garbage(65536, '\0');
  for (auto& c : garbage) c = static_cast<char>(gen());
  write_file(db(), garbage, 0600);
  expect_unknown(db(), "garbage");
}

TEST_F(StateFaultsTest, ANewerSchemaIsUnknown) {
  make_store();
  sql("PRAGMA user_version = 99");
  expect_unknown(db(), "newer schema");
  EXPECT_NE(guard({"gate", "status"}).err.find("schema version 99"), std::string::npos);
}

TEST_F(StateFaultsTest, AGateRowThatDoesNotParseIsUnknown) {
  make_store();
  sql("UPDATE gate SET closed = 'maybe'");
  const std::string before = read_file(db());
  auto status = guard({"gate", "status"});
  EXPECT_EQ(status.exit_code, 4) << status.out << status.err;
  EXPECT_NE(status.err.find("table gate"), std::string::npos) << status.err;
  EXPECT_NE(status.err.find(db()), std::string::npos) << status.err;
  EXPECT_EQ(status.out.find("gate open"), std::string::npos) << status.out;
  EXPECT_EQ(read_file(db()), before);
}

TEST_F(StateFaultsTest, ARunRowThatDoesNotParseNamesItsRow) {
  make_store();
  sql("INSERT INTO runs (id, started_unix, finished_unix, root, command, phase, phase_changed_unix, outcome, "
      "exit_code, pid) VALUES (7, 1, 2, '/', '[\"true\"]', 'done', 2, 'exploded', 0, 1);"
      "INSERT INTO runs (id, started_unix, finished_unix, root, command, phase, phase_changed_unix, outcome, "
      "exit_code, pid) VALUES (8, 1, 2, '/', '[\"true\"]', 'done', 2, 'passed', 0, 1);");
  const std::string before = read_file(db());
  auto history = guard({"history"});
  EXPECT_NE(history.exit_code, 0) << history.out;
  EXPECT_NE(history.err.find("run 7"), std::string::npos) << history.err;
  EXPECT_NE(history.err.find("exploded"), std::string::npos) << history.err;
  EXPECT_NE(history.err.find(db()), std::string::npos) << history.err;
  EXPECT_EQ(read_file(db()), before);
}

TEST_F(StateFaultsTest, AStateDirectoryReplacedByAFileIsUnknown) {
  write_file(state(), "not a directory\n", 0600);
  auto status = guard({"gate", "status"});
  EXPECT_EQ(status.exit_code, 4) << status.out << status.err;
  EXPECT_NE(status.out.find("gate UNKNOWN"), std::string::npos) << status.out;
  EXPECT_NE(status.err.find(state()), std::string::npos) << status.err;
  auto history = guard({"history"});
  EXPECT_EQ(history.exit_code, 4) << history.out << history.err;
  EXPECT_EQ(read_file(state()), "not a directory\n");
}

TEST_F(StateFaultsTest, EveryReadingCommandRefusesANonRootCaller) {
  make_store();
  auto closed = guard({"gate", "close", "--reason", "closed for the test"});
  ASSERT_EQ(closed.exit_code, 0) << closed.err;
  const std::string before = read_file(db());
  const std::vector<std::vector<std::string>> commands = {
      {"gate", "status"}, {"--json", "gate", "status"}, {"history"}, {"--json", "history"},
      {"snapshot", "list"}, {"audit"}, {"baseline", "show"}, {"boot-check", "--no-reboot"}};
  for (const auto& args : commands) {
    std::vector<std::string> argv{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                  guard::testing::binary(), "--root", root_dir(), "--state-dir", state()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, 120);
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    EXPECT_EQ(r.exit_code, 4) << shown << "\n" << r.out << r.err;
    EXPECT_EQ(r.out.find("gate open"), std::string::npos) << shown << r.out;
    EXPECT_EQ(r.out.find("no boot trial pending"), std::string::npos) << shown << r.out;
    EXPECT_TRUE(r.err.find("root") != std::string::npos || r.err.find("Permission denied") != std::string::npos)
        << shown << "\n" << r.err;
  }
  EXPECT_EQ(read_file(db()), before);
  // check of the live system: as nobody it used to read what it could and exit 1 with
  // thousands of findings about files it may not read.
  auto live = run({"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", guard::testing::binary(),
                   "--state-dir", state(), "check", "--checks", "dpkg-state"},
                  120);
  EXPECT_EQ(live.exit_code, 4) << live.out << live.err;
  EXPECT_NE(live.err.find("must run as root"), std::string::npos) << live.err;
}

TEST_F(StateFaultsTest, AStateDirectoryOthersCanWriteIsRefused) {
  make_store();
  ::chmod(state().c_str(), 0777);
  auto status = guard({"gate", "status"});
  EXPECT_EQ(status.exit_code, 4) << status.out << status.err;
  EXPECT_NE(status.err.find("writable by others"), std::string::npos) << status.err;
  const std::string target = dir_ / "target";
  write_file(target, "untouched\n", 0644);
  fs::remove(state() + "/verified-hashes");
  guard::testing::make_symlink(target, state() + "/verified-hashes");
  auto closing = guard({"gate", "close", "--reason", "x"});
  EXPECT_EQ(closing.exit_code, 4) << closing.out << closing.err;
  EXPECT_EQ(read_file(target), "untouched\n");
}

TEST_F(StateFaultsTest, ALogDirectoryOthersCanWriteIsRefusedBeforeItsSymlinkIsFollowed) {
  auto copied = run({"cp", "-a", guard::testing::cached_root("minbase"), root_dir() + ".new"}, 600);
  if (copied.exit_code != 0) UG_SKIP_OR_FAIL("no cached minbase root: " + copied.err);
  fs::remove(root_dir());
  fs::rename(root_dir() + ".new", root_dir());
  const std::string log = dir_ / "log";
  guard::testing::make_dirs(log, 0777);
  ::chmod(log.c_str(), 0777);
  const std::string target = dir_ / "target";
  write_file(target, "untouched\n", 0644);
  guard::testing::make_symlink(target, log + "/run-1.log");
  auto r = guard({"run", "--", "/bin/echo", "PLANTED"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("writable by others"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(read_file(target), "untouched\n");
}

}  // namespace
}  // namespace guard
