// System tests of the snapshots layer on loop-mounted btrfs and ext4 images with a real
// debootstrapped Debian root. Root needed; see tests/README.md.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>

#include <filesystem>
#include <fstream>
#include <memory>

#include "policies/policy.h"
#include "snapshots/backend.h"
#include "snapshots/btrfs.h"
#include "snapshots/btrfs_backend.h"
#include "snapshots/layout.h"
#include "snapshots/top_level.h"
#include "tests/common/test_env.h"
#include "tests/system/loop_image.h"

namespace guard::snapshots {
namespace {

using guard::testing::LoopImage;
using guard::testing::TempDir;
namespace fs = std::filesystem;

bool exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

policies::Policy test_policy() {
  policies::Policy p;
  p.preserve = {"/home", "/root", "/srv", "/var/log", "/var/lib/postgresql", "/var/mail", "/var/spool"};
  p.snapshot.min_free_bytes = 32ULL << 20;
  return p;
}

// A btrfs image whose top level is mounted at <dir>/top, holding the root subvolume
// `root_name` with a copy of the cached root, a nested subvolume at /var/lib/docker, and an
// fstab that pins subvol=<root_name> or not. The root is used as `--root <dir>/top/<root_name>`.
class BtrfsRoot : public ::testing::Test {
 protected:
  void build(const std::string& root_name, bool pin, const std::string& variant = "server") {
    if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root for loop devices and mounts");
    std::string src = guard::testing::cached_root(variant);
    if (src.empty()) UG_SKIP_OR_FAIL("the cached " + variant + " root cannot be built (scripts/test-root)");
    if (IsSkipped() || HasFatalFailure()) return;
    img_ = std::make_unique<LoopImage>(dir_ / "btrfs.img", 2ULL << 30, "btrfs");
    ASSERT_TRUE(img_->ok()) << img_->error();
    top_ = dir_ / "top";
    ASSERT_TRUE(img_->mount(top_, "subvolid=5")) << strerror(errno);
    root_ = top_ + "/" + root_name;
    ASSERT_TRUE(btrfs::create_subvolume(root_));
    auto cp = guard::testing::run({"cp", "-a", src + "/.", root_ + "/"});
    ASSERT_TRUE(cp.ok()) << cp.err;
    guard::testing::write_file(root_ + "/etc/fstab",
                               std::string("UUID=00000000-0000-0000-0000-000000000000 / btrfs defaults") +
                                   (pin ? ",subvol=" + root_name : std::string()) + " 0 0\n");
    guard::testing::make_dirs(root_ + "/var/lib");
    ASSERT_TRUE(btrfs::create_subvolume(root_ + "/var/lib/docker"));
    guard::testing::write_file(root_ + "/var/lib/docker/before", "before\n");
    if (!pin) {
      auto id = btrfs::subvolume_id(root_);
      ASSERT_TRUE(id);
      ASSERT_TRUE(btrfs::set_default_subvolume(top_, *id));
    }
  }

  std::unique_ptr<SnapshotBackend> backend(const policies::Policy& policy = test_policy()) {
    auto layout = detect_layout(root_);
    EXPECT_TRUE(layout) << layout.error().to_string();
    if (!layout) return nullptr;
    auto b = make_backend(*layout, policy, dir_ / "state");
    EXPECT_TRUE(b) << b.error().to_string();
    return b ? std::move(*b) : nullptr;
  }

  // The changes an upgrade (and the life of the server after the snapshot) makes.
  void change_after_snapshot(const std::string& tag) {
    guard::testing::write_file(root_ + "/usr/bin/ls", "broken by the upgrade " + tag + "\n", 0755);
    guard::testing::write_file(root_ + "/usr/lib/x86_64-linux-gnu/libnew-" + tag + ".so.1", "new\n");
    std::ofstream(root_ + "/var/lib/dpkg/status", std::ios::app)
        << "\nPackage: broken-" << tag << "\nStatus: install ok half-configured\nVersion: 1\n";
    guard::testing::write_file(root_ + "/var/log/after-" + tag + ".log", "written after the snapshot\n");
    guard::testing::write_file(root_ + "/var/lib/docker/after-" + tag, "container data\n");
  }

