#include "checks/system_checks.h"

#include <gtest/gtest.h>
#include <sys/time.h>

#include "tests/common/test_env.h"

namespace guard::checks {
namespace {

using guard::testing::TempDir;

// Records every command and answers with a scripted exit code.
class FakeRunner : public base::CommandRunner {
 public:
  base::Result<base::ProcessResult> run(const base::Command& command) override {
    commands.push_back(command);
    base::ProcessResult r;
    r.exit_code = exit_code;
    r.err = err;
    return r;
  }
  std::vector<base::Command> commands;
  int exit_code = 0;
  std::string err;
};

struct Fixture {
  TempDir dir;
  policies::Policy policy;
  FakeRunner runner;
  std::optional<base::Root> root;
  Fixture() {
    guard::testing::make_dirs(dir / "etc");
    root.emplace(std::move(*base::Root::open(dir.path())));
  }
  CheckContext ctx() { return CheckContext{*root, policy, {}, &runner, false, {}, {}, {}}; }
};

TEST(CustomCheckTest, RunsEachCommandChrootedAndReportsFailures) {
  Fixture fx;
  fx.policy.custom.push_back({"nginx-config", {"/usr/sbin/nginx", "-t"}, std::chrono::seconds(5), Severity::block});
  fx.policy.custom.push_back({"advisory", {"/usr/local/bin/x"}, std::chrono::seconds(7), Severity::warn});
  fx.runner.exit_code = 1;
  fx.runner.err = "line one\nnginx: [emerg] unknown directive\n";
  auto out = CustomCheck().run(fx.ctx());
  ASSERT_TRUE(out);
  ASSERT_EQ(fx.runner.commands.size(), 2u);
  EXPECT_EQ(fx.runner.commands[0].argv, (std::vector<std::string>{"/usr/sbin/nginx", "-t"}));
  EXPECT_EQ(fx.runner.commands[0].chroot.value_or(""), fx.root->host_path("/"));
  EXPECT_EQ(fx.runner.commands[0].timeout, std::chrono::seconds(5));
  ASSERT_EQ(out->findings.size(), 2u);
  EXPECT_EQ(out->findings[0].severity, Severity::block);
  EXPECT_EQ(out->findings[0].id, "nginx-config");
  EXPECT_NE(out->findings[0].message.find("unknown directive"), std::string::npos) << out->findings[0].message;
  EXPECT_EQ(out->findings[1].severity, Severity::warn);
}

TEST(CustomCheckTest, PassingCommandsGiveNoFinding) {
  Fixture fx;
  fx.policy.custom.push_back({"ok", {"/bin/true"}, std::chrono::seconds(5), Severity::block});
  auto out = CustomCheck().run(fx.ctx());
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->findings.empty());
  EXPECT_EQ(out->items, 1u);
}

TEST(BackupCheckTest, SkippedUnlessConfigured) {
  Fixture fx;
  auto out = BackupCheck().run(fx.ctx());
  ASSERT_TRUE(out);
  EXPECT_FALSE(out->skipped.empty());
}

TEST(BackupCheckTest, StaleMarkerBlocksFreshPasses) {
  Fixture fx;
  fx.policy.backup.max_age = std::chrono::hours(26);
  fx.policy.backup.marker = "/var/backups/last-ok";
  std::string marker = fx.dir / "var/backups/last-ok";
  guard::testing::write_file(marker, "");
  auto fresh = BackupCheck().run(fx.ctx());
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(fresh->findings.empty());

  struct timeval old[2] = {{::time(nullptr) - 3 * 86400, 0}, {::time(nullptr) - 3 * 86400, 0}};
  ASSERT_EQ(::utimes(marker.c_str(), old), 0);
  auto stale = BackupCheck().run(fx.ctx());
  ASSERT_TRUE(stale);
  ASSERT_EQ(stale->findings.size(), 1u);
  EXPECT_EQ(stale->findings[0].severity, Severity::block);
  EXPECT_NE(stale->findings[0].message.find("72 hours old"), std::string::npos) << stale->findings[0].message;

  ::unlink(marker.c_str());
  auto missing = BackupCheck().run(fx.ctx());
  ASSERT_TRUE(missing);
  ASSERT_EQ(missing->findings.size(), 1u);
}

TEST(BackupCheckTest, FailingCommandBlocks) {
  Fixture fx;
  fx.policy.backup.max_age = std::chrono::hours(26);
  fx.policy.backup.command = {"/usr/local/bin/backup-fresh"};
  fx.runner.exit_code = 2;
  auto out = BackupCheck().run(fx.ctx());
  ASSERT_TRUE(out);
  ASSERT_EQ(out->findings.size(), 1u);
  EXPECT_NE(out->findings[0].message.find("exited with status 2"), std::string::npos);
}

TEST(SpaceCheckTest, WarnsBelowThePolicyMinimum) {
  Fixture fx;
  fx.policy.preflight.min_free_root = ~0ULL;  // more than any disk has
  auto out = SpaceCheck().run(fx.ctx());
  ASSERT_TRUE(out);
  ASSERT_EQ(out->findings.size(), 1u);
  EXPECT_EQ(out->findings[0].severity, Severity::warn);
  EXPECT_EQ(out->findings[0].path, "/");
  fx.policy.preflight.min_free_root = 1;
  auto ok = SpaceCheck().run(fx.ctx());
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->findings.empty());
}

TEST(FilesystemCheckTest, WritableRootPasses) {
  Fixture fx;
  auto out = FilesystemCheck().run(fx.ctx());
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->findings.empty());
}

}  // namespace
}  // namespace guard::checks
