// check_trusted_dir: the state and log directories' owner/mode rule, every parent up to /.
#include "base/trusted_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/common/test_env.h"

namespace guard::base {
namespace {

using guard::testing::make_dirs;
using guard::testing::make_symlink;
using guard::testing::TempDir;
using ::testing::HasSubstr;

TEST(TrustedDirTest, APrivateDirectoryUnderStickyTmpIsTrusted) {
  TempDir dir;
  make_dirs(dir / "state", 0700);
  EXPECT_TRUE(check_trusted_dir(dir / "state", "the state directory"));
  EXPECT_TRUE(check_trusted_dir(dir / "missing/below", "the state directory")) << "created later, 0700";
}

TEST(TrustedDirTest, ADirectoryOthersCanWriteIsRefusedNamingIt) {
  TempDir dir;
  make_dirs(dir / "log", 0755);
  ::chmod((dir / "log").c_str(), 0777);
  auto r = check_trusted_dir(dir / "log", "the log directory");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("the log directory " + (dir / "log") + " is writable by others"));
  ::chmod((dir / "log").c_str(), 0775);
  EXPECT_FALSE(check_trusted_dir(dir / "log", "the log directory")) << "group-writable";
}

TEST(TrustedDirTest, AParentOthersCanWriteIsRefusedAlsoForADirectoryNotYetCreated) {
  TempDir dir;
  make_dirs(dir / "open/state", 0700);
  ::chmod((dir / "open").c_str(), 0777);
  auto r = check_trusted_dir(dir / "open/state", "the state directory");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr(dir / "open"));
  EXPECT_FALSE(check_trusted_dir(dir / "open/new", "the state directory"));
  ::chmod((dir / "open").c_str(), 01777);  // sticky, like /tmp
  EXPECT_TRUE(check_trusted_dir(dir / "open/state", "the state directory"));
}

TEST(TrustedDirTest, ASymlinkToADirectoryOthersCanWriteIsRefused) {
  TempDir dir;
  make_dirs(dir / "target", 0755);
  ::chmod((dir / "target").c_str(), 0777);
  make_symlink(dir / "target", dir / "link");
  EXPECT_FALSE(check_trusted_dir(dir / "link", "the state directory"));
}

TEST(TrustedDirTest, ADirectoryOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  TempDir dir;
  make_dirs(dir / "state", 0700);
  ASSERT_EQ(::chown((dir / "state").c_str(), 65534, 65534), 0);
  auto r = check_trusted_dir(dir / "state", "the state directory");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("owned by uid 65534"));
}

TEST(TrustedDirTest, AFileIsNotADirectory) {
  TempDir dir;
  guard::testing::write_file(dir / "state", "x", 0600);
  auto r = check_trusted_dir(dir / "state", "the state directory");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("not a directory"));
}

}  // namespace
}  // namespace guard::base