  TempDir dir_{"ug-snap"};
  std::unique_ptr<LoopImage> img_;
  std::string top_, root_;
};

TEST_F(BtrfsRoot, LayoutOfPinnedRoot) {
  build("@", true, "minbase");
  if (IsSkipped() || HasFatalFailure()) return;
  auto layout = detect_layout(root_);
  ASSERT_TRUE(layout) << layout.error().to_string();
  EXPECT_EQ(layout->fstype, "btrfs");
  EXPECT_TRUE(layout->is_subvolume);
  EXPECT_EQ(layout->subvol_path, "@");
  EXPECT_EQ(layout->mount_fs_root, "/");
  EXPECT_TRUE(layout->pinned_by_path());
  ASSERT_EQ(layout->nested.size(), 1u);
  EXPECT_EQ(layout->nested[0].path, "/var/lib/docker");
  EXPECT_EQ(layout->device, img_->device());
  auto text = render_layout_text(*layout);
  EXPECT_NE(text.find("fstab: subvol=@"), std::string::npos) << text;
  EXPECT_NE(text.find("/var/lib/docker"), std::string::npos) << text;
  EXPECT_NE(render_layout_json(*layout).find("\"subvol_path\":\"@\""), std::string::npos);
}

TEST_F(BtrfsRoot, TopLevelMountIsPrivateAndReleased) {
  build("@", true, "minbase");
  if (IsSkipped() || HasFatalFailure()) return;
  std::string mp = dir_ / "run-top";
  {
    auto top = TopLevelMount::mount(img_->device(), mp);
    ASSERT_TRUE(top) << top.error().to_string();
    EXPECT_TRUE(exists(mp + "/@/etc/fstab"));
    auto id = btrfs::subvolume_id(mp);
    ASSERT_TRUE(id);
    EXPECT_EQ(*id, 5u);
    auto mi = slurp("/proc/self/mountinfo");
    auto line_at = mi.find(" " + mp + " ");
    ASSERT_NE(line_at, std::string::npos);
    auto eol = mi.find('\n', line_at);
    EXPECT_EQ(mi.substr(line_at, eol - line_at).find("shared:"), std::string::npos) << "the top mount must be private";
  }
  EXPECT_FALSE(exists(mp + "/@")) << "unmounted on destruction";
}

TEST_F(BtrfsRoot, PinnedRollbackRestoresRootAndKeepsNewData) {
  build("@", true);
  if (IsSkipped() || HasFatalFailure()) return;
  auto b = backend();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->name(), "btrfs");
  std::string ls_before = slurp(root_ + "/usr/bin/ls");
  std::string status_before = slurp(root_ + "/var/lib/dpkg/status");
  ASSERT_FALSE(ls_before.empty());

  auto snap = b->create("pre run#1", {{"run", "1"}});
  ASSERT_TRUE(snap) << snap.error().to_string();
  EXPECT_NE(snap->id.find("-pre-run-1"), std::string::npos) << snap->id;
  auto ro = btrfs::read_only(snap->location);
  ASSERT_TRUE(ro);
  EXPECT_TRUE(*ro);
  EXPECT_EQ(snap->metadata.at("run"), "1");
  {
    auto sroot = b->open(snap->id);
    ASSERT_TRUE(sroot);
    auto st = sroot->read_file("/var/lib/dpkg/status");
    ASSERT_TRUE(st);
    EXPECT_EQ(*st, status_before);
  }

  change_after_snapshot("1");
  ASSERT_NE(slurp(root_ + "/usr/bin/ls"), ls_before);

  auto res = b->rollback(snap->id, {});
  ASSERT_TRUE(res) << res.error().to_string();
  EXPECT_EQ(res->method, "exchange");
  EXPECT_TRUE(res->takes_effect_now);

  // The same path now shows the restored tree.
  EXPECT_EQ(slurp(root_ + "/usr/bin/ls"), ls_before);
  EXPECT_FALSE(exists(root_ + "/usr/lib/x86_64-linux-gnu/libnew-1.so.1"));
  EXPECT_EQ(slurp(root_ + "/var/lib/dpkg/status"), status_before);
  // Data written after the snapshot is carried over.
  EXPECT_EQ(slurp(root_ + "/var/log/after-1.log"), "written after the snapshot\n");
  EXPECT_EQ(slurp(root_ + "/var/lib/docker/after-1"), "container data\n");
  EXPECT_EQ(slurp(root_ + "/var/lib/docker/before"), "before\n");
  auto nested = btrfs::is_subvolume(root_ + "/var/lib/docker");
  ASSERT_TRUE(nested);
  EXPECT_TRUE(*nested) << "the nested subvolume itself was moved, not copied";
  // The snapshot's own /var/log is kept aside inside the restored root.
  EXPECT_TRUE(exists(root_ + res->replaced_dir + "/var/log")) << res->replaced_dir;
  // The broken root is kept, read-only, with the upgrade's changes.
  std::string broken = top_ + "/" + res->broken;
  EXPECT_NE(res->broken.find("@upgrade-guard/rollback-"), std::string::npos) << res->broken;
  EXPECT_TRUE(exists(broken + "/usr/lib/x86_64-linux-gnu/libnew-1.so.1"));
  auto bro = btrfs::read_only(broken);
  ASSERT_TRUE(bro);
  EXPECT_TRUE(*bro);
  // The snapshot stays listed, and the kept broken root beside it; nothing is pending.
  auto list = b->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, snap->id);
  EXPECT_EQ((*list)[0].kind, "snapshot");
  EXPECT_EQ((*list)[1].kind, "broken");
  EXPECT_EQ(top_ + "/" + res->broken, (*list)[1].location);
  EXPECT_TRUE((*list)[1].complete);
  auto pending = b->pending_rollbacks();
  ASSERT_TRUE(pending);
  EXPECT_TRUE(pending->empty());
  // The fstab still pins subvol=@ and @ is the restored subvolume.
  auto layout = detect_layout(root_);
  ASSERT_TRUE(layout);
  EXPECT_EQ(layout->subvol_path, "@");
}

