#include "checks/services.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/common/test_env.h"
#include "tests/unit/checks/single_check_fixture.h"

namespace guard::checks {
namespace {

using guard::testing::make_symlink;
using guard::testing::TempDir;
using guard::testing::write_file;
using test::count_at_least;
using test::dump;
using test::find;
using test::run_on;

TEST(ExecBinary, StripsPrefixesAndSkipsVariables) {
  EXPECT_EQ(exec_binary("/usr/sbin/sshd -D $SSHD_OPTS"), "/usr/sbin/sshd");
  EXPECT_EQ(exec_binary("-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM"), "/sbin/agetty");
  EXPECT_EQ(exec_binary("@/usr/lib/x/daemon daemon-name --flag"), "/usr/lib/x/daemon");
  EXPECT_EQ(exec_binary("+-:/usr/bin/tool"), "/usr/bin/tool");
  EXPECT_EQ(exec_binary("!!/usr/bin/priv"), "/usr/bin/priv");
  EXPECT_EQ(exec_binary("\"/opt/my app/bin/run\" --x"), "/opt/my app/bin/run");
  EXPECT_EQ(exec_binary("true"), "true");
  EXPECT_FALSE(exec_binary("$DAEMON $ARGS"));
  EXPECT_FALSE(exec_binary("-${BIN}"));
  EXPECT_FALSE(exec_binary("/usr/lib/%i/run"));
  EXPECT_FALSE(exec_binary(""));
  EXPECT_EQ(exec_binary("/usr/bin/100%%"), "/usr/bin/100%");
}

class ServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    make_symlink("usr/lib", dir_ / "lib");
    make_symlink("usr/sbin", dir_ / "sbin");
    write_file(dir_ / "usr/lib/systemd/systemd", "", 0755);
    write_file(dir_ / "usr/sbin/sshd", "", 0755);
    write_file(dir_ / "usr/sbin/agetty", "", 0755);
    write_file(dir_ / "usr/bin/true", "", 0755);
    write_file(
        unit("ssh.service"),
        "[Unit]\nDescription=OpenBSD Secure Shell server\nConditionPathExists=!/etc/ssh/sshd_not_to_be_run\n"
        "[Service]\nExecStartPre=/usr/sbin/sshd -t\nExecStart=/usr/sbin/sshd -D $SSHD_OPTS\n"
        "ExecReload=/usr/sbin/sshd -t\nExecReload=/bin/kill -HUP $MAINPID\n[Install]\nWantedBy=multi-user.target\n");
    write_file(unit("getty@.service"),
               "[Service]\nExecStart=-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM\nType=idle\n");
    write_file(unit("graphical.target"), "[Unit]\nDescription=Graphical Interface\n");
    make_symlink("graphical.target", unit("default.target"));
    make_symlink("/lib/systemd/system/ssh.service", dir_ / "etc/systemd/system/multi-user.target.wants/ssh.service");
    make_symlink("/lib/systemd/system/getty@.service",
                 dir_ / "etc/systemd/system/getty.target.wants/getty@tty1.service");
    make_symlink("/lib/systemd/system/ssh.service", dir_ / "etc/systemd/system/sshd.service");
  }
  std::string unit(const std::string& name) const { return dir_ / ("usr/lib/systemd/system/" + name); }
  CheckOutput run() { return run_on(ServicesCheck(), dir_.path()); }
  TempDir dir_;
};

TEST_F(ServicesTest, HealthyRootHasNoFinding) {
  CheckOutput out = run();
  EXPECT_TRUE(out.skipped.empty());
  EXPECT_TRUE(out.findings.empty()) << dump(out);
  EXPECT_GE(out.items, 5U);
}

