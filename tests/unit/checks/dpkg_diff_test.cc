#include "checks/dpkg_diff.h"

#include <gtest/gtest.h>

#include "tests/common/test_env.h"

namespace guard::checks {
namespace {

std::string para(const std::string& name, const std::string& version, const std::string& status = "install ok installed",
                 const std::string& extra = "") {
  return "Package: " + name + "\nStatus: " + status + "\nArchitecture: amd64\n" + extra + "Version: " + version +
         "\n\n";
}

TEST(DiffStatus, InstalledRemovedUpgradedDowngraded) {
  std::string before = para("curl", "7.88.1-10+deb12u5") + para("libc6", "2.36-9+deb12u4", "install ok installed",
                                                                   "Multi-Arch: same\n") +
                       para("old", "1.0") + para("pinned", "2.0-1") + para("conf-only", "1.0", "deinstall ok config-files") +
                       para("broken", "3.0") + para("same", "1.0");
  std::string after = para("curl", "7.88.1-10+deb12u8") +
                      para("libc6", "2.36-9+deb12u10", "install ok installed", "Multi-Arch: same\n") +
                      para("pinned", "2.0~rc1-1") + para("conf-only", "1.1", "install ok installed") +
                      para("new", "0.1") + para("broken", "3.0", "install ok half-configured") + para("same", "1.0") +
                      para("old", "1.0", "purge ok not-installed");
  auto diff = diff_status(before, after);
  ASSERT_TRUE(diff) << diff.error().to_string();

  ASSERT_EQ(diff->upgraded.size(), 2u);
  EXPECT_EQ(diff->upgraded[0].package, "curl");
  EXPECT_EQ(diff->upgraded[0].before_version, "7.88.1-10+deb12u5");
  EXPECT_EQ(diff->upgraded[0].after_version, "7.88.1-10+deb12u8");
  EXPECT_EQ(diff->upgraded[1].package, "libc6:amd64");  // 10 > 4: versions are not compared as text

  ASSERT_EQ(diff->downgraded.size(), 1u);
  EXPECT_EQ(diff->downgraded[0].package, "pinned");

  ASSERT_EQ(diff->installed.size(), 2u);  // config-files -> installed counts as an install
  EXPECT_EQ(diff->installed[0].package, "conf-only");
  EXPECT_EQ(diff->installed[0].before_version, "");
  EXPECT_EQ(diff->installed[1].package, "new");
  EXPECT_EQ(diff->installed[1].after_version, "0.1");

  ASSERT_EQ(diff->removed.size(), 1u);
  EXPECT_EQ(diff->removed[0].package, "old");
  EXPECT_EQ(diff->removed[0].before_version, "1.0");

  ASSERT_EQ(diff->state_changed.size(), 1u);
  EXPECT_EQ(diff->state_changed[0].package, "broken");
  EXPECT_EQ(diff->state_changed[0].after_state, DpkgState::half_configured);

  Scope scope = scope_from_diff(*diff);
  EXPECT_FALSE(scope.full);
  EXPECT_EQ(scope.packages, (std::set<std::string>{"broken", "conf-only", "curl", "libc6:amd64", "new", "pinned"}));
}

TEST(DiffStatus, IdenticalFilesGiveAnEmptyScope) {
  std::string s = para("a", "1") + para("b", "2");
  auto diff = diff_status(s, s);
  ASSERT_TRUE(diff);
  EXPECT_TRUE(diff->empty());
  Scope scope = scope_from_diff(*diff);
  EXPECT_FALSE(scope.full);
  EXPECT_TRUE(scope.packages.empty());
}

TEST(DiffStatus, MalformedInputNamesTheSide) {
  auto diff = diff_status(para("a", "1"), "Package: a\nStatus: bogus\n\n");
  ASSERT_FALSE(diff);
  EXPECT_EQ(diff.error().path, "after");
  EXPECT_NE(diff.error().message.find(":2: "), std::string::npos);
}

TEST(DiffStatus, TwoRoots) {
  guard::testing::TempDir before, after;
  guard::testing::write_file(before / "var/lib/dpkg/status", para("curl", "7.88.1-10+deb12u5"));
  guard::testing::write_file(after / "var/lib/dpkg/status", para("curl", "7.88.1-10+deb12u8"));
  auto b = base::Root::open(before.path());
  auto a = base::Root::open(after.path());
  ASSERT_TRUE(b && a);
  auto diff = diff_roots(*b, *a);
  ASSERT_TRUE(diff) << diff.error().to_string();
  ASSERT_EQ(diff->upgraded.size(), 1u);
  EXPECT_EQ(scope_from_diff(*diff).packages, (std::set<std::string>{"curl"}));
}

}  // namespace
}  // namespace guard::checks