TEST_F(BtrfsRoot, DefaultSubvolumeRollbackSetsDefault) {
  build("rootfs", false);
  if (IsSkipped() || HasFatalFailure()) return;
  auto b = backend();
  ASSERT_TRUE(b);
  std::string ls_before = slurp(root_ + "/usr/bin/ls");
  auto snap = b->create("pre", {});
  ASSERT_TRUE(snap) << snap.error().to_string();
  change_after_snapshot("d");
  auto res = b->rollback(snap->id, {});
  ASSERT_TRUE(res) << res.error().to_string();
  EXPECT_EQ(res->method, "exchange+set-default");
  auto def = btrfs::default_subvolume(top_);
  auto now = btrfs::subvolume_id(root_);
  ASSERT_TRUE(def && now);
  EXPECT_EQ(*def, *now) << "the default subvolume is the restored root";
  // A mount without subvol= (what the boot does) shows the restored root.
  std::string plain = dir_ / "plain";
  ASSERT_TRUE(img_->mount(plain));
  EXPECT_EQ(slurp(plain + "/usr/bin/ls"), ls_before);
  EXPECT_FALSE(exists(plain + "/usr/lib/x86_64-linux-gnu/libnew-d.so.1"));
  EXPECT_EQ(slurp(plain + "/var/log/after-d.log"), "written after the snapshot\n");
  EXPECT_EQ(slurp(plain + "/var/lib/docker/after-d"), "container data\n");
  EXPECT_TRUE(exists(top_ + "/" + res->broken + "/usr/lib/x86_64-linux-gnu/libnew-d.so.1"));
}

// The GRUB fallback boot runs from the pre-upgrade snapshot in the store, whose fstab pins
// @rootfs (the Debian installer's layout). `rollback --to ID` from there must restore @rootfs,
// keep the upgraded tree as rollback-...-broken, and leave the snapshot it runs from alone.
TEST_F(BtrfsRoot, RollbackFromTheFallbackSnapshotRestoresThePinnedRoot) {
  build("@rootfs", true, "minbase");
  if (IsSkipped() || HasFatalFailure()) return;
  auto b = backend();
  ASSERT_TRUE(b);
  std::string ls_before = slurp(root_ + "/usr/bin/ls");
  auto snap = b->create("pre run#1", {{"run", "1"}});
  ASSERT_TRUE(snap) << snap.error().to_string();
  change_after_snapshot("f");
  auto rootfs_id = btrfs::subvolume_id(root_);
  auto snap_id = btrfs::subvolume_id(snap->location);
  ASSERT_TRUE(rootfs_id && snap_id);

  // The root is now the snapshot itself, as on the fallback boot.
  auto layout = detect_layout(snap->location);
  ASSERT_TRUE(layout) << layout.error().to_string();
  EXPECT_EQ(layout->subvol_path, "@upgrade-guard/" + snap->id);
  auto target = rollback_target(*layout);
  ASSERT_TRUE(target) << target.error().to_string();
  EXPECT_EQ(target->subvol_path, "@rootfs");
  EXPECT_EQ(target->running_from, "@upgrade-guard/" + snap->id);
  auto fallback = make_backend(*layout, test_policy(), dir_ / "state");
  ASSERT_TRUE(fallback) << fallback.error().to_string();
  auto res = (*fallback)->rollback(snap->id, {});
  ASSERT_TRUE(res) << res.error().to_string();
  EXPECT_EQ(res->method, "exchange");
  EXPECT_FALSE(res->takes_effect_now) << "the root it runs from does not change; @rootfs does";
  std::string notes;
  for (const auto& n : res->notes) notes += n + "\n";
  EXPECT_NE(notes.find("the root runs from @upgrade-guard/" + snap->id), std::string::npos) << notes;
  EXPECT_NE(notes.find("restored @rootfs"), std::string::npos) << notes;

  // @rootfs holds the pre-upgrade tree now, with the data written since carried over.
  EXPECT_EQ(slurp(root_ + "/usr/bin/ls"), ls_before);
  EXPECT_FALSE(exists(root_ + "/usr/lib/x86_64-linux-gnu/libnew-f.so.1"));
  EXPECT_EQ(slurp(root_ + "/var/log/after-f.log"), "written after the snapshot\n");
  EXPECT_EQ(slurp(root_ + "/var/lib/docker/after-f"), "container data\n");
  auto now_id = btrfs::subvolume_id(root_);
  ASSERT_TRUE(now_id);
  EXPECT_NE(*now_id, *rootfs_id) << "@rootfs names the restored subvolume";
  EXPECT_NE(*now_id, *snap_id) << "a writable copy, not the snapshot itself";
  auto ro = btrfs::read_only(root_);
  ASSERT_TRUE(ro);
  EXPECT_FALSE(*ro);
  // The upgraded tree is kept as the broken root, by its old id.
  EXPECT_EQ(res->broken.rfind("@upgrade-guard/rollback-", 0), 0u) << res->broken;
  EXPECT_EQ(res->broken.substr(res->broken.size() - 7), "-broken") << res->broken;
  auto broken_id = btrfs::subvolume_id(top_ + "/" + res->broken);
  ASSERT_TRUE(broken_id);
  EXPECT_EQ(*broken_id, *rootfs_id);
  EXPECT_TRUE(exists(top_ + "/" + res->broken + "/usr/lib/x86_64-linux-gnu/libnew-f.so.1"));
  // The snapshot the system runs from is where it was, the same subvolume, unchanged.
  auto still = btrfs::subvolume_id(snap->location);
  ASSERT_TRUE(still);
  EXPECT_EQ(*still, *snap_id);
  auto snap_ro = btrfs::read_only(snap->location);
  ASSERT_TRUE(snap_ro);
  EXPECT_TRUE(*snap_ro);
  EXPECT_EQ(slurp(snap->location + "/usr/bin/ls"), ls_before);
  auto pending = (*fallback)->pending_rollbacks();
  ASSERT_TRUE(pending);
  EXPECT_TRUE(pending->empty());
  // A normal mount of the pinned subvolume (the next boot) shows the pre-upgrade tree.
  std::string next_boot = dir_ / "next-boot";
  ASSERT_TRUE(img_->mount(next_boot, "subvol=@rootfs"));
  EXPECT_EQ(slurp(next_boot + "/usr/bin/ls"), ls_before);
  EXPECT_FALSE(exists(next_boot + "/usr/lib/x86_64-linux-gnu/libnew-f.so.1"));
}

