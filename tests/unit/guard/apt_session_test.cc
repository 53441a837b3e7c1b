#include "guard/run/apt_session.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/test_env.h"

namespace guard::run {
namespace {

using guard::testing::TempDir;

TEST(AptSession, DescribesALiveProcessWithItsCommandLineAndStartTime) {
  auto self = describe_process(::getpid());
  ASSERT_TRUE(self) << self.error().to_string();
  EXPECT_EQ(self->pid, ::getpid());
  EXPECT_GT(self->start_ticks, 0u);
  ASSERT_FALSE(self->command.empty());
  EXPECT_NE(self->command[0].find("unit_guard"), std::string::npos) << self->command[0];
  EXPECT_TRUE(same_process_running(*self));
  AptProcess reused = *self;
  reused.start_ticks += 1;  // the same pid, started at another time: another process
  EXPECT_FALSE(same_process_running(reused));
}

TEST(AptSession, AGoneProcessIsAnError) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);
  auto gone = describe_process(child);
  EXPECT_FALSE(gone);
}

TEST(AptSession, SessionFileRoundTripsOnlyForItsAptProcessAndRootAndACorruptOneIsIgnored) {
  TempDir tmp;
  std::string run_dir = tmp / "run";
  AptProcess apt{4242, 918273, {"apt-get", "install", "./x.deb"}};
  EXPECT_FALSE(read_hook_session(run_dir, "/", apt));
  ASSERT_TRUE(write_hook_session(run_dir, HookSession{apt, 12, "/"}));
  auto back = read_hook_session(run_dir, "/", apt);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->apt.pid, 4242);
  EXPECT_EQ(back->apt.start_ticks, 918273u);
  EXPECT_EQ(back->run_id, 12);
  EXPECT_EQ(back->root, "/");
  AptProcess reused = apt;
  reused.start_ticks += 1;  // the pid reused by another process
  EXPECT_FALSE(read_hook_session(run_dir, "/", reused));
  EXPECT_FALSE(read_hook_session(run_dir, "/srv/chroot", apt));
  guard::testing::write_file(run_dir + "/hook-session", "{\"apt_pid\": \"x\"");
  EXPECT_FALSE(read_hook_session(run_dir, "/", apt));
  guard::testing::write_file(run_dir + "/hook-session", "{\"apt_pid\": 1}");
  EXPECT_FALSE(read_hook_session(run_dir, "/", apt));
}

// Outside apt (no lock-frontend holder in a fresh root), the hook's grandparent is taken:
// this test process's parent.
TEST(AptSession, WithoutADpkgLockHolderTheGrandparentIsApt) {
  TempDir tmp;
  guard::testing::make_dirs(tmp / "var/lib/dpkg");
  auto root = base::Root::open(tmp.path());
  ASSERT_TRUE(root);
  auto apt = find_apt_process(*root);
  ASSERT_TRUE(apt) << apt.error().to_string();
  // The grandparent from /proc/PPID/status, read another way than the product reads it.
  std::string status = guard::testing::read_file("/proc/" + std::to_string(::getppid()) + "/status");
  auto at = status.find("\nPPid:\t");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(apt->pid, std::atoi(status.c_str() + at + 7));
}

}  // namespace
}  // namespace guard::run
