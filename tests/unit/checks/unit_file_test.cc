#include "checks/unit_file.h"

#include <gtest/gtest.h>

namespace guard::checks {
namespace {

TEST(UnitFile, SectionsKeysAndComments) {
  UnitFile u = parse_unit_file(
      "# a comment\n[Unit]\nDescription = OpenBSD Secure Shell server \n; another\n"
      "[Service]\nExecStartPre=/usr/sbin/sshd -t\nExecStart=/usr/sbin/sshd -D $SSHD_OPTS\r\nnot an assignment\n");
  ASSERT_EQ(u.assignments.size(), 3U);
  EXPECT_EQ(u.assignments[0].section, "Unit");
  EXPECT_EQ(u.assignments[0].key, "Description");
  EXPECT_EQ(u.assignments[0].value, "OpenBSD Secure Shell server");
  EXPECT_EQ(u.assignments[0].line, 3U);
  EXPECT_EQ(u.assignments[2].section, "Service");
  EXPECT_EQ(u.assignments[2].value, "/usr/sbin/sshd -D $SSHD_OPTS");
  EXPECT_EQ(u.assignments[2].line, 7U);
}

TEST(UnitFile, ContinuationLinesJoinAndSkipComments) {
  UnitFile u =
      parse_unit_file("[Service]\nExecStart=/usr/bin/tool \\\n  --one \\\n# a comment inside\n  --two\nUser=nobody\n");
  ASSERT_EQ(u.assignments.size(), 2U);
  EXPECT_EQ(u.assignments[0].value, "/usr/bin/tool    --one    --two");
  EXPECT_EQ(u.assignments[0].line, 2U);
  EXPECT_EQ(u.assignments[1].key, "User");
  EXPECT_EQ(u.assignments[1].line, 6U);
}

TEST(UnitFile, BackslashOnTheLastLineStillCounts) {
  UnitFile u = parse_unit_file("[Service]\nExecStart=/bin/true \\");
  ASSERT_EQ(u.assignments.size(), 1U);
  EXPECT_EQ(u.assignments[0].value, "/bin/true");
}

TEST(UnitFile, EmptyAssignmentResetsAcrossDropIns) {
  std::vector<UnitFile> files{
      parse_unit_file("[Service]\nExecStart=/usr/bin/a\nExecStart=/usr/bin/b\n"),
      parse_unit_file("[Service]\nExecStart=\nExecStart=/usr/local/bin/c\n"),
  };
  EXPECT_EQ(unit_values(files, "Service", "ExecStart"), std::vector<std::string>{"/usr/local/bin/c"});
  EXPECT_EQ(unit_values({files[0]}, "Service", "ExecStart"), (std::vector<std::string>{"/usr/bin/a", "/usr/bin/b"}));
  EXPECT_TRUE(unit_values(files, "Unit", "ExecStart").empty());
}

}  // namespace
}  // namespace guard::checks
