// The installed layout, not the lent top level: the root is a `subvol=@rootfs` mount (as / is on
// an installed Debian with the installer's btrfs layout) and the guard mounts the btrfs top level
// itself. Killed (SIGKILL, from gdb) at each phase of run, rollback and recover, it must leave no
// mount behind, the next invocation must see the interrupted work, recover must finish it, and
// the root must end as the verdict says with every preserve-path byte.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/system/guarded_root.h"

namespace guard {
namespace {

using guard::testing::slurp;

constexpr const char* kLib = "/usr/lib/x86_64-linux-gnu/libugdemo.so.1";

// Mount points of the filesystem on `device` this process sees (mountinfo field 5), e.g.
// {"/tmp/ug-sys.x/root"}.
std::vector<std::string> mounts_of(const std::string& device) {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, devno, fs_root, target;
    f >> id >> parent >> devno >> fs_root >> target;
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype, source;
    tail >> fstype >> source;
    if (source == device) out.push_back(target);
  }
  return out;
}

nlohmann::json parse(const base::ProcessResult& r) { return guard::testing::parse_json(r); }

class InstalledLayoutTest : public guard::testing::GuardedRootTest {
 protected:
  void SetUp() override {
    if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root: loop devices, btrfs, chroot");
    if (guard::testing::run({"gdb", "--version"}).exit_code != 0) UG_SKIP_OR_FAIL("needs gdb (scripts/install-deps)");
    root_ = std::make_unique<guard::testing::GuardedRoot>(dir_, guard::testing::GuardedRoot::Installed{});
    ASSERT_TRUE(root_->ok()) << root_->error();
    guard::testing::make_dirs(dir_ / "pkgs");
  }

  // Only the test's own mount of the image: nothing the guard mounted is left.
  void expect_no_leaked_mount(const std::string& after) {
    auto mounts = mounts_of(root_->device());
    EXPECT_EQ(mounts, std::vector<std::string>{root_->root()}) << "after " << after;
  }

