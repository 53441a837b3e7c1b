#include "base/dir.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/common/test_env.h"

namespace guard::base {
namespace {

using namespace guard::testing;

class DirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_ / "boot/vmlinuz-6.1.0-13-amd64", "k");
    write_file(dir_ / "boot/config-6.1.0-13-amd64", "c");
    make_dirs(dir_ / "boot/grub");
    make_symlink("vmlinuz-6.1.0-13-amd64", dir_ / "boot/vmlinuz");
    make_dirs(dir_ / "empty");
    write_file(dir_ / "etc/hostname", "h\n");
    auto root = Root::open(dir_.path());
    ASSERT_TRUE(root) << root.error().to_string();
    root_.emplace(std::move(*root));
  }
  TempDir dir_;
  std::optional<Root> root_;
};

TEST_F(DirTest, ListsNamesSortedWithoutDotEntries) {
  auto names = list_dir(*root_, "/boot");
  ASSERT_TRUE(names) << names.error().to_string();
  EXPECT_EQ(*names, (std::vector<std::string>{"config-6.1.0-13-amd64", "grub", "vmlinuz", "vmlinuz-6.1.0-13-amd64"}));
  auto empty = list_dir(*root_, "/empty");
  ASSERT_TRUE(empty) << empty.error().to_string();
  EXPECT_TRUE(empty->empty());
}

TEST_F(DirTest, MissingDirectoryIsEmptyButAFileIsNot) {
  auto missing = list_dir(*root_, "/var/lib/dpkg/updates");
  ASSERT_TRUE(missing) << missing.error().to_string();
  EXPECT_TRUE(missing->empty());
  // A path through a file (ENOTDIR) is "not there" too.
  auto through_file = list_dir(*root_, "/etc/hostname/x");
  ASSERT_TRUE(through_file) << through_file.error().to_string();
  EXPECT_TRUE(through_file->empty());
  // The file itself is not a directory: O_DIRECTORY gives ENOTDIR, which reads as "not there".
  auto file = list_dir(*root_, "/etc/hostname");
  ASSERT_TRUE(file);
  EXPECT_TRUE(file->empty());
}

TEST_F(DirTest, ListsAnOpenDescriptorWithoutMovingIt) {
  UniqueFd fd(::open((dir_ / "boot").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  auto first = list_dir(fd.get(), "/boot");
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_EQ(first->size(), 4u);
  // Entries added since are seen by the next listing of the same descriptor.
  write_file(dir_ / "boot/initrd.img-6.1.0-13-amd64", "i");
  auto second = list_dir(fd.get(), "/boot");
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ(second->size(), 5u);
  EXPECT_EQ((*second)[2], "initrd.img-6.1.0-13-amd64");
}

TEST_F(DirTest, ListingABadDescriptorNamesTheCall) {
  auto r = list_dir(-1, "/nowhere");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what, "openat .");
  EXPECT_EQ(r.error().path, "/nowhere");
  EXPECT_EQ(r.error().err, EBADF);
}

TEST_F(DirTest, DirReadsEntriesWithTheirTypes) {
  auto fd = root_->open("/boot", O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(fd) << fd.error().to_string();
  auto dir = Dir::adopt(std::move(*fd), "/boot");
  ASSERT_TRUE(dir) << dir.error().to_string();
  EXPECT_EQ(dir->display(), "/boot");
  std::set<std::string> seen;
  for (;;) {
    auto e = dir->next();
    ASSERT_TRUE(e) << e.error().to_string();
    if (!*e) break;
    const DirEntry& entry = **e;
    // The name is NUL-terminated: usable in *at() calls on the directory's descriptor.
    EXPECT_EQ(entry.name.data()[entry.name.size()], '\0');
    struct stat st {};
    ASSERT_EQ(::fstatat(dir->fd(), entry.name.data(), &st, AT_SYMLINK_NOFOLLOW), 0) << entry.name;
    const std::map<std::string_view, unsigned char> expected = {
        {"grub", DT_DIR}, {"vmlinuz", DT_LNK}, {"config-6.1.0-13-amd64", DT_REG}, {"vmlinuz-6.1.0-13-amd64", DT_REG}};
    if (entry.type != DT_UNKNOWN) {
      EXPECT_EQ(entry.type, expected.at(entry.name)) << entry.name;
    }
    seen.emplace(entry.name);
  }
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen.count("."), 0u);
  EXPECT_EQ(seen.count(".."), 0u);
  // At the end it stays at the end.
  auto again = dir->next();
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->has_value());
}

TEST(DirAdopt, NotADirectoryFailsAndClosesTheDescriptor) {
  TempDir dir;
  write_file(dir / "file", "x");
  int raw = ::open((dir / "file").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  auto d = Dir::adopt(UniqueFd(raw), "/file");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().what, "fdopendir");
  EXPECT_EQ(d.error().err, ENOTDIR);
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);  // closed with the failed adoption
}

}  // namespace
}  // namespace guard::base
