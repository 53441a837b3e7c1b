// The boot harness itself: a container ends when its BootedContainer goes, cleanly and fast,
// even while its reboot targets refuse a manual start.
#include "tests/boot/nspawn.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "base/root.h"
#include "base/strings.h"
#include "guard/gate/enforcement.h"
#include "tests/common/test_env.h"

namespace guard::testing {
namespace {

using gate::apply_reboot_block;

TEST(BootedContainerTest, EndsTheContainerOnDestructionEvenWithTheRebootBlocked) {
  if (!is_root()) UG_SKIP_OR_FAIL("needs root to boot a container with systemd-nspawn");
  if (!std::filesystem::exists("/usr/bin/systemd-nspawn"))
    UG_SKIP_OR_FAIL("needs systemd-nspawn (apt-get install systemd-container)");
  TempDir tmp("ug-boot");
  auto root_dir = prepare_boot_root(tmp.path());
  ASSERT_TRUE(root_dir) << root_dir.error().to_string();
  auto box = BootedContainer::boot(*root_dir, "ug-harness-" + std::to_string(::getpid()), tmp / "console.log");
  ASSERT_TRUE(box) << box.error().to_string();
  pid_t leader = (*box)->leader();
  ASSERT_GT(leader, 1);
  EXPECT_EQ(base::trim((*box)->exec({"systemctl", "is-system-running"}).out), "running");
  // Commands really run inside the container, as its systemd sees it.
  EXPECT_EQ(base::trim((*box)->exec({"systemd-detect-virt"}).out), "systemd-nspawn");
  EXPECT_EQ(base::trim((*box)->exec({"cat", "/proc/1/comm"}).out), "systemd");

  auto root = base::Root::open("/proc/" + std::to_string(leader) + "/root");
  ASSERT_TRUE(root);
  ASSERT_TRUE(apply_reboot_block(*root, "harness test", nullptr));
  ASSERT_TRUE((*box)->exec({"systemctl", "daemon-reload"}).ok());

  auto start = std::chrono::steady_clock::now();
  box->reset();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(::kill(leader, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  // A clean halt (nspawn's SIGTERM -> SIGRTMIN+3 is not a manual start), not the 30 s SIGKILL fallback.
  EXPECT_LT(took, std::chrono::seconds(25));
  std::printf("[ teardown ] %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
}

}  // namespace
}  // namespace guard::testing
