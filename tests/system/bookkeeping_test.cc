// The run's bookkeeping on a real btrfs image and a debootstrapped root: the guard is killed
// (SIGKILL, from gdb, at the named function: no test hook in the program) at the moments that
// used to lose or falsify the record, and what an administrator then sees is asserted:
// history, snapshot list, gate status, recover's result, and the root itself.
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "guard/state/store.h"
#include "tests/system/guarded_root.h"

namespace guard {
namespace {

using guard::testing::DebSpec;
using guard::testing::slurp;
using namespace guard::state;

constexpr const char* kLibDir = "/usr/lib/x86_64-linux-gnu";

nlohmann::json parse(const base::ProcessResult& r) { return guard::testing::parse_json(r); }

class BookkeepingTest : public guard::testing::GuardedRootTest {
 protected:
  void SetUp() override {
    GuardedRootTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    if (guard::testing::run({"gdb", "--version"}).exit_code != 0) UG_SKIP_OR_FAIL("needs gdb (scripts/install-deps)");
  }

  // The snapshots `snapshot list --json` shows, by id.
  std::map<std::string, nlohmann::json> snapshots() {
    std::map<std::string, nlohmann::json> out;
    auto list = root_->guard({"--json", "snapshot", "list"});
    EXPECT_EQ(list.exit_code, 0) << list.out << list.err;
    const nlohmann::json j = parse(list);  // kept: the loop below reads into it
    for (const auto& s : j["snapshots"]) out[s["id"].get<std::string>()] = s;
    return out;
  }
  nlohmann::json run_history(int id) { return parse(root_->guard({"history", "--json", "--run", std::to_string(id)})); }
};

// Killed after its rollback finished but before the run was closed: recover used to re-check
// the restored root, find nothing new and record the run passed, its snapshot known-good.
TEST_F(BookkeepingTest, KilledAfterItsRollbackFinishedIsRecoveredAsRolledBack) {
  std::string lib = install_ugdemo();
  ASSERT_FALSE(HasFailure());
  std::string status_before = slurp(root_->path("/var/lib/dpkg/status"));
  ASSERT_TRUE(root_->guard_killed_at("guard::state::StateStore::set_rollback_state",
                                     {"run", "--", "apt-get", "install", "-y", ugdemo_breaking_upgrade()}));
  // The rollback itself is done.
  EXPECT_TRUE(slurp(root_->path(std::string(kLibDir) + "/libugdemo.so.1")) == lib);

  auto refused = root_->guard({"run", "--", "true"});
  EXPECT_EQ(refused.exit_code, 4) << refused.out << refused.err;
  EXPECT_NE(refused.out.find("rollback"), std::string::npos) << refused.out;
  auto gate = root_->guard({"gate", "status"});
  EXPECT_EQ(gate.exit_code, 1) << "an unfinished rollback closes the gate: " << gate.out << gate.err;

  auto rec = root_->guard({"--json", "recover"});
  EXPECT_EQ(rec.exit_code, 3) << rec.out << rec.err;
  auto j = parse(rec);
  ASSERT_EQ(j["recovered"].size(), 1u) << rec.out;
  EXPECT_EQ(j["recovered"][0]["outcome"], "rolled-back");
  EXPECT_EQ(j["recovered"][0]["message"].get<std::string>().find("undo this upgrade"), std::string::npos);
  EXPECT_TRUE(slurp(root_->path("/var/lib/dpkg/status")) == status_before);
  EXPECT_TRUE(root_->chroot({"/usr/bin/ugdemo-tool"}).ok()) << "the restored root runs the tool";

  auto h = run_history(1);
  EXPECT_EQ(h["run"]["outcome"], "rolled-back") << h.dump(2);
  EXPECT_EQ(h["run"]["exit_code"], 3);
  ASSERT_EQ(h["rollbacks"].size(), 1u) << h.dump(2);
  EXPECT_EQ(h["rollbacks"][0]["state"], "done");
  // Nothing is known-good; the broken root is listed, and protected from deletion.
  std::string broken;
  for (const auto& [id, s] : snapshots()) {
    EXPECT_NE(s["state"], "known-good") << id;
    if (s["kind"] == "broken") broken = id;
  }
  ASSERT_FALSE(broken.empty()) << "snapshot list shows the kept broken root:\n"
                               << root_->guard({"--json", "snapshot", "list"}).out;
  // Kept by its own count (snapshot.keep_broken): pruned with keep_broken = 0, or deleted by hand.
  std::string policy = dir_ / "keep_broken0.toml";
  guard::testing::write_file(policy, "[snapshot]\nkeep_broken = 0\n", 0644);
  auto pruned = root_->guard({"--policy", policy, "snapshot", "prune"});
  EXPECT_EQ(pruned.exit_code, 0) << pruned.out << pruned.err;
  EXPECT_EQ(snapshots().count(broken), 0u) << "pruned by policy: " << pruned.out;
  EXPECT_EQ(root_->guard({"gate", "status"}).exit_code, 0);
  EXPECT_NE(root_->guard({"recover"}).out.find("nothing to recover"), std::string::npos);
}

// A manual `rollback --to` killed half-way was mentioned by no command and did not block `run`;
// a later recover completed it and silently undid an upgrade made in between.
TEST_F(BookkeepingTest, AManualRollbackKilledHalfWayIsSeenEverywhereAndBlocksRunsUntilRecovered) {
  auto snap = parse(root_->guard({"--json", "snapshot", "create", "--label", "before-fine"}));
  std::string id = snap["id"];
  ASSERT_FALSE(id.empty());
  DebSpec fine{"ug-fine", "1.0", "", {{"/usr/share/doc/ug-fine/README", {"fine\n", 0644}}}, "", ""};
  ASSERT_TRUE(root_->chroot({"dpkg", "-i", deb_in_root(fine)}).ok());
  // Killed while it carries the preserve paths into the restored tree.
  ASSERT_TRUE(root_->guard_killed_at("guard::snapshots::copy_tree", {"rollback", "--to", id}));

  auto h = parse(root_->guard({"history", "--json"}));
  ASSERT_FALSE(h["runs"].empty());
  EXPECT_EQ(h["runs"][0]["kind"], "rollback") << h.dump(2);
  EXPECT_EQ(h["runs"][0]["state"], "unrecovered (rollback)");
  auto check = root_->guard({"check", "--checks", "dpkg-state"});
  EXPECT_NE(check.err.find("rollback"), std::string::npos) << "every command warns: " << check.err;
  auto list = root_->guard({"snapshot", "list"});
  EXPECT_NE(list.out.find("unfinished rollback"), std::string::npos) << list.out;
  EXPECT_EQ(root_->guard({"gate", "status"}).exit_code, 1);
  DebSpec other{"ug-other", "1.0", "", {{"/usr/share/doc/ug-other/README", {"x\n", 0644}}}, "", ""};
  auto refused = root_->guard({"run", "--", "dpkg", "-i", deb_in_root(other)});
  EXPECT_EQ(refused.exit_code, 4) << refused.out << refused.err;
  EXPECT_FALSE(std::filesystem::exists(root_->path("/usr/share/doc/ug-other/README"))) << "nothing ran in between";

  auto rec = root_->guard({"--json", "recover"});
  EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  EXPECT_FALSE(std::filesystem::exists(root_->path("/usr/share/doc/ug-fine/README"))) << "rolled back to the snapshot";
  h = parse(root_->guard({"history", "--json"}));
  EXPECT_EQ(h["runs"][0]["outcome"], "rolled-back") << h.dump(2);
  EXPECT_EQ(root_->guard({"gate", "status"}).exit_code, 0);
  bool broken = false;
  for (const auto& [sid, s] : snapshots()) broken |= s["kind"] == "broken";
  EXPECT_TRUE(broken) << "the replaced root is listed:\n" << root_->guard({"--json", "snapshot", "list"}).out;
}

// Killed while the snapshot was being taken: a whole read-only snapshot nothing recorded
// (snapshot list said "no snapshots yet", prune never deleted it).
TEST_F(BookkeepingTest, KilledWhileTakingTheSnapshotLeavesAnIncompleteSnapshotThatRecoverRemoves) {
  ASSERT_TRUE(root_->guard_killed_at("guard::snapshots::btrfs::create_snapshot", {"run", "--", "true"},
                                     /*after_return=*/true));
  auto before = snapshots();
  ASSERT_EQ(before.size(), 1u) << "snapshot list shows it";
  EXPECT_EQ(before.begin()->second["state"], "incomplete");
  auto rec = root_->guard({"--json", "recover"});
  EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  auto j = parse(rec);
  ASSERT_EQ(j["recovered"].size(), 1u);
  EXPECT_EQ(j["recovered"][0]["outcome"], "interrupted");
  EXPECT_TRUE(snapshots().empty()) << "the incomplete snapshot is removed";
  EXPECT_EQ(run_history(1)["run"]["state"], "interrupted (snapshot)");
}

TEST_F(BookkeepingTest, KilledBeforeItRecordedItsSnapshotRecoverRecordsItAndPruneCanDeleteIt) {
  ASSERT_TRUE(root_->guard_killed_at("guard::state::StateStore::record_snapshot", {"run", "--", "true"}));
  ASSERT_EQ(snapshots().size(), 1u);
  auto rec = root_->guard({"--json", "recover"});
  EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  auto h = run_history(1);
  EXPECT_TRUE(h["run"]["snapshot"].is_string()) << "the run knows its snapshot again: " << h.dump(2);
  std::string policy = dir_ / "keep0.toml";
  guard::testing::write_file(policy, "[snapshot]\nkeep = 0\n", 0644);
  auto prune = root_->guard({"--policy", policy, "snapshot", "prune"});
  EXPECT_EQ(prune.exit_code, 0) << prune.out << prune.err;
  EXPECT_TRUE(snapshots().empty()) << prune.out;
}

// snapshot delete, prune and rollback took no lock: deleting the running upgrade's snapshot
// during its command turned its rollback into a closed gate on a broken root.
TEST_F(BookkeepingTest, SnapshotCommandsWaitForNoOneAndRefuseWhileARunHoldsTheLock) {
  pid_t pid = root_->guard_in_background({"run", "--", "/bin/sh", "-c", "sleep 8"});
  std::string id;
  for (int i = 0; i < 200 && id.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto store = StateStore::open(root_->state_dir());
    if (!store) continue;
    auto runs = store->list_runs(1);
    if (runs && !runs->empty() && runs->front().phase == RunPhase::command && runs->front().snapshot_id)
      id = *runs->front().snapshot_id;
  }
  ASSERT_FALSE(id.empty()) << "the run never reached its command";
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"snapshot", "delete", id}, {"snapshot", "prune"}, {"rollback", "--to", id}, {"snapshot", "create"}}) {
    auto r = root_->guard(cmd);
    EXPECT_EQ(r.exit_code, 4) << cmd[0] << " " << cmd[1] << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("another upgrade-guard is running"), std::string::npos) << r.err;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the run passed, its snapshot intact";
  EXPECT_EQ(snapshots().count(id), 1u);
}