TEST_F(BtrfsRoot, RollbackRefusesPinsThatDisagreeNamingThem) {
  build("@rootfs", true, "minbase");
  if (IsSkipped() || HasFatalFailure()) return;
  guard::testing::write_file(root_ + "/boot/grub/grub.cfg",
                             "menuentry 'Debian GNU/Linux' {\n"
                             "  linux /@/boot/vmlinuz-6.1.0-18-amd64 root=UUID=1 ro rootflags=subvol=@ quiet\n"
                             "}\n");
  auto b = backend();
  ASSERT_TRUE(b);
  auto snap = b->create("pre", {});
  ASSERT_TRUE(snap) << snap.error().to_string();
  change_after_snapshot("p");
  auto rootfs_id = btrfs::subvolume_id(root_);
  ASSERT_TRUE(rootfs_id);
  auto res = b->rollback(snap->id, {});
  ASSERT_FALSE(res);
  EXPECT_TRUE(is_refusal(res.error()));
  std::string msg = res.error().to_string();
  EXPECT_NE(msg.find("disagree (fstab: subvol=@rootfs, grub.cfg: subvol=@)"), std::string::npos) << msg;
  // Nothing changed, nothing is pending.
  auto after = btrfs::subvolume_id(root_);
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, *rootfs_id);
  EXPECT_TRUE(exists(root_ + "/usr/lib/x86_64-linux-gnu/libnew-p.so.1"));
  auto pending = b->pending_rollbacks();
  ASSERT_TRUE(pending);
  EXPECT_TRUE(pending->empty());
}

TEST_F(BtrfsRoot, RollbackFromASnapshotThatNothingPinsIsRefused) {
  build("rootfs", false, "minbase");
  if (IsSkipped() || HasFatalFailure()) return;
  auto b = backend();
  ASSERT_TRUE(b);
  auto snap = b->create("pre", {});
  ASSERT_TRUE(snap) << snap.error().to_string();
  auto snap_id = btrfs::subvolume_id(snap->location);
  ASSERT_TRUE(snap_id);
  auto layout = detect_layout(snap->location);
  ASSERT_TRUE(layout) << layout.error().to_string();
  auto fallback = make_backend(*layout, test_policy(), dir_ / "state");
  ASSERT_TRUE(fallback) << fallback.error().to_string();
  auto res = (*fallback)->rollback(snap->id, {});
  ASSERT_FALSE(res) << "exchanged " << res->broken;
  EXPECT_TRUE(is_refusal(res.error()));
  EXPECT_NE(res.error().to_string().find("a subvolume of the snapshot store"), std::string::npos)
      << res.error().to_string();
  auto still = btrfs::subvolume_id(snap->location);
  ASSERT_TRUE(still);
  EXPECT_EQ(*still, *snap_id);
  auto list = b->list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u) << "no broken root was made";
}

