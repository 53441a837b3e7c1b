#include "base/root.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base/regular_file.h"

#include "tests/common/test_env.h"

namespace guard::base {
namespace {

using guard::testing::TempDir;
using guard::testing::make_symlink;
using guard::testing::write_file;

class RootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_ / "etc/hostname", "inside\n");
    write_file(dir_ / "usr/bin/tool", "#!/bin/sh\n", 0755);
    make_symlink("usr/bin", dir_ / "bin");
    make_symlink("/etc/hostname", dir_ / "abs-link");
    make_symlink("../../../../../../../etc/hostname", dir_ / "usr/dotdot-link");
    make_symlink("/etc/shadow", dir_ / "shadow-link");
    make_symlink("loop-b", dir_ / "loop-a");
    make_symlink("loop-a", dir_ / "loop-b");
    make_symlink("/proc/self/root/etc/passwd", dir_ / "magic-link");
    auto root = Root::open(dir_.path());
    ASSERT_TRUE(root) << root.error().to_string();
    root_.emplace(std::move(*root));
  }
  TempDir dir_;
  std::optional<Root> root_;
};

TEST_F(RootTest, AbsoluteLinkResolvesInsideTheRoot) {
  auto data = root_->read_file("/abs-link");
  ASSERT_TRUE(data) << data.error().to_string();
  EXPECT_EQ(*data, "inside\n");
}

TEST_F(RootTest, DotDotChainsStopAtTheRoot) {
  auto data = root_->read_file("usr/dotdot-link");
  ASSERT_TRUE(data) << data.error().to_string();
  EXPECT_EQ(*data, "inside\n");
  auto direct = root_->read_file("/../../../../etc/hostname");
  ASSERT_TRUE(direct);
  EXPECT_EQ(*direct, "inside\n");
}

TEST_F(RootTest, HostShadowIsNeverReached) {
  // The host has /etc/shadow; the root does not: the link must dangle, not escape.
  auto data = root_->read_file("/shadow-link");
  ASSERT_FALSE(data);
  EXPECT_EQ(data.error().err, ENOENT);
  auto exists = root_->exists("/shadow-link");
  ASSERT_TRUE(exists);
  EXPECT_FALSE(*exists);
}

TEST_F(RootTest, LinkLoopIsAnErrorNotAHang) {
  auto data = root_->read_file("/loop-a");
  ASSERT_FALSE(data);
  EXPECT_EQ(data.error().err, ELOOP);
  auto exists = root_->exists("/loop-a");
  EXPECT_FALSE(exists);
}

TEST_F(RootTest, MagicLinksAreRefused) {
  auto data = root_->read_file("/magic-link");
  EXPECT_FALSE(data);
}

TEST_F(RootTest, ReadlinkAndRealpath) {
  auto target = root_->readlink("/bin");
  ASSERT_TRUE(target);
  EXPECT_EQ(*target, "usr/bin");
  auto real = root_->realpath("/bin/tool");
  ASSERT_TRUE(real) << real.error().to_string();
  EXPECT_EQ(*real, "/usr/bin/tool");
  auto st = root_->stat("/bin", Follow::no);
  ASSERT_TRUE(st);
  EXPECT_TRUE(S_ISLNK(st->st_mode));
}

TEST_F(RootTest, WalkSeesLinksWithoutFollowingThem) {
  std::vector<std::string> links;
  auto r = root_->walk("/", [&](const WalkEntry& e) {
    if (e.type == DT_LNK) links.emplace_back(e.path);
    return WalkAction::next;
  });
  ASSERT_TRUE(r);
  std::sort(links.begin(), links.end());
  EXPECT_EQ(links, (std::vector<std::string>{"/abs-link", "/bin", "/loop-a", "/loop-b", "/magic-link",
                                             "/shadow-link", "/usr/dotdot-link"}));
}

TEST_F(RootTest, WalkStartsThroughALinkInsideTheRoot) {
  std::vector<std::string> seen;
  auto r = root_->walk("/bin", [&](const WalkEntry& e) {
    seen.emplace_back(e.path);
    return WalkAction::next;
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(seen, std::vector<std::string>{"/bin/tool"});
}

// A FIFO or a device where a file should be is refused at once, naming what it is: never a
// read that hangs (FIFO), runs on (/dev/zero) or returns nothing (/dev/null).
TEST_F(RootTest, ReadFileRefusesSpecialFilesByKind) {
  ASSERT_EQ(::mkfifo((dir_ / "etc/fstab").c_str(), 0644), 0);
  auto root = Root::open(dir_.path());
  ASSERT_TRUE(root);
  auto fifo = root->read_file("/etc/fstab");
  ASSERT_FALSE(fifo);
  EXPECT_EQ(fifo.error().path, "/etc/fstab");
  EXPECT_EQ(fifo.error().message, "is a FIFO, not a regular file");
  auto opened = open_regular(*root, "/etc/fstab");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().message, "is a FIFO, not a regular file");
  EXPECT_TRUE(open_regular(*root, "/etc/hostname"));
  if (!guard::testing::is_root()) GTEST_SKIP() << "mknod of a character device needs root";
  for (auto [name, minor] : {std::pair{"status", 3}, std::pair{"zero", 5}}) {  // /dev/null, /dev/zero
    std::string path = dir_ / (std::string("etc/") + name);
    ASSERT_EQ(::mknod(path.c_str(), S_IFCHR | 0644, ::makedev(1, minor)), 0);
    auto dev = root->read_file(std::string("/etc/") + name);
    ASSERT_FALSE(dev);
    EXPECT_EQ(dev.error().message, "is a character device, not a regular file");
  }
  write_file(dir_ / "etc/big", std::string(2048, 'x'));
  auto big = root->read_file("/etc/big", 1024);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().message, "is larger than 1 KiB, the most read of such a file");
}

TEST(PathTest, Normalize) {
  EXPECT_EQ(normalize_path("//usr/./lib/../bin/"), "/usr/bin");
  EXPECT_EQ(normalize_path("/../.."), "/");
  EXPECT_EQ(join_path("/", "etc"), "/etc");
  EXPECT_EQ(dirname("/etc"), "/");
  EXPECT_EQ(basename("/usr/lib/libc.so.6"), "libc.so.6");
}

}  // namespace
}  // namespace guard::base
