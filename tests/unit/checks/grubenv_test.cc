#include "checks/grubenv.h"

#include <gtest/gtest.h>

namespace guard::checks {
namespace {

std::string block(const std::string& vars) {
  std::string b = std::string(kGrubEnvHeader) + vars;
  b.resize(kGrubEnvSize, '#');
  return b;
}

TEST(GrubEnv, ReadsVariables) {
  auto env =
      parse_grubenv(block("saved_entry=gnulinux-advanced-x>gnulinux-6.1.0-13-amd64-advanced-x\nboot_success=1\n"));
  ASSERT_TRUE(env) << env.error().to_string();
  EXPECT_EQ(env->get("saved_entry"), "gnulinux-advanced-x>gnulinux-6.1.0-13-amd64-advanced-x");
  EXPECT_EQ(env->get("boot_success"), "1");
  EXPECT_FALSE(env->get("next_entry"));
}

TEST(GrubEnv, RefusesABlockWithoutHeader) {
  EXPECT_FALSE(parse_grubenv("saved_entry=0\n"));
  EXPECT_FALSE(parse_grubenv(""));
}

TEST(GrubEnv, WritesExactly1024BytesAndReadsBack) {
  auto env = parse_grubenv(block("saved_entry=0\n"));
  ASSERT_TRUE(env);
  env->set("next_entry", "Advanced options>Debian, with Linux 6.1\\x");
  env->set("boot_success", "0");
  env->set("saved_entry", "1");
  auto bytes = render_grubenv(*env);
  ASSERT_TRUE(bytes) << bytes.error().to_string();
  EXPECT_EQ(bytes->size(), 1024U);
  EXPECT_EQ(bytes->substr(0, kGrubEnvHeader.size()), kGrubEnvHeader);
  EXPECT_EQ(bytes->back(), '#');
  EXPECT_NE(bytes->find("saved_entry=1\nnext_entry=Advanced options>Debian, with Linux 6.1\\\\x\n"), std::string::npos);
  auto again = parse_grubenv(*bytes);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->get("next_entry"), "Advanced options>Debian, with Linux 6.1\\x");
  EXPECT_EQ(again->vars(), env->vars());
  EXPECT_TRUE(again->erase("next_entry"));
  EXPECT_FALSE(again->erase("next_entry"));
}

TEST(GrubEnv, NewlinesInValuesAreEscaped) {
  GrubEnv env;
  env.set("note", "a\nb");
  auto bytes = render_grubenv(env);
  ASSERT_TRUE(bytes);
  EXPECT_NE(bytes->find("note=a\\nb\n"), std::string::npos);
  EXPECT_EQ(parse_grubenv(*bytes)->get("note"), "a\nb");
}

TEST(GrubEnv, RefusesWhatDoesNotFit) {
  GrubEnv env;
  env.set("next_entry", std::string(1024 - kGrubEnvHeader.size() - 11, 'x'));  // 1 byte too many
  auto bytes = render_grubenv(env);
  ASSERT_FALSE(bytes);
  EXPECT_NE(bytes.error().message.find("1024"), std::string::npos);
  env.set("next_entry", std::string(1024 - kGrubEnvHeader.size() - 12, 'x'));  // exactly full
  auto full = render_grubenv(env);
  ASSERT_TRUE(full) << full.error().to_string();
  EXPECT_EQ(full->size(), 1024U);
  EXPECT_EQ(full->back(), '\n');
}

}  // namespace
}  // namespace guard::checks