// Interrupts the rollback after each step in turn; each time a whole root must be at `@`, and
// resuming must complete it (or, before the swap, revert it) with nothing lost.
TEST_F(BtrfsRoot, InterruptedRollbackLeavesValidRootAndResumes) {
  build("@", true);
  if (IsSkipped() || HasFatalFailure()) return;
  auto b = backend();
  ASSERT_TRUE(b);
  const RollbackStep steps[] = {RollbackStep::planned,      RollbackStep::restore_created, RollbackStep::preserved,
                                RollbackStep::nested_moved, RollbackStep::boot_restored,   RollbackStep::swapped,
                                RollbackStep::default_set,  RollbackStep::broken_kept};
  int round = 0;
  for (auto step : steps) {
    for (auto mode : {ResumeMode::complete, ResumeMode::revert}) {
      std::string tag = std::to_string(round++);
      SCOPED_TRACE(std::string("stop after ") + to_string(step) +
                   (mode == ResumeMode::complete ? ", complete" : ", revert"));
      auto snap = b->create("k" + tag, {});
      ASSERT_TRUE(snap) << snap.error().to_string();
      change_after_snapshot(tag);
      RollbackOptions opts;
      opts.stop_after = step;
      auto res = b->rollback(snap->id, opts);
      ASSERT_FALSE(res);
      EXPECT_EQ(res.error().err, EINTR) << res.error().to_string();
      // A whole root at @, whichever it is.
      EXPECT_TRUE(exists(root_ + "/usr/bin/ls"));
      EXPECT_TRUE(exists(root_ + "/etc/fstab"));
      EXPECT_TRUE(exists(root_ + "/var/lib/dpkg/status"));
      auto pending = b->pending_rollbacks();
      ASSERT_TRUE(pending);
      ASSERT_EQ(pending->size(), 1u);
      bool can_revert = (*pending)[0].can_revert;
      EXPECT_EQ(can_revert, step < RollbackStep::swapped);
      auto again = b->rollback(snap->id, {});
      ASSERT_FALSE(again);
      EXPECT_TRUE(is_refusal(again.error())) << "a second rollback waits for the first";

      auto resumed = b->resume_rollback((*pending)[0].journal, mode);
      if (mode == ResumeMode::revert && !can_revert) {
        ASSERT_FALSE(resumed);
        EXPECT_TRUE(is_refusal(resumed.error()));
        resumed = b->resume_rollback((*pending)[0].journal, ResumeMode::complete);
      }
      ASSERT_TRUE(resumed) << resumed.error().to_string();
      bool reverted = mode == ResumeMode::revert && can_revert;
      // Reverted: the broken root is still in place; completed: the snapshot's root.
      EXPECT_EQ(exists(root_ + "/usr/lib/x86_64-linux-gnu/libnew-" + tag + ".so.1"), reverted);
      EXPECT_EQ(slurp(root_ + "/var/log/after-" + tag + ".log"), "written after the snapshot\n");
      EXPECT_EQ(slurp(root_ + "/var/lib/docker/after-" + tag), "container data\n");
      auto nested = btrfs::is_subvolume(root_ + "/var/lib/docker");
      ASSERT_TRUE(nested);
      EXPECT_TRUE(*nested);
      pending = b->pending_rollbacks();
      ASSERT_TRUE(pending);
      EXPECT_TRUE(pending->empty());
      if (reverted) {
        EXPECT_FALSE(exists(top_ + "/@upgrade-guard/" + snap->id + ".restore-"));
        // Put @ back to a clean state for the next round.
        auto r = b->rollback(snap->id, {});
        ASSERT_TRUE(r) << r.error().to_string();
      }
    }
  }
}

// A crash can fall between a step's act and its journal write: the journal then names the
// step before. Resuming must notice the act already happened (and not, say, exchange back).
TEST_F(BtrfsRoot, CrashBetweenActAndJournalWrite) {
  build("@", true, "minbase");
  if (IsSkipped() || HasFatalFailure()) return;
  auto b = backend();
  ASSERT_TRUE(b);
  int round = 0;
  for (auto step : {RollbackStep::restore_created, RollbackStep::nested_moved, RollbackStep::swapped,
                    RollbackStep::default_set, RollbackStep::broken_kept}) {
    std::string tag = "j" + std::to_string(round++);
    SCOPED_TRACE(std::string("acted on ") + to_string(step) + ", journal one step behind");
    auto snap = b->create(tag, {});
    ASSERT_TRUE(snap) << snap.error().to_string();
    change_after_snapshot(tag);
    RollbackOptions opts;
    opts.stop_after = step;
    ASSERT_FALSE(b->rollback(snap->id, opts));
    auto pending = b->pending_rollbacks();
    ASSERT_TRUE(pending);
    ASSERT_EQ(pending->size(), 1u);
    std::string journal = (*pending)[0].journal;
    std::string text = slurp(journal);
    std::string from = "\"step\": " + std::to_string(static_cast<int>(step)) + ",";
    auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << text;
    text.replace(at, from.size(), "\"step\": " + std::to_string(static_cast<int>(step) - 1) + ",");
    guard::testing::write_file(journal, text, 0600);
    auto resumed = b->resume_rollback(journal, ResumeMode::complete);
    ASSERT_TRUE(resumed) << resumed.error().to_string();
    EXPECT_FALSE(exists(root_ + "/usr/lib/x86_64-linux-gnu/libnew-" + tag + ".so.1")) << "the snapshot's root is at @";
    EXPECT_EQ(slurp(root_ + "/var/log/after-" + tag + ".log"), "written after the snapshot\n");
    EXPECT_EQ(slurp(root_ + "/var/lib/docker/after-" + tag), "container data\n");
    EXPECT_TRUE(exists(top_ + "/" + resumed->broken + "/usr/lib/x86_64-linux-gnu/libnew-" + tag + ".so.1"));
  }
}

