#include "checks/dpkg_version.h"

#include <gtest/gtest.h>

namespace guard::checks {
namespace {

struct Case {
  const char* a;
  const char* b;
  int expected;  // sign
};

int sign(int v) { return (v > 0) - (v < 0); }

TEST(CompareVersions, MatchesDpkgOrder) {
  const Case cases[] = {
      {"1.0", "1.0", 0},
      {"1.0", "1.1", -1},
      {"1.10", "1.9", 1},          // digit runs compare as numbers
      {"1.01", "1.1", 0},          // leading zeros do not count
      {"1.0~rc1", "1.0", -1},      // '~' sorts before the end
      {"1.0~rc1", "1.0~rc2", -1},
      {"1.0~~", "1.0~", -1},
      {"1.0~", "1.0~a", -1},
      {"1.0a", "1.0", 1},          // letters sort after the end
      {"1.0a", "1.0+", -1},        // letters before other characters
      {"1.0+b1", "1.0", 1},
      {"1.0-1", "1.0-2", -1},      // revision
      {"1.0-10", "1.0-9", 1},
      {"1.0", "1.0-0", 0},         // an absent revision equals "0"
      {"1:0.9", "2.0", 1},         // epoch wins
      {"0:1.0", "1.0", 0},         // epoch 0 is the default
      {"2:1.0", "10:0.1", -1},     // epochs compare as numbers
      {"1.2-3-4", "1.2-3-5", -1},  // the revision is after the last '-'
      {"2.36-9+deb12u4", "2.36-9+deb12u10", -1},
      {"7.88.1-10+deb12u5", "7.88.1-10+deb12u8", -1},
      {"6.1.0-26-amd64", "6.1.0-9-amd64", 1},
      {"1.0.0~beta1+dfsg-1", "1.0.0+dfsg-1", -1},
      {"a", "b", -1},
      {"", "", 0},
      {"", "0", 0},
      {"1:", "1:0", 0},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(sign(compare_versions(c.a, c.b)), c.expected) << c.a << " vs " << c.b;
    EXPECT_EQ(sign(compare_versions(c.b, c.a)), -c.expected) << c.b << " vs " << c.a;
  }
}

TEST(CompareVersions, NeverCrashesOnOddBytes) {
  const char* odd[] = {":", "-", "::", "~", "1:~-~", "\xff\xfe", "99999999999999999999999:1", "0000"};
  for (const char* a : odd) {
    for (const char* b : odd) (void)compare_versions(a, b);
  }
  EXPECT_GT(compare_versions("99999999999999999999999:1", "1:1"), 0);
}

}  // namespace
}  // namespace guard::checks
