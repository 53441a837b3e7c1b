#include "base/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/common/test_env.h"

namespace guard::base {
namespace {

using guard::testing::TempDir;

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(AtomicFileTest, WritesAndReplaces) {
  TempDir dir;
  std::string path = dir / "gate";
  ASSERT_TRUE(write_file_atomic(path, "closed\n", 0600));
  EXPECT_EQ(guard::testing::read_file(path), "closed\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(write_file_atomic(path, "open\n"));
  EXPECT_EQ(guard::testing::read_file(path), "open\n");
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"gate"}) << "no temporary file left behind";
}

TEST(AtomicFileTest, OldContentSurvivesAFailedWrite) {
  TempDir dir;
  std::string path = dir / "state";
  ASSERT_TRUE(write_file_atomic(path, "old"));
  // A directory where the target should be: rename fails, the temp file is removed.
  std::string blocked = dir / "blocked";
  std::filesystem::create_directories(blocked + "/child");
  auto r = write_file_atomic(blocked, "new");
  EXPECT_FALSE(r);
  EXPECT_EQ(guard::testing::read_file(path), "old");
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{"blocked", "state"}));
}

TEST(AtomicFileTest, MissingDirectoryIsAClearError) {
  auto r = write_file_atomic("/nonexistent-dir-ug/file", "x");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("/nonexistent-dir-ug"), std::string::npos);
}

TEST(AtomicFileTest, DoesNotFollowASymlinkedTempName) {
  TempDir dir;
  // The final name being a symlink is replaced (rename), never written through.
  std::string target = dir / "target";
  guard::testing::write_file(target, "precious");
  guard::testing::make_symlink(target, dir / "link");
  ASSERT_TRUE(write_file_atomic(dir / "link", "new"));
  EXPECT_EQ(guard::testing::read_file(target), "precious");
  EXPECT_EQ(guard::testing::read_file(dir / "link"), "new");
}

}  // namespace
}  // namespace guard::base