// The real thing: a process running the rollback is killed with SIGKILL at spread-out moments.
// Whatever the moment, a whole root is at @ and resuming completes the rollback.
TEST_F(BtrfsRoot, SigkilledRollbackIsResumed) {
  build("@", true, "minbase");
  if (IsSkipped() || HasFatalFailure()) return;
  auto b = backend();
  ASSERT_TRUE(b);
  // One uninterrupted rollback, to know how long one takes.
  auto warm = b->create("warm", {});
  ASSERT_TRUE(warm);
  change_after_snapshot("warm");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(b->rollback(warm->id, {}));
  auto full_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  int interrupted = 0;
  for (int k = 0; k < 8; ++k) {
    std::string tag = "kill" + std::to_string(k);
    SCOPED_TRACE(tag);
    auto snap = b->create(tag, {});
    ASSERT_TRUE(snap) << snap.error().to_string();
    change_after_snapshot(tag);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto layout = detect_layout(root_);
      if (!layout) ::_exit(2);
      auto child = make_backend(*layout, test_policy(), dir_ / "state");
      if (!child) ::_exit(2);
      ::_exit((*child)->rollback(snap->id, {}) ? 0 : 1);
    }
    ::usleep(static_cast<useconds_t>(full_us * k / 7));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) << status;
    EXPECT_TRUE(exists(root_ + "/usr/bin/ls"));
    EXPECT_TRUE(exists(root_ + "/etc/fstab"));
    auto pending = b->pending_rollbacks();
    ASSERT_TRUE(pending);
    bool started =
        !pending->empty() || !exists(root_ + "/usr/lib/x86_64-linux-gnu/libnew-" + tag + ".so.1");  // finished
    for (const auto& p : *pending) {
      ++interrupted;
      std::printf("killed after step %s\n", to_string(p.last_step));
      auto r = b->resume_rollback(p.journal, ResumeMode::complete);
      ASSERT_TRUE(r) << r.error().to_string();
    }
    if (!started) {
      // Killed before the journal existed: nothing changed; roll back now.
      ASSERT_TRUE(b->rollback(snap->id, {}));
    }
    EXPECT_FALSE(exists(root_ + "/usr/lib/x86_64-linux-gnu/libnew-" + tag + ".so.1"));
    EXPECT_EQ(slurp(root_ + "/var/log/after-" + tag + ".log"), "written after the snapshot\n");
    EXPECT_EQ(slurp(root_ + "/var/lib/docker/after-" + tag), "container data\n");
    auto nested = btrfs::is_subvolume(root_ + "/var/lib/docker");
    ASSERT_TRUE(nested);
    EXPECT_TRUE(*nested);
  }
  EXPECT_GT(interrupted, 0) << "no kill landed inside a rollback";
}

TEST_F(BtrfsRoot, PruneKeepsNewestAndProtected) {
  build("@", true, "minbase");
  if (IsSkipped() || HasFatalFailure()) return;
  auto b = backend();
  ASSERT_TRUE(b);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    auto s = b->create("p" + std::to_string(i), {});
    ASSERT_TRUE(s) << s.error().to_string();
    ids.push_back(s->id);
  }
  auto removed = b->prune(2, 2, {ids[0]});
  ASSERT_TRUE(removed) << removed.error().to_string();
  ASSERT_EQ(removed->size(), 2u);
  EXPECT_EQ((*removed)[0], ids[1]);
  EXPECT_EQ((*removed)[1], ids[2]);
  auto list = b->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, ids[0]);
  EXPECT_EQ((*list)[1].id, ids[3]);
  EXPECT_FALSE(exists(top_ + "/@upgrade-guard/" + ids[1]));
  EXPECT_FALSE(exists(top_ + "/@upgrade-guard/" + ids[1] + ".json"));
}

