#include "checks/symlinks.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/unit/checks/fixture_root.h"

namespace guard::checks {
namespace {

using namespace guard::testing;

class SymlinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path();
    for (const char* d : {"usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu", "etc/alternatives", "proc"})
      make_dirs(root_ + "/" + d);
    make_symlink("usr/bin", root_ + "/bin");
    make_symlink("usr/sbin", root_ + "/sbin");
    make_symlink("usr/lib", root_ + "/lib");
    write_file(root_ + "/usr/bin/real", "#!/bin/sh\n", 0755);
  }
  std::vector<Finding> run(std::uint64_t* items = nullptr) { return run_one(SymlinksCheck(), root_, items); }

  TempDir dir_;
  std::string root_;
};

TEST_F(SymlinksTest, HealthyRootHasNoFindings) {
  make_symlink("real", root_ + "/usr/bin/alias");
  make_symlink("/usr/bin/real", root_ + "/usr/bin/absolute");
  make_symlink("../proc/self/mounts", root_ + "/etc/mtab");  // resolves on a running system only
  make_symlink("/run/systemd/resolve/stub-resolv.conf", root_ + "/etc/resolv.conf");
  std::uint64_t items = 0;
  auto fs = run(&items);
  EXPECT_TRUE(fs.empty()) << dump(fs);
  EXPECT_EQ(items, 4u);
}

TEST_F(SymlinksTest, DanglingLinkInBinBlocks) {
  make_symlink("missing", root_ + "/usr/bin/broken");
  make_symlink("../nowhere", root_ + "/etc/conf-link");
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/bin/broken", "dangling");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_EQ(f->check, "symlinks");
  const Finding* e = find_finding(fs, "/etc/conf-link", "dangling");
  ASSERT_NE(e, nullptr) << dump(fs);
  EXPECT_EQ(e->severity, Severity::warn);
}

TEST_F(SymlinksTest, SonameLinkIntoNowhereBlocksDevLinkWarns) {
  make_symlink("libz.so.1.2.13", root_ + "/usr/lib/x86_64-linux-gnu/libz.so.1");
  make_symlink("libz.so.1", root_ + "/usr/lib/x86_64-linux-gnu/libz.so");
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/lib/x86_64-linux-gnu/libz.so.1");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  const Finding* dev = find_finding(fs, "/usr/lib/x86_64-linux-gnu/libz.so");
  ASSERT_NE(dev, nullptr) << dump(fs);
  EXPECT_EQ(dev->severity, Severity::warn);
}

TEST_F(SymlinksTest, LoopIsFound) {
  make_symlink("loop-b", root_ + "/usr/bin/loop-a");
  make_symlink("loop-a", root_ + "/usr/bin/loop-b");
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/bin/loop-a", "loop");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_NE(f->message.find("loop"), std::string::npos);
}

TEST_F(SymlinksTest, AbsoluteLinkResolvesInsideTheRootNeverOnTheHost) {
  // The host has /etc/shadow; this root does not.
  make_symlink("/etc/shadow", root_ + "/usr/bin/shadow-link");
  make_symlink("../../../../../../usr/bin/real", root_ + "/usr/bin/climbing");  // ".." stops at the root
  auto fs = run();
  ASSERT_NE(find_finding(fs, "/usr/bin/shadow-link", "dangling"), nullptr) << dump(fs);
  EXPECT_EQ(find_finding(fs, "/usr/bin/climbing"), nullptr) << dump(fs);
}

TEST_F(SymlinksTest, UsrSbinReplacedByLinkToUsrBinBlocks) {
  std::filesystem::remove_all(root_ + "/usr/sbin");
  make_symlink("bin", root_ + "/usr/sbin");
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/sbin", "usrmerge");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
}

TEST_F(SymlinksTest, SbinPointingAtUsrBinBlocks) {
  make_symlink("usr/bin", root_ + "/sbin");
  auto fs = run();
  const Finding* f = find_finding(fs, "/sbin", "usrmerge");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_NE(f->message.find("instead of /usr/sbin"), std::string::npos) << f->message;
}

TEST_F(SymlinksTest, DirectoryWhereAMergedLinkBelongsBlocks) {
  std::filesystem::remove(root_ + "/lib");
  make_dirs(root_ + "/lib");
  auto fs = run();
  const Finding* f = find_finding(fs, "/lib", "usrmerge");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
}

TEST_F(SymlinksTest, UnmergedRootIsFine) {
  for (const char* d : {"bin", "sbin", "lib"}) {
    std::filesystem::remove(root_ + "/" + d);
    make_dirs(root_ + "/" + d);
  }
  auto fs = run();
  EXPECT_TRUE(fs.empty()) << dump(fs);
}

TEST_F(SymlinksTest, DanglingAlternativeBlocksWhenAProgramUsesIt) {
  make_symlink("/usr/bin/nano", root_ + "/etc/alternatives/editor");
  make_symlink("/etc/alternatives/editor", root_ + "/usr/bin/editor");
  make_symlink("/usr/bin/less", root_ + "/etc/alternatives/pager.1.gz");
  auto fs = run();
  const Finding* f = find_finding(fs, "/etc/alternatives/editor", "alternative-dangling");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_NE(f->hint.find("update-alternatives"), std::string::npos);
  const Finding* unused = find_finding(fs, "/etc/alternatives/pager.1.gz", "alternative-dangling");
  ASSERT_NE(unused, nullptr) << dump(fs);
  EXPECT_EQ(unused->severity, Severity::warn);
}

}  // namespace
}  // namespace guard::checks

namespace guard::checks {
namespace {

using namespace guard::testing;

TEST_F(SymlinksTest, ChangeScopedRunReportsChangedLinksAndLinksToChangedFiles) {
  make_symlink("gone-tool", root_ + "/usr/bin/old-link");
  make_symlink("real-removed", root_ + "/usr/bin/points-at-changed");
  auto r = base::Root::open(root_);
  ASSERT_TRUE(r);
  policies::Policy policy;
  CheckContext ctx{*r, policy, {}, nullptr, false, {}, {}, {}};
  ctx.scope.full = false;
  ctx.scope.paths = {"/usr/bin/real-removed"};
  auto out = SymlinksCheck().run(ctx);
  ASSERT_TRUE(out);
  EXPECT_NE(find_finding(out->findings, "/usr/bin/points-at-changed", "dangling"), nullptr) << dump(out->findings);
  EXPECT_EQ(find_finding(out->findings, "/usr/bin/old-link"), nullptr) << dump(out->findings);
}

}  // namespace
}  // namespace guard::checks
