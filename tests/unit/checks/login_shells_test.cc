#include "checks/login_shells.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/unit/checks/fixture_root.h"
#include "tests/unit/checks/single_check_fixture.h"

namespace guard::checks {
namespace {

using namespace guard::testing;
using test::dump;
using test::find;
using test::run_on;

class LoginShellsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_ / "root";
    build_ = dir_ / "build";
    make_dirs(build_);
    make_base_root(root_);
    build_exe(root_ + "/usr/bin/bash", "int main(void) { return 0; }\n", {});
    build_exe(root_ + "/usr/bin/sync", "int main(void) { return 0; }\n", {});
    write_file(root_ + "/usr/sbin/nologin", "", 0755);
    write_file(root_ + "/etc/passwd",
               "root:x:0:0:root:/root:/bin/bash\n"
               "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
               "sync:x:4:65534:sync:/bin:/bin/sync\n"
               "games:x:5:60:games:/usr/games:/usr/sbin/nologin\n"
               "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
               "backup:x:34:34:backup:/var/backups:\n"
               "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n");
    write_file(root_ + "/etc/shadow", "root:$y$j9T$abc:19000:0:99999:7:::\ndaemon:*:19000::::::\nalice:!:19000::::::\n");
    write_file(root_ + "/etc/shells", "# /etc/shells: valid login shells\n/bin/sh\n/bin/bash\n/usr/bin/bash\n");
    make_symlink("bash", root_ + "/usr/bin/sh");
  }
  CheckOutput run() { return run_on(LoginShellsCheck(), root_); }
  void set_passwd_line(const std::string& line) {
    std::string text = read_file(root_ + "/etc/passwd");
    write_file(root_ + "/etc/passwd", text + line + "\n");
  }

  TempDir dir_;
  std::string root_;
  std::string build_;
};

TEST_F(LoginShellsTest, HealthyAccountsPass) {
  CheckOutput out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
  EXPECT_GE(out.items, 10u);
}

TEST_F(LoginShellsTest, MissingShellOfAUserBlocks) {
  set_passwd_line("bob:x:1001:1001:Bob:/home/bob:/usr/bin/zsh");
  CheckOutput out = run();
  const Finding* f = find(out, "/etc/passwd", Severity::block, "line 8: user bob: login shell /usr/bin/zsh is not installed");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->check, "login-shells");
  EXPECT_EQ(f->id, "shell:bob");
}

TEST_F(LoginShellsTest, RootsShellAndAPasswordAccountBlock) {
  std::string text = read_file(root_ + "/etc/passwd");
  text.replace(text.find("/root:/bin/bash"), 15, "/root:/usr/bin/zsh");
  write_file(root_ + "/etc/passwd", text + "svc:x:120:120::/srv:/usr/bin/fish\n");
  write_file(root_ + "/etc/shadow", read_file(root_ + "/etc/shadow") + "svc:$6$salt$hash:19000::::::\n");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/etc/passwd", Severity::block, "line 1: user root: login shell /usr/bin/zsh")) << dump(out);
  EXPECT_TRUE(find(out, "/etc/passwd", Severity::block, "line 8: user svc: login shell /usr/bin/fish")) << dump(out);
}

TEST_F(LoginShellsTest, SystemAccountWithoutPasswordOnlyWarns) {
  std::filesystem::remove(root_ + "/usr/bin/sync");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/etc/passwd", Severity::warn, "line 3: user sync: login shell /bin/sync is not installed"))
      << dump(out);
  EXPECT_EQ(test::count_at_least(out, Severity::block), 0u) << dump(out);
}

TEST_F(LoginShellsTest, UidMinFromLoginDefs) {
  write_file(root_ + "/etc/login.defs", "# comment\nUID_MIN\t\t\t 2000\n");
  set_passwd_line("old:x:1500:1500::/home/old:/usr/bin/zsh");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/etc/passwd", Severity::warn, "user old")) << dump(out);
}

TEST_F(LoginShellsTest, ScriptShellWithMissingInterpreterBlocks) {
  write_file(root_ + "/usr/local/bin/wrapsh", "#!/usr/bin/perl-gone -w\nexec bash\n", 0755);
  set_passwd_line("carol:x:1002:1002::/home/carol:/usr/local/bin/wrapsh");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/etc/passwd", Severity::block, "line 8: user carol: login shell /usr/local/bin/wrapsh is a "
                                                        "script whose interpreter /usr/bin/perl-gone does not exist"))
      << dump(out);
}

TEST_F(LoginShellsTest, ElfShellThatCannotLoadBlocks) {
  build_lib(build_ + "/libedit-x.so.1", "libedit-x.so.1", "int e(void) { return 0; }\n");
  build_exe(root_ + "/usr/bin/ksh", "int e(void); int main(void) { return e(); }\n", {build_ + "/libedit-x.so.1"});
  set_passwd_line("dave:x:1003:1003::/home/dave:/usr/bin/ksh");
  CheckOutput out = run();
  const Finding* f = find(out, "/etc/passwd", Severity::block, "line 8: user dave: login shell /usr/bin/ksh cannot start");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_NE(f->message.find("libedit-x.so.1"), std::string::npos) << f->message;
}

TEST_F(LoginShellsTest, MissingEtcShellsEntryWarns) {
  write_file(root_ + "/etc/shells", read_file(root_ + "/etc/shells") + "/usr/bin/zsh\n");
  CheckOutput out = run();
  const Finding* f = find(out, "/etc/shells", Severity::warn, "line 5: /usr/bin/zsh");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(test::count_at_least(out, Severity::block), 0u) << dump(out);
}

TEST_F(LoginShellsTest, FifosAreNotReadForever) {
  for (const char* f : {"/etc/shells", "/etc/shadow", "/etc/login.defs"}) {
    std::filesystem::remove(root_ + f);
    ASSERT_EQ(::mkfifo((root_ + f).c_str(), 0644), 0) << f;
  }
  CheckOutput out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

}  // namespace
}  // namespace guard::checks
