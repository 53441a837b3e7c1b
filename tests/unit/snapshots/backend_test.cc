#include "snapshots/backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/unique_fd.h"
#include "snapshots/tree_copy.h"
#include "tests/common/test_env.h"

namespace guard::snapshots {
namespace {

using guard::testing::TempDir;

TEST(SnapshotId, TimeAndSanitisedLabel) {
  // 2026-11-22 19:30:12 UTC
  EXPECT_EQ(make_snapshot_id(1795375812, "pre run#12"), "20261122-193012-pre-run-12");
  EXPECT_EQ(make_snapshot_id(1795375812, ""), "20261122-193012");
  EXPECT_EQ(make_snapshot_id(1795375812, "../../etc"), "20261122-193012-etc");
  EXPECT_EQ(make_snapshot_id(1795375812, "a/b"), "20261122-193012-a-b");
}

// A backend that records what it was asked: the seam the guard layer's tests use.
class FakeBackend : public SnapshotBackend {
 public:
  std::vector<SnapshotInfo> snaps;
  std::vector<std::string> removed;
  std::string refuse_remove;

  std::string name() const override { return "fake"; }
  base::Result<SnapshotInfo> create(const std::string& label, const std::map<std::string, std::string>&) override {
    SnapshotInfo i;
    i.id = make_snapshot_id(1795375812 + static_cast<std::int64_t>(snaps.size()), label);
    i.created_unix = 1795375812 + static_cast<std::int64_t>(snaps.size());
    snaps.push_back(i);
    return i;
  }
  base::Result<std::vector<SnapshotInfo>> list() override { return snaps; }
  base::Result<SnapshotInfo> info(const std::string& id) override {
    for (const auto& s : snaps)
      if (s.id == id) return s;
    return base::fail("snapshot", id, "no such snapshot");
  }
  base::Result<void> remove(const std::string& id) override {
    if (id == refuse_remove) return base::fail(kRefused, id, "pending rollback");
    removed.push_back(id);
    std::erase_if(snaps, [&](const SnapshotInfo& s) { return s.id == id; });
    return {};
  }
  base::Result<base::Root> open(const std::string& id) override { return base::fail("open", id, "fake"); }
  base::Result<RollbackResult> rollback(const std::string& id, const RollbackOptions&) override {
    return base::fail("rollback", id, "fake");
  }
  base::Result<std::vector<PendingRollback>> pending_rollbacks() override { return std::vector<PendingRollback>{}; }
  base::Result<std::optional<PendingRollback>> find_rollback(const std::string&) override {
    return std::optional<PendingRollback>{};
  }
  base::Result<RollbackResult> resume_rollback(const std::string& j, ResumeMode) override {
    return base::fail("resume", j, "fake");
  }
};

TEST(Prune, KeepsNewestProtectedAndRefused) {
  FakeBackend b;
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(b.create("s" + std::to_string(i), {})->id);
  b.refuse_remove = ids[1];
  auto removed = b.prune(2, 2, {ids[0]});
  ASSERT_TRUE(removed) << removed.error().to_string();
  // 6 snapshots, keep 2 -> 4 to remove; ids[0] protected, ids[1] refused (pending rollback).
  EXPECT_EQ(*removed, (std::vector<std::string>{ids[2], ids[3], ids[4], ids[5]}));
  EXPECT_EQ(b.snaps.size(), 2u);
}

TEST(Prune, IncompleteOnesGoFirstAndBrokenRootsAreKeptByTheirOwnCount) {
  FakeBackend b;
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(b.create("s" + std::to_string(i), {})->id);
  b.snaps[1].complete = false;  // taking it was interrupted
  b.snaps[0].kind = "broken";   // roots a rollback replaced
  b.snaps[3].kind = "broken";
  auto removed = b.prune(2, 1, {});
  ASSERT_TRUE(removed) << removed.error().to_string();
  // The incomplete one; of the snapshots 2, 4, 5 the oldest beyond the newest two; of the
  // broken roots 0 and 3 the older one.
  EXPECT_EQ(*removed, (std::vector<std::string>{ids[1], ids[2], ids[0]}));
  ASSERT_EQ(b.snaps.size(), 3u);
  EXPECT_EQ(b.snaps[0].id, ids[3]) << "the newest broken root stays";
}

TEST(Prune, NothingToDoUnderTheLimit) {
  FakeBackend b;
  (void)b.create("a", {});
  auto removed = b.prune(5, 2, {});
  ASSERT_TRUE(removed);
  EXPECT_TRUE(removed->empty());
}

TEST(TreeCopy, CopiesFilesLinksModesAndStaysInside) {
  TempDir dir;
  guard::testing::write_file(dir / "src/log/syslog", "line\n", 0640);
  guard::testing::write_file(dir / "src/log/sub/deep", "deep\n");
  guard::testing::make_symlink("/etc/shadow", dir / "src/log/abs-link");
  guard::testing::make_dirs(dir / "dst");
  base::UniqueFd s(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  base::UniqueFd src(::openat(s.get(), "src", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  base::UniqueFd dst(::openat(s.get(), "dst", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto stats = copy_tree(src.get(), "log", dst.get(), "log");
  ASSERT_TRUE(stats) << stats.error().to_string();
  EXPECT_EQ(guard::testing::read_file(dir / "dst/log/syslog"), "line\n");
  EXPECT_EQ(guard::testing::read_file(dir / "dst/log/sub/deep"), "deep\n");
  struct stat st {};
  ASSERT_EQ(::stat((dir / "dst/log/syslog").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  char target[64] = {};
  ASSERT_GT(::readlink((dir / "dst/log/abs-link").c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "/etc/shadow") << "links are copied as links, never followed";
  EXPECT_GE(stats->files, 4u);
  // An existing destination is not overwritten.
  EXPECT_FALSE(copy_tree(src.get(), "log", dst.get(), "log"));
  ASSERT_TRUE(remove_tree(dst.get(), "log"));
  EXPECT_NE(::access((dir / "dst/log").c_str(), F_OK), 0);
  EXPECT_EQ(guard::testing::read_file(dir / "src/log/sub/deep"), "deep\n");
}

TEST(TreeCopy, MakeDirsDoesNotFollowLinks) {
  TempDir dir;
  guard::testing::make_dirs(dir / "outside");
  guard::testing::make_dirs(dir / "root");
  guard::testing::make_symlink(dir / "outside", dir / "root/var");
  base::UniqueFd r(::open((dir / "root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_FALSE(make_dirs_at(r.get(), "var/lib/x"));
  EXPECT_NE(::access((dir / "outside/lib").c_str(), F_OK), 0);
  EXPECT_TRUE(make_dirs_at(r.get(), "srv/a/b"));
  EXPECT_EQ(::access((dir / "root/srv/a/b").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace guard::snapshots