TEST_F(ServicesTest, DanglingWantsLinkBlocks) {
  std::string link = "/etc/systemd/system/multi-user.target.wants/gone.service";
  make_symlink("/lib/systemd/system/gone.service", dir_ / link);
  make_symlink("/lib/systemd/system/gone.socket", dir_ / "etc/systemd/system/sockets.target.requires/gone.socket");
  CheckOutput out = run();
  const Finding* f = find(out, link, Severity::block, "/lib/systemd/system/gone.service");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_NE(f->hint.find("disable gone.service"), std::string::npos);
  EXPECT_TRUE(find(out, "/etc/systemd/system/sockets.target.requires/gone.socket", Severity::block)) << dump(out);
  // A dangling alias directly in /etc/systemd/system only warns.
  std::filesystem::remove(dir_ / link);
  make_symlink("/lib/systemd/system/nothing.service", dir_ / "etc/systemd/system/syslog.service");
  out = run();
  EXPECT_TRUE(find(out, "/etc/systemd/system/syslog.service", Severity::warn)) << dump(out);
}

TEST_F(ServicesTest, MissingExecStartBinaryBlocks) {
  std::filesystem::remove(dir_ / "usr/sbin/sshd");
  CheckOutput out = run();
  const Finding* f = find(out, "/lib/systemd/system/ssh.service", Severity::block, "/usr/sbin/sshd");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_NE(f->message.find("ssh.service"), std::string::npos);
  EXPECT_EQ(f->id, "exec:/usr/sbin/sshd");
  EXPECT_EQ(count_at_least(out, Severity::warn), 1U) << dump(out);  // reported once, not per Exec line
}

TEST_F(ServicesTest, NotExecutableBlocks) {
  write_file(dir_ / "usr/sbin/sshd", "", 0644);
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/lib/systemd/system/ssh.service", Severity::block, "not an executable")) << dump(out);
}

TEST_F(ServicesTest, TemplateInstanceUsesTheTemplate) {
  std::filesystem::remove(dir_ / "usr/sbin/agetty");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/lib/systemd/system/getty@.service", Severity::block, "getty@tty1.service")) << dump(out);
}

TEST_F(ServicesTest, MaskedUnitsAreFine) {
  make_symlink("/dev/null", dir_ / "etc/systemd/system/multi-user.target.wants/masked.service");
  std::filesystem::remove(dir_ / "usr/sbin/sshd");
  make_symlink("/dev/null", dir_ / "etc/systemd/system/ssh.service");
  CheckOutput out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

TEST_F(ServicesTest, DropInResetReplacesExecStart) {
  write_file(dir_ / "etc/systemd/system/ssh.service.d/override.conf",
             "[Service]\nExecStart=\nExecStart=/usr/local/sbin/mysshd -D\n");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/lib/systemd/system/ssh.service", Severity::block, "/usr/local/sbin/mysshd")) << dump(out);
  EXPECT_EQ(count_at_least(out, Severity::warn), 1U) << dump(out);
  // The drop-in's binary is there and the original one is gone: the reset makes that fine.
  write_file(dir_ / "usr/local/sbin/mysshd", "", 0755);
  write_file(dir_ / "etc/systemd/system/ssh.service.d/override.conf",
             "[Service]\nExecStartPre=\nExecStart=\nExecStart=/usr/local/sbin/mysshd -D\n");
  std::filesystem::remove(dir_ / "usr/sbin/sshd");
  out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

TEST_F(ServicesTest, ConditionsThatFailMeanTheUnitDoesNotRun) {
  std::filesystem::remove(dir_ / "usr/sbin/sshd");
  write_file(dir_ / "etc/ssh/sshd_not_to_be_run", "");
  CheckOutput out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

TEST_F(ServicesTest, DefaultTargetMustResolve) {
  make_symlink("/lib/systemd/system/nowhere.target", dir_ / "etc/systemd/system/default.target");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/etc/systemd/system/default.target", Severity::block, "nowhere.target")) << dump(out);
  make_symlink("/dev/null", dir_ / "etc/systemd/system/default.target");
  out = run();
  EXPECT_TRUE(find(out, "/etc/systemd/system/default.target", Severity::block, "masked")) << dump(out);
}

TEST(ServicesNoSystemd, IsSkipped) {
  TempDir dir;
  write_file(dir / "sbin/init", "", 0755);
  CheckOutput out = run_on(ServicesCheck(), dir.path());
  EXPECT_FALSE(out.skipped.empty());
  EXPECT_TRUE(out.findings.empty());
}

}  // namespace
}  // namespace guard::checks
