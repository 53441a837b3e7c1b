// The pre-check that keeps policy bytes away from toml++ 3.3.0's defects (policies/precheck.h).
#include "policies/precheck.h"

#include <gtest/gtest.h>

#include <string>

#include "policies/loader.h"

namespace guard::policies {
namespace {

// The message of the pre-check's refusal of `text`, or "" when it passes.
std::string refusal(const std::string& text) {
  auto r = precheck_policy_text(text, "p.toml");
  return r ? "" : r.error().message;
}

std::string dotted_key(std::size_t parts) {
  std::string key = "a";
  for (std::size_t i = 1; i < parts; ++i) key += ".a";
  return key;
}

TEST(PolicyPrecheckTest, AcceptsWhatAPolicyHolds) {
  const std::string policy =
      "\xEF\xBB\xBF# a comment with \xC3\xA9 and \xCC\x81\n"
      "on_fail = \"rollback\"  # \xC3\xBC\r\n"
      "[checks.symlinks]\n"
      "paths = [\n  \"/usr/bin\", # the binaries\n  '/opt/\xC3\xA9t\xC3\xA9',\n]\n"
      "ignore = [\"\"\"/srv/\"quoted\"\"\"\", '''/x\\y''']\n"
      "[[custom]]\nname = \"x\"\ncommand = [\"/bin/sh\", \"-c\", \"echo \\\"a # b\\\" [\"]\n"
      "\"quoted\".'key'.c = { a.b = 1, c = [[1], [2]], d = {} }\n"
      "text = \"\"\"\nline \\\n   continued \xC3\xA9\n\"\"\"\n";
  EXPECT_EQ(refusal(policy), "");
  EXPECT_EQ(refusal(dotted_key(kMaxPolicyKeyParts) + " = 1\n"), "");
  EXPECT_EQ(refusal("[" + dotted_key(kMaxPolicyKeyParts) + "]\n"), "");
  EXPECT_EQ(refusal("a = " + std::string(kMaxPolicyNesting, '[') + std::string(kMaxPolicyNesting, ']') + "\n"), "");
}

TEST(PolicyPrecheckTest, RefusesTheDottedKeyThatOverflowsTomlppsStack) {
  EXPECT_EQ(refusal(dotted_key(40000) + " = 1\n"),
            "p.toml:1:33: a key with more than 16 dotted parts: the policy's keys have at most 4");
  EXPECT_EQ(refusal("x = 1\n[" + dotted_key(kMaxPolicyKeyParts + 1) + "]\n"),
            "p.toml:2:34: a key with more than 16 dotted parts: the policy's keys have at most 4");
  EXPECT_NE(refusal("[[\"a\" . 'b'" + std::string(".\"c\"") + dotted_key(20).substr(1) + "]]\n"), "");
  EXPECT_NE(refusal("t = { " + dotted_key(17) + " = 1 }\n"), "");
  EXPECT_NE(refusal("t = [{ x = 1 }, { " + dotted_key(17) + " = 1 }]\n"), "");
  // Dots in values and strings are not keys.
  EXPECT_EQ(refusal("a = \"" + dotted_key(100) + "\"\nb = '" + dotted_key(100) + "'\n"), "");
}

TEST(PolicyPrecheckTest, RefusesDeepNesting) {
  EXPECT_EQ(refusal("a = " + std::string(100000, '[') + std::string(100000, ']') + "\n"),
            "p.toml:1:13: arrays and inline tables nested more than 8 deep");
  EXPECT_NE(refusal("a = [\n" + std::string(9, '[') + "\n"), "");  // over lines
  std::string inline_tables = "a = ";
  for (int i = 0; i < 20; ++i) inline_tables += "{b = ";
  EXPECT_NE(refusal(inline_tables + "1" + std::string(20, '}') + "\n"), "");
}

TEST(PolicyPrecheckTest, RefusesTheCharactersTomlppCrashesOn) {
  // U+0301 (a combining accent) at a line's start: toml++ reached __builtin_unreachable.
  EXPECT_EQ(refusal("a = 1\n\xCC\x81 = 1\n"),
            "p.toml:2:1: character U+0301 outside a string or comment: TOML allows only ASCII there");
  EXPECT_NE(refusal("a = 1 \xC3\xA9\n"), "");
  EXPECT_NE(refusal("\xC3\xA9t\xC3\xA9 = 1\n"), "");
  // After a backslash in a multi-line basic string, and after a line-ending backslash.
  EXPECT_EQ(refusal("a = \"\"\"x\\\xCC\x81\"\"\"\n"),
            "p.toml:1:10: character U+0301 after a backslash in a multi-line string");
  EXPECT_NE(refusal("a = \"\"\"x \\\n  \n  \xCC\x81\"\"\"\n"), "");
  EXPECT_NE(refusal("a = \"\"\"x \\  \xC2\xA1\"\"\"\n"), "");
  // In a single-line string and a multi-line literal string it is only text.
  EXPECT_EQ(refusal("a = \"\\\xCC\x81\"\nb = '''\\\xCC\x81'''\n"), "");
}

TEST(PolicyPrecheckTest, RefusesControlCharactersAndInvalidUtf8) {
  EXPECT_EQ(refusal("a = \"\x1b[2J\"\n"), "p.toml:1:6: control character U+001B: write it escaped in a string (\\u001B)");
  EXPECT_NE(refusal("# \x7f\n"), "");
  EXPECT_NE(refusal("a = \"\xC2\x9B\"\n"), "");  // C1: CSI
  EXPECT_NE(refusal("a = 1\rb = 2\n"), "");
  EXPECT_NE(refusal(std::string("a = \"\0\"\n", 8)), "");
  EXPECT_EQ(refusal("a = \"\xff\"\n"), "p.toml:1:6: byte 0xFF is not valid UTF-8");
  EXPECT_NE(refusal("a = \"\xC0\xAF\"\n"), "");          // overlong '/'
  EXPECT_NE(refusal("a = \"\xED\xA0\x80\"\n"), "");      // a surrogate
  EXPECT_NE(refusal("a = \"\xF4\x90\x80\x80\"\n"), "");  // above U+10FFFF
  EXPECT_NE(refusal("# \xE2\x82"), "");                  // truncated at the end
}

TEST(PolicyPrecheckTest, RefusesLongLinesAndLargeFiles) {
  EXPECT_EQ(refusal("# " + std::string(kMaxPolicyLineBytes - 2, 'x') + "\n"), "");
  EXPECT_EQ(refusal("# " + std::string(kMaxPolicyLineBytes, 'x') + "\n"),
            "p.toml:1:16385: the line is longer than 16384 bytes");
  std::string large;
  while (large.size() <= kMaxPolicyBytes) large += "# " + std::string(100, 'x') + "\n";
  EXPECT_NE(refusal(large).find("the file is larger than 1 MiB"), std::string::npos);
}

// The loader runs the pre-check before toml++ and keeps the policy unchanged.
TEST(PolicyPrecheckTest, ApplyPolicyTomlRefusesBeforeParsing) {
  Policy p = default_policy();
  auto r = apply_policy_toml(p, "on_fail = \"warn\"\n" + dotted_key(40000) + " = 1\n", "/etc/upgrade-guard/policy.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what, "policy");
  EXPECT_EQ(r.error().path, "/etc/upgrade-guard/policy.toml");
  EXPECT_EQ(r.error().message.rfind("/etc/upgrade-guard/policy.toml:2:33: ", 0), 0u) << r.error().message;
  EXPECT_EQ(p.on_fail, default_policy().on_fail);
}

}  // namespace
}  // namespace guard::policies
