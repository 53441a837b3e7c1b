#include "base/strings.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace guard::base {
namespace {

TEST(StringsTest, TrimSplit) {
  EXPECT_EQ(trim("  a b \r\n"), "a b");
  EXPECT_EQ(trim("   "), "");
  EXPECT_EQ(split("a,,b", ','), (std::vector<std::string_view>{"a", "", "b"}));
  EXPECT_EQ(split_ws(" a  b\tc "), (std::vector<std::string_view>{"a", "b", "c"}));
  EXPECT_EQ(line_of("a\nb\nc", 4), 3u);
  EXPECT_EQ(human_bytes(512), "512.0 B");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(3ULL << 30), "3.0 GiB");
}

TEST(StringsTest, JoinPutsTheSeparatorBetweenEachTwoItems) {
  EXPECT_EQ(join({}, ", "), "");
  EXPECT_EQ(join({"apt-get"}, " "), "apt-get");
  EXPECT_EQ(join({"apt-get", "dist-upgrade", "-y"}, " "), "apt-get dist-upgrade -y");
  // Empty items keep their place: nothing is dropped or merged.
  EXPECT_EQ(join({"", "b"}, ","), ",b");
  EXPECT_EQ(join({"a", "", "b"}, ", "), "a, , b");
  EXPECT_EQ(join({"a", "b"}, ""), "ab");
  EXPECT_EQ(join({"x", "y"}, " or "), "x or y");
}

TEST(ErrorTest, ToStringNamesPathAndCall) {
  Error e{"openat2", "/etc/fstab", ENOENT, "cannot read the fstab"};
  EXPECT_EQ(e.to_string(), "cannot read the fstab: /etc/fstab: openat2: No such file or directory");
  Error plain{"policy", "/etc/upgrade-guard/policy.toml", 0, "bad value"};
  EXPECT_EQ(plain.to_string(), "bad value: /etc/upgrade-guard/policy.toml");
}

TEST(StringsTest, EscapeControlKeepsTextAndEscapesWhatATerminalActsOn) {
  EXPECT_EQ(escape_control("caf\xC3\xA9 /usr/bin\tx\n\\"), "caf\xC3\xA9 /usr/bin\tx\n\\");
  EXPECT_EQ(escape_control("a\x1b[2Jb\x7f\r"), "a\\x1b[2Jb\\x7f\\x0d");
  EXPECT_EQ(escape_control("\xC2\x9B" "1m"), "\\xc2\\x9b1m");          // C1 CSI
  EXPECT_EQ(escape_control("\xff\xC0\xAF\xE2\x82"), "\\xff\\xc0\\xaf\\xe2\\x82");  // not UTF-8
  EXPECT_EQ(escape_control(std::string("a\0b", 3)), "a\\x00b");
}

}  // namespace
}  // namespace guard::base
