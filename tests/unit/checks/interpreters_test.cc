#include "checks/interpreters.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/common/test_env.h"
#include "tests/unit/checks/single_check_fixture.h"

namespace guard::checks {
namespace {

using guard::testing::make_symlink;
using guard::testing::TempDir;
using guard::testing::write_file;
using test::dump;
using test::find;
using test::run_on;

TEST(ParseShebang, LikeTheKernel) {
  Shebang s = parse_shebang("#! /usr/bin/env  python3 -u \nprint(1)\n");
  EXPECT_TRUE(s.script);
  EXPECT_EQ(s.interpreter, "/usr/bin/env");
  EXPECT_EQ(s.arg, "python3 -u");
  EXPECT_FALSE(parse_shebang("\x7f" "ELF").script);
  EXPECT_FALSE(parse_shebang("").script);
  s = parse_shebang("#!/bin/sh");
  EXPECT_EQ(s.interpreter, "/bin/sh");
  EXPECT_EQ(s.arg, "");
  // Only the first 256 bytes count.
  s = parse_shebang("#!/bin/" + std::string(300, 'x'));
  EXPECT_EQ(s.interpreter.size(), 254u);
}

class InterpretersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    make_symlink("usr/bin", dir_ / "bin");
    make_symlink("usr/sbin", dir_ / "sbin");
    make_symlink("usr/lib", dir_ / "lib");
    write_file(dir_ / "usr/lib/systemd/systemd", "", 0755);
    write_file(dir_ / "usr/bin/dash", "\x7f" "ELF", 0755);
    make_symlink("dash", dir_ / "usr/bin/sh");
    write_file(dir_ / "usr/bin/env", "\x7f" "ELF", 0755);
    write_file(dir_ / "usr/bin/perl", "\x7f" "ELF", 0755);
    write_file(dir_ / "usr/sbin/mydaemon", "#!/usr/bin/perl -w\nprint 1;\n", 0755);
    write_file(unit("my.service"), "[Unit]\nDescription=x\n\n[Service]\nType=simple\nExecStartPre=-/bin/true\n"
                                   "ExecStart=/usr/sbin/mydaemon --foreground\n[Install]\nWantedBy=multi-user.target\n");
    make_symlink("/lib/systemd/system/my.service", dir_ / "etc/systemd/system/multi-user.target.wants/my.service");
    write_file(dir_ / "var/lib/dpkg/status",
               "Package: ok-pkg\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n\n"
               "Package: pending\nStatus: install ok half-configured\nArchitecture: all\nVersion: 1\n\n");
    write_file(dir_ / "var/lib/dpkg/info/ok-pkg.postinst", "#!/usr/bin/gone-but-not-run\n", 0755);
    write_file(dir_ / "var/lib/dpkg/info/pending.postinst", "#!/bin/sh\nset -e\n", 0755);
  }
  std::string unit(const std::string& name) const { return dir_ / ("usr/lib/systemd/system/" + name); }
  CheckOutput run() { return run_on(InterpretersCheck(), dir_.path()); }
  TempDir dir_;
};

TEST_F(InterpretersTest, HealthyRootPasses) {
  CheckOutput out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
  EXPECT_GE(out.items, 3u);
}

TEST_F(InterpretersTest, UnitScriptWithMissingInterpreterBlocks) {
  write_file(dir_ / "usr/sbin/mydaemon", "#!/usr/bin/perl-missing -w\nprint 1;\n", 0755);
  CheckOutput out = run();
  const Finding* f = find(out, "/usr/sbin/mydaemon", Severity::block, "line 1: interpreter /usr/bin/perl-missing does not exist");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->check, "interpreters");
  EXPECT_NE(f->message.find("(named by /lib/systemd/system/my.service line 7: ExecStart= of the enabled unit my.service"),
            std::string::npos)
      << f->message;
  EXPECT_EQ(f->id, "interpreter:/usr/bin/perl-missing");
}