TEST_F(BtrfsRoot, SeparateBootIsCapturedAndRestored) {
  build("@", true, "minbase");
  if (IsSkipped() || HasFatalFailure()) return;
  LoopImage boot(dir_ / "boot.img", 64ULL << 20, "ext4");
  ASSERT_TRUE(boot.ok()) << boot.error();
  ASSERT_TRUE(boot.mount(root_ + "/boot"));
  LoopImage esp(dir_ / "esp.img", 32ULL << 20, "ext4");
  ASSERT_TRUE(esp.ok()) << esp.error();
  ASSERT_TRUE(esp.mount(root_ + "/boot/efi"));
  guard::testing::write_file(root_ + "/boot/efi/EFI/debian/grubx64.efi", "grub 1\n");
  guard::testing::write_file(root_ + "/boot/vmlinuz-6.1.0-1", "kernel 1\n");
  guard::testing::write_file(root_ + "/boot/initrd.img-6.1.0-1", "initrd 1\n");
  auto b = backend();
  ASSERT_TRUE(b);
  auto snap = b->create("boot", {});
  ASSERT_TRUE(snap) << snap.error().to_string();
  EXPECT_TRUE(snap->boot_captured);
  EXPECT_EQ(snap->esp_path, "/boot/efi");
  EXPECT_EQ(slurp(snap->esp_location + "/EFI/debian/grubx64.efi"), "grub 1\n");
  EXPECT_FALSE(exists(snap->boot_location + "/efi/EFI")) << "the ESP is not copied twice";
  EXPECT_EQ(slurp(snap->boot_location + "/vmlinuz-6.1.0-1"), "kernel 1\n");
  std::string manifest = slurp(top_ + "/@upgrade-guard/" + snap->id + ".boot.manifest");
  EXPECT_NE(manifest.find("/vmlinuz-6.1.0-1\t9\t"), std::string::npos) << manifest;
  // The upgrade replaces the kernel.
  ::unlink((root_ + "/boot/vmlinuz-6.1.0-1").c_str());
  guard::testing::write_file(root_ + "/boot/vmlinuz-6.1.0-2", "kernel 2\n");
  guard::testing::write_file(root_ + "/boot/initrd.img-6.1.0-1", "initrd rebuilt\n");
  guard::testing::write_file(root_ + "/boot/efi/EFI/debian/grubx64.efi", "grub 2\n");
  RollbackOptions opts;
  opts.stop_after = RollbackStep::boot_restored;  // /boot is restored before the swap; check it there
  auto res = b->rollback(snap->id, opts);
  ASSERT_FALSE(res);
  EXPECT_EQ(slurp(root_ + "/boot/vmlinuz-6.1.0-1"), "kernel 1\n");
  EXPECT_EQ(slurp(root_ + "/boot/initrd.img-6.1.0-1"), "initrd 1\n");
  EXPECT_FALSE(exists(root_ + "/boot/vmlinuz-6.1.0-2"));
  EXPECT_EQ(slurp(root_ + "/boot/efi/EFI/debian/grubx64.efi"), "grub 1\n");
  std::string aside;
  for (const auto& e : fs::directory_iterator(root_ + "/boot"))
    if (e.path().filename().string().rfind(".upgrade-guard-replaced-", 0) == 0) aside = e.path().string();
  ASSERT_FALSE(aside.empty()) << "an aside directory in /boot";
  EXPECT_EQ(slurp(aside + "/vmlinuz-6.1.0-2"), "kernel 2\n") << "the current /boot files are moved aside, not deleted";
  EXPECT_EQ(slurp(aside + "/initrd.img-6.1.0-1"), "initrd rebuilt\n");
  // Reverting puts the upgraded /boot back.
  auto pending = b->pending_rollbacks();
  ASSERT_TRUE(pending);
  ASSERT_EQ(pending->size(), 1u);
  auto rev = b->resume_rollback((*pending)[0].journal, ResumeMode::revert);
  ASSERT_TRUE(rev) << rev.error().to_string();
  EXPECT_EQ(slurp(root_ + "/boot/vmlinuz-6.1.0-2"), "kernel 2\n");
  EXPECT_EQ(slurp(root_ + "/boot/initrd.img-6.1.0-1"), "initrd rebuilt\n");
  EXPECT_FALSE(exists(aside));
  EXPECT_EQ(slurp(root_ + "/boot/efi/EFI/debian/grubx64.efi"), "grub 2\n");
  // A whole rollback restores /boot too; the boot mount stays on the old tree's /boot, which
  // is now the broken root (a caller of --root remounts /boot on the restored root).
  auto full = b->rollback(snap->id, {});
  ASSERT_TRUE(full) << full.error().to_string();
  EXPECT_TRUE(full->boot_restored);
  std::string boot_now = top_ + "/" + full->broken + "/boot";
  EXPECT_EQ(slurp(boot_now + "/vmlinuz-6.1.0-1"), "kernel 1\n");
  EXPECT_EQ(slurp(boot_now + full->replaced_dir + "/vmlinuz-6.1.0-2"), "kernel 2\n");
  EXPECT_EQ(slurp(boot_now + "/efi/EFI/debian/grubx64.efi"), "grub 1\n");
  EXPECT_EQ(slurp(boot_now + "/efi" + full->replaced_dir + "/EFI/debian/grubx64.efi"), "grub 2\n");
  esp.unmount_all();
  boot.unmount_all();
}