// One run row that could not be parsed made `run` proceed and `recover` say "nothing to recover".
TEST_F(BookkeepingTest, ARunRowFromANewerVersionStopsRunAndRecoverWithItsNumber) {
  ASSERT_EQ(root_->guard({"run", "--", "true"}).exit_code, 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((root_->state_dir() + "/state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE runs SET phase = 'verifying', finished_unix = NULL, outcome = NULL", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto run = root_->guard({"run", "--", "touch", "/ug-ran"});
  EXPECT_EQ(run.exit_code, 4) << run.out << run.err;
  EXPECT_NE(run.out.find("verifying"), std::string::npos) << run.out;
  EXPECT_FALSE(std::filesystem::exists(root_->path("/ug-ran")));
  auto rec = root_->guard({"recover"});
  EXPECT_EQ(rec.exit_code, 4) << rec.out << rec.err;
  EXPECT_NE(rec.out.find("run 1"), std::string::npos) << rec.out;
}

// apt-get failing with nothing changed was "the upgrade passed its checks" (exit 0), its
// snapshot marked known-good: `run -- apt-get ... && reboot` could not tell.
TEST_F(BookkeepingTest, AFailedAptThatChangedNothingExitsFiveAndVouchesForNothing) {
  guard::testing::write_file(dir_ / "not-a.deb", "this is not a Debian package\n", 0644);
  std::string deb = root_->copy_into_tmp(dir_ / "not-a.deb");
  auto r = root_->guard({"--json", "run", "--", "apt-get", "install", "-y", deb});
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  auto j = parse(r);
  EXPECT_EQ(j["outcome"], "command-failed");
  EXPECT_NE(j["message"].get<std::string>().find("exited with status 100"), std::string::npos) << j["message"];
  for (const auto& [id, s] : snapshots()) EXPECT_NE(s["state"], "known-good") << id;
  EXPECT_EQ(run_history(1)["run"]["outcome"], "command-failed");
  EXPECT_EQ(root_->guard({"gate", "status"}).exit_code, 0);
}

// A tmpfs mounted inside the root for one test, unmounted wherever it ended up (a rollback
// moves it with the tree it sits in).
class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, const std::string& tag) : tag_(tag) {
    ok_ = ::mount(tag.c_str(), path.c_str(), "tmpfs", 0, "size=300m") == 0;
  }
  ~TmpfsMount() {
    std::ifstream mounts("/proc/self/mounts");
    std::vector<std::string> targets;
    for (std::string dev, target, rest; mounts >> dev >> target && std::getline(mounts, rest);)
      if (dev == tag_) targets.push_back(target);
    for (auto t = targets.rbegin(); t != targets.rend(); ++t) ::umount2(t->c_str(), MNT_DETACH);
  }
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  std::string tag_;
  bool ok_ = false;
};

// A rollback that failed for lack of space (a preserve path on another filesystem copied into
// a full btrfs) was never retried by recover once space was freed.
TEST_F(BookkeepingTest, ARollbackThatFailedForLackOfSpaceIsRetriedByRecoverOnceSpaceIsFreed) {
  install_ugdemo();
  ASSERT_FALSE(HasFailure());
  std::string status_before = slurp(root_->path("/var/lib/dpkg/status"));
  TmpfsMount srv(root_->path("/srv"), "ug-test-srv-" + std::to_string(::getpid()));
  ASSERT_TRUE(srv.ok()) << "mount tmpfs on /srv";
  auto dd = guard::testing::run({"dd", "if=/dev/urandom", "of=" + root_->path("/srv/data"), "bs=1M", "count=200"});
  ASSERT_TRUE(dd.ok()) << dd.err;
  // The upgrade breaks the tool and leaves the filesystem full.
  std::string upgrade = ugdemo_breaking_upgrade();
  auto r = root_->guard({"--json", "run", "--", "/bin/sh", "-c",
                         "apt-get install -y " + upgrade + " && { dd if=/dev/zero of=/var/tmp/fill bs=4M status=none; "
                         "sync; true; }"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto j = parse(r);
  EXPECT_EQ(j["outcome"], "gated");
  std::string said = j.dump();
  EXPECT_NE(said.find("No space left"), std::string::npos) << said;
  EXPECT_NE(said.find("upgrade-guard recover"), std::string::npos) << said;
  EXPECT_EQ(root_->guard({"gate", "status"}).exit_code, 1);
  auto warned = root_->guard({"check", "--checks", "dpkg-state"});
  EXPECT_NE(warned.err.find("failed"), std::string::npos) << warned.err;

  std::filesystem::remove(root_->path("/var/tmp/fill"));
  guard::testing::run({"btrfs", "filesystem", "sync", root_->top()});
  auto rec = root_->guard({"--json", "recover"});
  EXPECT_EQ(rec.exit_code, 3) << rec.out << rec.err;
  EXPECT_TRUE(slurp(root_->path("/var/lib/dpkg/status")) == status_before);
  EXPECT_TRUE(root_->chroot({"/usr/bin/ugdemo-tool"}).ok());
  auto h = run_history(1);
  EXPECT_EQ(h["run"]["outcome"], "rolled-back") << h.dump(2);
  EXPECT_EQ(root_->guard({"gate", "status"}).exit_code, 0) << "the gate the failed rollback closed opens";
}

}  // namespace
}  // namespace guard