TEST_F(InterpretersTest, EnvNameIsSearchedInPath) {
  write_file(dir_ / "usr/sbin/mydaemon", "#!/usr/bin/env python3\nprint(1)\n", 0755);
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/usr/sbin/mydaemon", Severity::block, "line 1: interpreter python3 is not found in PATH"))
      << dump(out);
  write_file(dir_ / "usr/bin/python3", "\x7f" "ELF", 0755);
  out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

TEST_F(InterpretersTest, DropInExecStartIsWhatCounts) {
  write_file(dir_ / "usr/sbin/other", "#!/usr/bin/ruby-gone\n", 0755);
  write_file(dir_ / "etc/systemd/system/my.service.d/override.conf", "[Service]\nExecStart=\nExecStart=/usr/sbin/other\n");
  CheckOutput out = run();
  const Finding* f = find(out, "/usr/sbin/other", Severity::block, "/etc/systemd/system/my.service.d/override.conf line 3");
  ASSERT_TRUE(f) << dump(out);
}

TEST_F(InterpretersTest, PendingMaintainerScriptBlocksOthersAreNotRead) {
  write_file(dir_ / "var/lib/dpkg/info/pending.postinst", "#!/usr/bin/python3.11\n", 0755);
  CheckOutput out = run();
  const Finding* f = find(out, "/var/lib/dpkg/info/pending.postinst", Severity::block,
                          "line 1: interpreter /usr/bin/python3.11 does not exist");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_NE(f->message.find("/var/lib/dpkg/status line 6: package pending is half-configured"), std::string::npos)
      << f->message;
  EXPECT_FALSE(find(out, "/var/lib/dpkg/info/ok-pkg.postinst", Severity::info)) << dump(out);
}

TEST_F(InterpretersTest, CriticalProgramScript) {
  write_file(dir_ / "usr/bin/dpkg", "#!/usr/bin/perl-old\n", 0755);
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/usr/bin/dpkg", Severity::block, "critical programs")) << dump(out);
}

TEST_F(InterpretersTest, AptHookScripts) {
  write_file(dir_ / "usr/local/bin/refresh", "#!/usr/bin/python2\n", 0755);
  write_file(dir_ / "usr/local/bin/maybe", "#!/usr/bin/python2\n", 0755);
  write_file(dir_ / "etc/apt/apt.conf.d/60mine",
             "APT::Update::Post-Invoke {\n \"refresh --now\";\n};\nDPkg::Post-Invoke { \"maybe || true\"; };\n");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/usr/local/bin/refresh", Severity::block,
                   "(named by /etc/apt/apt.conf.d/60mine line 2: APT::Update::Post-Invoke)"))
      << dump(out);
  EXPECT_TRUE(find(out, "/usr/local/bin/maybe", Severity::info, "interpreter /usr/bin/python2")) << dump(out);
}

TEST_F(InterpretersTest, ScriptChainsAreFollowedAndBounded) {
  write_file(dir_ / "usr/bin/i1", "#!/usr/bin/i2\n", 0755);
  write_file(dir_ / "usr/bin/i2", "#!/usr/bin/i3\n", 0755);
  write_file(dir_ / "usr/sbin/mydaemon", "#!/usr/bin/i1\n", 0755);
  write_file(dir_ / "usr/bin/i3", "#!/usr/bin/nothing\n", 0755);
  CheckOutput out = run();
  const Finding* f = find(out, "/usr/bin/i3", Severity::block, "interpreter /usr/bin/nothing does not exist");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_NE(f->message.find("the interpreter of /usr/sbin/mydaemon"), std::string::npos) << f->message;
  // A loop of scripts ends after 4 levels.
  write_file(dir_ / "usr/bin/i3", "#!/usr/bin/i1\n", 0755);
  out = run();
  EXPECT_TRUE(find(out, "/usr/bin/i1", Severity::block, "more than 4 levels deep")) << dump(out);
}

TEST_F(InterpretersTest, FifoDoesNotHang) {
  std::filesystem::remove(dir_ / "usr/sbin/mydaemon");
  ASSERT_EQ(::mkfifo((dir_ / "usr/sbin/mydaemon").c_str(), 0755), 0);
  CheckOutput out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

}  // namespace
}  // namespace guard::checks