TEST(SnapshotsFullDisk, CreateRefusedCleanly) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root for loop devices and mounts");
  if (::testing::Test::IsSkipped()) return;
  TempDir dir("ug-full");
  LoopImage img(dir / "small.img", 160ULL << 20, "btrfs");
  ASSERT_TRUE(img.ok()) << img.error();
  std::string top = dir / "top";
  ASSERT_TRUE(img.mount(top, "subvolid=5"));
  std::string root = top + "/@";
  ASSERT_TRUE(btrfs::create_subvolume(root));
  guard::testing::write_file(root + "/etc/fstab", "UUID=x / btrfs subvol=@ 0 0\n");
  guard::testing::make_dirs(root + "/usr/bin");
  {
    // Fill the filesystem.
    int fd = ::open((root + "/fill").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    std::string block(1 << 20, 'x');
    while (::write(fd, block.data(), block.size()) > 0) {
    }
    ::fsync(fd);
    ::close(fd);
  }
  auto layout = detect_layout(root);
  ASSERT_TRUE(layout) << layout.error().to_string();
  auto policy = test_policy();
  policy.snapshot.min_free_bytes = 16ULL << 20;
  auto b = make_backend(*layout, policy, dir / "state");
  ASSERT_TRUE(b) << b.error().to_string();
  auto snap = (*b)->create("pre", {});
  ASSERT_FALSE(snap);
  EXPECT_TRUE(is_refusal(snap.error())) << snap.error().to_string();
  EXPECT_NE(snap.error().to_string().find("snapshot.min_free_bytes"), std::string::npos) << snap.error().to_string();
  auto list = (*b)->list();
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
  // Nothing half-written: no snapshot subvolume, no metadata.
  if (exists(top + "/@upgrade-guard")) {
    EXPECT_TRUE(fs::is_empty(top + "/@upgrade-guard"));
  }
}

TEST(SnapshotsCopyBackend, RestoresEtcAndDpkgOnExt4) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root for loop devices and mounts");
  if (::testing::Test::IsSkipped()) return;
  std::string src = guard::testing::cached_root("minbase");
  if (src.empty()) UG_SKIP_OR_FAIL("the cached minbase root cannot be built (scripts/test-root)");
  if (::testing::Test::IsSkipped()) return;
  TempDir dir("ug-copy");
  LoopImage img(dir / "ext4.img", 1ULL << 30, "ext4");
  ASSERT_TRUE(img.ok()) << img.error();
  std::string mnt = dir / "ext";
  ASSERT_TRUE(img.mount(mnt));
  std::string root = mnt + "/root";
  guard::testing::make_dirs(root);
  auto cp = guard::testing::run({"cp", "-a", src + "/.", root + "/"});
  ASSERT_TRUE(cp.ok()) << cp.err;
  auto layout = detect_layout(root);
  ASSERT_TRUE(layout) << layout.error().to_string();
  EXPECT_EQ(layout->fstype, "ext4");
  auto b = make_backend(*layout, test_policy(), mnt + "/state");
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ((*b)->name(), "copy");
  std::string hostname = slurp(root + "/etc/hostname");
  std::string status = slurp(root + "/var/lib/dpkg/status");
  std::string ls = slurp(root + "/usr/bin/ls");
  auto snap = (*b)->create("pre", {});
  ASSERT_TRUE(snap) << snap.error().to_string();
  guard::testing::write_file(root + "/etc/hostname", "changed\n");
  guard::testing::write_file(root + "/etc/new.conf", "new\n");
  std::ofstream(root + "/var/lib/dpkg/status", std::ios::app) << "\nPackage: new\nStatus: install ok installed\n";
  guard::testing::write_file(root + "/usr/bin/ls", "new binary\n", 0755);
  auto res = (*b)->rollback(snap->id, {});
  ASSERT_TRUE(res) << res.error().to_string();
  EXPECT_EQ(res->method, "copy");
  EXPECT_EQ(slurp(root + "/etc/hostname"), hostname);
  EXPECT_FALSE(exists(root + "/etc/new.conf"));
  EXPECT_EQ(slurp(root + "/var/lib/dpkg/status"), status);
  EXPECT_EQ(slurp(root + "/etc/" + res->replaced_dir + "/new.conf"), "new\n") << "replaced files are kept";
  // It says plainly what it cannot do, and it did not touch binaries.
  EXPECT_EQ(slurp(root + "/usr/bin/ls"), "new binary\n");
  ASSERT_FALSE(res->notes.empty());
  EXPECT_NE(res->notes[0].find("NOT"), std::string::npos);
}

}  // namespace
}  // namespace guard::snapshots