  // Writes the preserve-path data the rollback must carry, e.g. /srv/data.
  void write_preserved(const std::string& content) {
    guard::testing::make_dirs(root_->path("/srv"));
    guard::testing::write_file(root_->path("/srv/data"), content, 0644);
  }
};

// A rollback with --root on a subvol= mount: the mount keeps the replaced tree, so the guard says
// so, checks the restored tree where the top level shows it, and leaves the mounted tree writable.
TEST_F(InstalledLayoutTest, RollbackOfASubvolumeMountChecksTheRestoredTreeAndLeavesTheMountWritable) {
  std::string lib = install_ugdemo();
  ASSERT_FALSE(HasFailure());
  write_preserved("before\n");
  auto r = root_->guard({"--json", "run", "--", "apt-get", "install", "-y", ugdemo_breaking_upgrade()});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  auto j = parse(r);
  EXPECT_EQ(j["rollback"]["takes_effect_now"], false) << r.out;
  ASSERT_TRUE(j.contains("restored")) << "the restored tree was checked: " << r.out;
  EXPECT_EQ(j["restored"]["verdict"], "pass") << j["restored"].dump(2);
  bool said = false;
  for (const auto& n : j["notes"]) said = said || n.get<std::string>().find("mounted again") != std::string::npos;
  EXPECT_TRUE(said) << "the notes say the mount shows the replaced tree: " << j["notes"].dump(2);
  // The mounted (replaced) tree is still writable for whoever uses it.
  guard::testing::write_file(root_->path("/srv/after"), "x", 0644);
  EXPECT_EQ(slurp(root_->path("/srv/after")), "x");
  expect_no_leaked_mount("a rollback");
  // Mounted again, the root is the pre-upgrade one with the preserved data.
  ASSERT_TRUE(root_->remount_root());
  EXPECT_TRUE(slurp(root_->path(kLib)) == lib) << "the restored root has the library again";
  EXPECT_EQ(slurp(root_->path("/srv/data")), "before\n");
  EXPECT_TRUE(root_->chroot({"/usr/bin/ugdemo-tool"}).ok());
}

// `rollback --to` killed while carrying the preserve paths, then `recover` killed the same way:
// no mount left after either, and the last recover ends on the snapshot with every byte.
TEST_F(InstalledLayoutTest, ARollbackAndItsRecoverKilledInTurnLeaveNoMountAndLoseNoData) {
  std::string lib = install_ugdemo();
  ASSERT_FALSE(HasFailure());
  auto snap = root_->guard({"--json", "snapshot", "create", "--label", "before"});
  ASSERT_EQ(snap.exit_code, 0) << snap.out << snap.err;
  const std::string id = parse(snap)["id"].get<std::string>();
  ASSERT_TRUE(root_->chroot({"dpkg", "-i", ugdemo_breaking_upgrade()}).ok());
  write_preserved("one\n");
  ASSERT_TRUE(root_->guard_killed_at("guard::snapshots::copy_tree", {"rollback", "--to", id}));
  expect_no_leaked_mount("rollback killed");
  guard::testing::write_file(root_->path("/srv/data"), "one\ntwo\n", 0644);
  ASSERT_TRUE(root_->guard_killed_at("guard::snapshots::copy_tree", {"recover"}));
  expect_no_leaked_mount("recover killed");
  guard::testing::write_file(root_->path("/srv/data"), "one\ntwo\nthree\n", 0644);
  auto rec = root_->guard({"--json", "recover"});
  EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  EXPECT_EQ(parse(rec)["recovered"][0]["outcome"], "rolled-back") << rec.out;
  expect_no_leaked_mount("recover");
  ASSERT_TRUE(root_->remount_root());
  EXPECT_TRUE(slurp(root_->path(kLib)) == lib) << "the snapshot's root: " << rec.out;
  EXPECT_EQ(slurp(root_->path("/srv/data")), "one\ntwo\nthree\n") << rec.out;
}

struct KillPoint {
  const char* function;
  bool after_return;
  // Killed after the rollback exchanged the subvolumes: the root directory's mount then shows
  // the replaced tree, and what is written there after the kill stays in it.
  bool swapped = false;
};

class KillMatrixTest : public InstalledLayoutTest, public ::testing::WithParamInterface<KillPoint> {};

// Killed at each phase of a run whose upgrade breaks the root (and so rolls back): no mount is
// left, `run` refuses until `recover`, recover ends it, and the root (mounted again) is the
// pre-upgrade one with the preserve data written before the kill and, while the rollback had
// not exchanged the roots yet, after it (completing it carries the preserve paths again).
TEST_P(KillMatrixTest, KilledInARunLeavesNoMountAndRecoverEndsOnTheHealthyRoot) {
  const KillPoint k = GetParam();
  std::string lib = install_ugdemo();
  ASSERT_FALSE(HasFailure());
  write_preserved("before\n");
  ASSERT_TRUE(root_->guard_killed_at(k.function, {"run", "--", "apt-get", "install", "-y", ugdemo_breaking_upgrade()},
                                     k.after_return));
  expect_no_leaked_mount(std::string("kill -9 at ") + k.function);
  // Written after the kill, before recover: carried too when recover completes the rollback.
  guard::testing::write_file(root_->path("/srv/data"), "before\nafter the kill\n", 0644);

  auto list = root_->guard({"--json", "snapshot", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.out << list.err;
  expect_no_leaked_mount("snapshot list");

  auto rec = root_->guard({"--json", "recover"});
  EXPECT_TRUE(rec.exit_code == 0 || rec.exit_code == 1 || rec.exit_code == 3) << rec.out << rec.err;
  expect_no_leaked_mount("recover");
  EXPECT_NE(root_->guard({"recover"}).out.find("nothing to recover"), std::string::npos);

  ASSERT_TRUE(root_->remount_root());
  // The upgrade breaks the tool: whatever the phase, the root ends healthy (never upgraded, or
  // rolled back) unless recover kept it and closed the gate.
  bool healthy = slurp(root_->path(kLib)) == lib && root_->chroot({"/usr/bin/ugdemo-tool"}).ok();
  auto gate = root_->guard({"gate", "status"});
  EXPECT_TRUE(healthy || gate.exit_code == 1) << "a broken root with an open gate after recover: " << rec.out;
  EXPECT_EQ(slurp(root_->path("/srv/data")), k.swapped ? "before\n" : "before\nafter the kill\n") << "recover: " << rec.out;
  expect_no_leaked_mount("the end");
}

INSTANTIATE_TEST_SUITE_P(
    Phases, KillMatrixTest,
    ::testing::Values(KillPoint{"guard::snapshots::btrfs::create_snapshot", false},
                      KillPoint{"guard::state::StateStore::record_snapshot", true},
                      KillPoint{"guard::run::Run::run_command", true},
                      KillPoint{"guard::snapshots::copy_tree", false},
                      KillPoint{"renameat2", false},
                      KillPoint{"guard::state::StateStore::set_rollback_state", false, true}),
    [](const ::testing::TestParamInfo<KillPoint>& info) {
      std::string name = info.param.function;
      name = name.substr(name.rfind(':') + 1);
      return std::to_string(info.index) + "_" + name + (info.param.after_return ? "_returned" : "");
    });

}  // namespace
}  // namespace guard
