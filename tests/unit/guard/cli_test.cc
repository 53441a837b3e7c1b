// The CLI as a user meets it: the built binary, its exit codes and output.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/common/test_env.h"

namespace guard {
namespace {

using guard::testing::run_guard;
using guard::testing::TempDir;

TEST(CliTest, HelpDescribesEverySubcommandAndExitCodes) {
  auto r = run_guard({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word : {"check", "run", "gate", "audit", "snapshot", "rollback", "history", "recover",
                           "policy", "Exit codes", "rolled back"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word;
  }
  for (const char* sub : {"check", "policy", "history", "audit", "baseline"}) {
    auto h = run_guard({sub, "--help"});
    EXPECT_EQ(h.exit_code, 0) << sub;
    EXPECT_NE(h.out.find("Usage: upgrade-guard " + std::string(sub)), std::string::npos) << h.out;
  }
}

TEST(CliTest, UnknownOptionIsAUsageError) {
  auto r = run_guard({"check", "--no-such-option"});
  EXPECT_EQ(r.exit_code, 2);
  auto none = run_guard({});
  EXPECT_EQ(none.exit_code, 2);
}

TEST(CliTest, PolicyValidateNamesFileLineColumnAndKey) {
  TempDir dir;
  std::string bad = dir / "bad.toml";
  guard::testing::write_file(bad, "on_fail = \"rollback\"\n[checks.symlinks]\nseverity = \"high\"\n", 0644);
  auto r = run_guard({"policy", "validate", "--policy", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(bad + ":3:12: checks.symlinks.severity"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(bad + ":3:12: checks.symlinks.severity: unknown severity 'high' (expected off, info, warn or block): " + bad),
            0u + std::string::npos) << "the file is named once: " << r.err;

  std::string good = dir / "good.toml";
  guard::testing::write_file(good, "on_fail = \"warn\"\n", 0644);
  auto ok = run_guard({"policy", "validate", "--policy", good});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  auto show = run_guard({"policy", "show", "--policy", good});
  EXPECT_EQ(show.exit_code, 0);
  EXPECT_NE(show.out.find("on_fail = \"warn\"  # from " + good + ":1:11"), std::string::npos) << show.out;
}

TEST(CliTest, GroupWritablePolicyIsRefused) {
  TempDir dir;
  std::string file = dir / "policy.toml";
  guard::testing::write_file(file, "on_fail = \"warn\"\n", 0664);
  auto r = run_guard({"policy", "validate", "--policy", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("writable by group or other"), std::string::npos) << r.err;
}

TEST(CliTest, CheckOnAMissingRootIsAUsageError) {
  auto r = run_guard({"check", "--root", "/nonexistent-root-ug"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST(CliTest, CheckJsonHasSchemaOne) {
  TempDir root;
  guard::testing::make_dirs(root / "etc");
  TempDir state;
  auto r = run_guard({"check", "--root", root.path(), "--state-dir", state.path(), "--json", "--checks", "symlinks"});
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], 1);
  EXPECT_EQ(j["root"], root.path());
  EXPECT_TRUE(j["findings"].is_array());
}

}  // namespace
}  // namespace guard
