#include "checks/ld_so_conf.h"

#include <gtest/gtest.h>

#include <chrono>

#include "tests/common/test_env.h"

namespace guard::checks {
namespace {

TEST(LdSoConf, ParsesDirectoriesIncludesCommentsAndHwcap) {
  auto lines = parse_ld_so_conf(
      "# comment\n\n/usr/local/lib   # trailing\ninclude /etc/ld.so.conf.d/*.conf other/*.conf\nhwcap 0 nosegneg\n"
      "/usr/lib/old=libc6\n",
      "/etc/ld.so.conf");
  ASSERT_TRUE(lines) << lines.error().to_string();
  ASSERT_EQ(lines->size(), 4u);
  EXPECT_EQ((*lines)[0].kind, LdConfLine::Kind::directory);
  EXPECT_EQ((*lines)[0].value, "/usr/local/lib");
  EXPECT_EQ((*lines)[0].line, 3u);
  EXPECT_EQ((*lines)[1].kind, LdConfLine::Kind::include);
  EXPECT_EQ((*lines)[1].value, "/etc/ld.so.conf.d/*.conf");
  EXPECT_EQ((*lines)[2].value, "other/*.conf");
  EXPECT_EQ((*lines)[3].value, "/usr/lib/old");
}

TEST(LdSoConf, MalformedLinesNameFileAndLine) {
  auto r = parse_ld_so_conf("/ok\nrelative/dir\n", "/etc/ld.so.conf.d/x.conf");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().path, "/etc/ld.so.conf.d/x.conf");
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
  EXPECT_FALSE(parse_ld_so_conf("include\n", "f"));
  EXPECT_FALSE(parse_ld_so_conf(std::string_view("/a\0b\n", 5), "f"));
}

TEST(LdSoConf, IncludeGlobsAreMatchedInsideTheRoot) {
  testing::TempDir dir;
  testing::write_file(dir / "etc/ld.so.conf", "include ld.so.conf.d/*.conf\n/usr/local/lib\n");
  testing::write_file(dir / "etc/ld.so.conf.d/b.conf", "/opt/b\n");
  testing::write_file(dir / "etc/ld.so.conf.d/a.conf", "/opt/a\ninclude nested/*.conf\n");
  testing::write_file(dir / "etc/ld.so.conf.d/nested/n.conf", "/opt/n\n");
  testing::write_file(dir / "etc/ld.so.conf.d/skip.txt", "/opt/skip\n");
  testing::write_file(dir / "etc/ld.so.conf.d/bad.conf", "not/absolute\n");
  auto root = base::Root::open(dir.path());
  ASSERT_TRUE(root);
  auto conf = load_ld_so_conf(*root);
  std::vector<std::string> want{"/opt/a", "/opt/n", "/opt/b", "/usr/local/lib"};
  EXPECT_EQ(conf.dirs, want);
  ASSERT_EQ(conf.problems.size(), 1u);
  EXPECT_EQ(conf.problems[0].path, "/etc/ld.so.conf.d/bad.conf");
}

// The reproducer: 150 bytes that include themselves six times took 108 s and 8.7 GB
// (6^8 expansions under the depth cap). Each file is now expanded once and the loop reported.
TEST(LdSoConf, SelfIncludingFileIsExpandedOnceAndReported) {
  testing::TempDir dir;
  std::string text = "/opt/a\n";
  for (int i = 0; i < 6; ++i) text += "include /etc/ld.so.conf\n";
  text += "include /etc/ld.so.conf.d/*.conf\n";
  testing::write_file(dir / "etc/ld.so.conf", text);
  // A diamond: two files that both include the third, which includes the top again.
  testing::write_file(dir / "etc/ld.so.conf.d/a.conf", "/opt/b\ninclude /etc/ld.so.conf.d/common\n");
  testing::write_file(dir / "etc/ld.so.conf.d/b.conf", "include /etc/ld.so.conf.d/common\n/opt/c\n");
  testing::write_file(dir / "etc/ld.so.conf.d/common", "/opt/common\ninclude ../ld.so.conf\n");
  auto root = base::Root::open(dir.path());
  ASSERT_TRUE(root);
  auto start = std::chrono::steady_clock::now();
  auto conf = load_ld_so_conf(*root);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(1));
  std::vector<std::string> want{"/opt/a", "/opt/b", "/opt/common", "/opt/c"};
  EXPECT_EQ(conf.dirs, want);
  // Six loop lines in ld.so.conf, one in common: each named by file and line.
  ASSERT_EQ(conf.problems.size(), 7u);
  EXPECT_EQ(conf.problems[0].path, "/etc/ld.so.conf");
  EXPECT_NE(conf.problems[0].message.find("line 2: includes /etc/ld.so.conf, which is already being read"),
            std::string::npos)
      << conf.problems[0].message;
  EXPECT_EQ(conf.problems[6].path, "/etc/ld.so.conf.d/common");
  EXPECT_NE(conf.problems[6].message.find("line 2: includes /etc/ld.so.conf,"), std::string::npos)
      << conf.problems[6].message;
}

// Many distinct files: the expansion stops at a cap, reported once with the file and line.
TEST(LdSoConf, FanOutOverDistinctFilesIsCapped) {
  testing::TempDir dir;
  testing::write_file(dir / "etc/ld.so.conf", "include /etc/ld.so.conf.d/*/*.conf\n/opt/top\n");
  for (int i = 0; i < 40; ++i)
    for (int j = 0; j < 40; ++j)
      testing::write_file(dir / ("etc/ld.so.conf.d/" + std::to_string(i) + "/" + std::to_string(j) + ".conf"),
                          "/opt/" + std::to_string(i) + "/" + std::to_string(j) + "\n");
  auto root = base::Root::open(dir.path());
  ASSERT_TRUE(root);
  auto conf = load_ld_so_conf(*root);
  ASSERT_EQ(conf.problems.size(), 1u);
  EXPECT_EQ(conf.problems[0].path, "/etc/ld.so.conf");
  EXPECT_NE(conf.problems[0].message.find("line 1: the pattern /etc/ld.so.conf.d/*/*.conf matches more than 1024"),
            std::string::npos)
      << conf.problems[0].message;
  EXPECT_TRUE(conf.dirs.empty());  // the expansion stopped at the first line
}

TEST(LdSoConf, GlobNeverLooksAtTheHost) {
  testing::TempDir dir;
  testing::make_dirs(dir / "etc");
  auto root = base::Root::open(dir.path());
  ASSERT_TRUE(root);
  EXPECT_TRUE(glob_in_root(*root, "/etc/pass*").empty());  // the host has /etc/passwd
  testing::write_file(dir / "etc/passthrough", "");
  EXPECT_EQ(glob_in_root(*root, "/etc/pass*"), std::vector<std::string>{"/etc/passthrough"});
}

}  // namespace
}  // namespace guard::checks
