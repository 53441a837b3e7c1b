// The gate fails closed, driven through the built binary (UG_BINARY): a state database that is
// lost (0 bytes, missing while state.db.created says there was one), truncated, garbage, newer
// than this program or holding a row that does not parse is "unknown" (exit 4, a message naming
// the file, the file byte-identical afterwards), never "open"; a state directory replaced by a
// file, a non-root caller of each reading command, and state/log directories others can write
// to (a planted symlink must not be followed as root) are refused the same way.
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <tuple>
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
    // The trial's state is unknown too: never "none" (exit 0) read from a broken database.
    auto trial = guard({"--json", "boot-check", "--status"});
    EXPECT_EQ(trial.exit_code, 4) << why << "\n" << trial.out << trial.err;
    auto tj = nlohmann::json::parse(trial.out, nullptr, false);
    EXPECT_TRUE(tj.is_object() && tj["state"] == "unknown" && tj["settled"] == false) << why << "\n" << trial.out;
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
      {"snapshot", "list"}, {"audit"}, {"baseline", "show"}, {"boot-check", "--no-reboot"},
      {"boot-check", "--status"}, {"--json", "boot-check", "--status", "--wait", "--timeout", "60"}};
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

// `boot-check --status` reads the trial's state and changes nothing: state.db byte-identical,
// no file added to the state directory, whatever the state (as root, on this host's boot).
TEST_F(StateFaultsTest, BootCheckStatusReportsTheTrialAndChangesNothing) {
  make_store();
  std::string boot_id = read_file("/proc/sys/kernel/random/boot_id");
  boot_id.erase(boot_id.find_last_not_of('\n') + 1);
  // A guarded upgrade of 2 packages in this boot armed trial 1 (as the run records it).
  sql("INSERT INTO runs (id, started_unix, finished_unix, root, command, phase, phase_changed_unix, outcome, "
      "exit_code, pid, boot_id) VALUES (12, strftime('%s','now'), strftime('%s','now'), '/', '[\"apt-get\"]', "
      "'done', strftime('%s','now'), 'passed', 0, 1, '" + boot_id + "');"
      "INSERT INTO run_packages VALUES (12, 'libc6', '2.36-9', '2.36-10'), (12, 'curl', '7.88', '7.89');"
      "INSERT INTO boot_trials (run_id, snapshot_id, created_unix, updated_unix, attempts, state) "
      "VALUES (12, '20260101-000000-pre-run12\x1b[2J', strftime('%s','now'), strftime('%s','now'), 0, 'pending');");
  auto listing = [this] {
    std::string names;
    for (const auto& e : fs::directory_iterator(state())) names += e.path().filename().string() + "\n";
    return names;
  };
  std::string before = read_file(db());
  const std::string files = listing();
  auto expect = [&](const std::string& word, int code) {
    auto human = guard({"boot-check", "--status"});
    EXPECT_EQ(human.exit_code, code) << human.out << human.err;
    EXPECT_EQ(human.out.rfind("trial boot: " + word + " (trial 1, run 12, upgrade of 2 packages): ", 0), 0U)
        << human.out;
    EXPECT_EQ(std::count(human.out.begin(), human.out.end(), '\n'), 1) << human.out;
    auto json = guard({"--json", "boot-check", "--status"});
    EXPECT_EQ(json.exit_code, code) << json.out << json.err;
    auto j = nlohmann::json::parse(json.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << json.out;
    EXPECT_EQ(j["schema"], 1);
    EXPECT_EQ(j["state"], word) << json.out;
    EXPECT_EQ(j["settled"], code != 4) << json.out;
    EXPECT_EQ(j["run"], 12) << json.out;
    EXPECT_EQ(j["packages"], 2) << json.out;
    EXPECT_EQ(j["trial"]["id"], 1) << json.out;
    EXPECT_TRUE(j["trial"]["created_unix"].is_number() && j["trial"]["updated_unix"].is_number()) << json.out;
    EXPECT_EQ(j["boot"]["id"], boot_id) << json.out;
    EXPECT_EQ(read_file(db()), before) << word << ": state.db was changed";
    EXPECT_EQ(listing(), files) << word << ": the state directory was changed";
  };
  expect("armed", 4);
  // --wait on an armed trial: nothing settles it in this boot, so it gives up after --timeout.
  auto start = std::chrono::steady_clock::now();
  auto waited = guard({"--json", "boot-check", "--status", "--wait", "--timeout", "3"});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(waited.exit_code, 4) << waited.out << waited.err;
  EXPECT_GE(took, std::chrono::seconds(3));
  EXPECT_LT(took, std::chrono::seconds(30));
  EXPECT_NE(waited.out.find("\"armed\""), std::string::npos) << waited.out;
  EXPECT_EQ(read_file(db()), before);

  // As boot-check leaves it in this boot: blessed, failed (gate closed), rolled back.
  for (const auto& [state, word, code] : {std::tuple{"blessed", "blessed", 0}, std::tuple{"failed", "failed", 1},
                                          std::tuple{"rolled-back", "rolled-back", 3}}) {
    sql(std::string("UPDATE boot_trials SET state = '") + state + "', updated_unix = strftime('%s','now')");
    before = read_file(db());
    expect(word, code);
    // --wait returns at once on a settled state.
    auto settled = guard({"boot-check", "--status", "--wait"});
    EXPECT_EQ(settled.exit_code, code) << settled.out << settled.err;
  }
  // What came from the database is printed escaped (rolled-back names the snapshot).
  auto human = guard({"boot-check", "--status"});
  EXPECT_EQ(human.out.find('\x1b'), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("pre-run12\\x1b[2J"), std::string::npos) << human.out;

  // Settled before this boot started: an ordinary boot.
  sql("UPDATE boot_trials SET state = 'blessed', updated_unix = 1000000000");
  auto none = guard({"--json", "boot-check", "--status"});
  EXPECT_EQ(none.exit_code, 0) << none.out << none.err;
  auto j = nlohmann::json::parse(none.out, nullptr, false);
  EXPECT_TRUE(j.is_object() && j["state"] == "none" && j["trial"].is_null()) << none.out;
  // Options that run the check cannot be mixed in; --wait needs --status.
  EXPECT_EQ(guard({"boot-check", "--status", "--no-reboot"}).exit_code, 2);
  EXPECT_EQ(guard({"boot-check", "--wait"}).exit_code, 2);
}

// No state directory at all (a fresh install): no trial was ever armed.
TEST_F(StateFaultsTest, BootCheckStatusWithoutAStateDirectoryIsNone) {
  auto status = guard({"boot-check", "--status"});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  EXPECT_EQ(status.out.rfind("trial boot: none: ", 0), 0U) << status.out;
  EXPECT_FALSE(fs::exists(state()));
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
