#include "policies/values.h"

#include <gtest/gtest.h>

namespace guard::policies {
namespace {

TEST(Values, DurationsReadBackAsTheyAreShown) {
  EXPECT_EQ(parse_duration("90s"), 90);
  EXPECT_EQ(parse_duration("5m"), 300);
  EXPECT_EQ(parse_duration("2d"), 2 * 86400);
  for (const char* bad : {"", "s", "5", "1h30m", "1.5h", "-5s", " 5s", "5 s", "5w", "99999999999999999999d"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
  for (std::int64_t s : {0, 1, 59, 60, 90, 3600, 5400, 86400, 93600}) {
    std::string shown = format_duration(std::chrono::seconds(s));
    EXPECT_EQ(parse_duration(shown), s) << shown;
  }
  EXPECT_EQ(format_duration(std::chrono::seconds(5400)), "90m");
}

TEST(Values, SizesReadBackAsTheyAreShown) {
  EXPECT_EQ(parse_size("4096B"), 4096u);
  EXPECT_EQ(parse_size("10G"), 10ULL << 30);
  EXPECT_EQ(parse_size("512MiB"), 512ULL << 20);
  for (const char* bad : {"", "B", "100MB", "1.5G", "1 GiB", "-1K", "16777216TiB", "99999999999999999999B"}) {
    EXPECT_FALSE(parse_size(bad).has_value()) << bad;
  }
  for (std::uint64_t n : {0ULL, 1000ULL, 3072ULL, 1ULL << 30, 100ULL << 20, 5ULL << 40}) {
    std::string shown = format_size(n);
    EXPECT_EQ(parse_size(shown), n) << shown;
  }
}

TEST(Values, PathsMustBeAbsoluteAndNormalized) {
  EXPECT_FALSE(path_problem("/", false));
  EXPECT_FALSE(path_problem("/usr/lib", false));
  EXPECT_FALSE(path_problem("/opt/vendor/", true));
  EXPECT_EQ(path_problem("/opt/vendor/", false), "'/opt/vendor/' ends with '/': write '/opt/vendor'");
  EXPECT_EQ(path_problem("usr", false), "'usr' is not an absolute path (it must start with '/')");
  for (const char* bad : {"//usr", "/usr//lib", "/./usr", "/usr/..", "/usr/../etc"}) {
    EXPECT_EQ(path_problem(bad, true),
              "'" + std::string(bad) + "' is not a normalized path (no '//', '.' or '..' components)");
  }
  EXPECT_EQ(path_problem(std::string("/a\0b", 4), false), std::string("'/a\0b' contains a NUL byte", 26));
}

TEST(Values, TomlStringsEscapeWhatTomlNeeds) {
  EXPECT_EQ(toml_string("plain"), "\"plain\"");
  EXPECT_EQ(toml_string("q\"b\\n\nt\t\x01"), "\"q\\\"b\\\\n\\nt\\t\\u0001\"");
  EXPECT_EQ(toml_strings({}), "[]");
  EXPECT_EQ(toml_strings({"/a", "/b"}), "[\"/a\", \"/b\"]");
  EXPECT_EQ(join({"", "a"}, ", "), ", a");
}

}  // namespace
}  // namespace guard::policies
