// The reboot gate on a real booted Debian 12 (systemd 252) in systemd-nspawn: what an
// administrator inside would see from `systemctl reboot`, `systemd-inhibit --list` and
// molly-guard's hook.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include "base/root.h"
#include "base/strings.h"
#include "guard/gate/enforcement.h"
#include "tests/boot/nspawn.h"
#include "tests/common/test_env.h"

namespace guard::testing {
namespace {

namespace fs = std::filesystem;
using gate::apply_reboot_block;
using gate::remove_reboot_block;
using gate::reboot_block_targets;
using gate::kRebootBlockDropIn;

std::string machine_name() {
  static std::atomic<int> counter{0};
  return "ug-gate-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// Polls `condition` every 200 ms for up to `seconds`.
bool eventually(const std::function<bool()>& condition, int seconds = 30) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return condition();
}

class GateBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) UG_SKIP_OR_FAIL("needs root to boot a container with systemd-nspawn");
    if (!fs::exists("/usr/bin/systemd-nspawn") || !fs::exists("/usr/bin/nsenter"))
      UG_SKIP_OR_FAIL("needs systemd-nspawn and nsenter (apt-get install systemd-container util-linux)");
    auto start = std::chrono::steady_clock::now();
    auto root = prepare_boot_root(tmp_.path());
    ASSERT_TRUE(root) << root.error().to_string();
    root_dir_ = *root;
    std::printf(
        "[ prepare  ] %s copied and installed in %lld ms\n", root_dir_.c_str(),
        static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count()));
  }

  void boot() {
    auto box = BootedContainer::boot(root_dir_, machine_name(), tmp_ / "console.log");
    ASSERT_TRUE(box) << box.error().to_string();
    box_ = std::move(*box);
    std::printf("[ boot     ] %s running after %lld ms\n", root_dir_.c_str(),
                static_cast<long long>(box_->boot_time().count()));
  }

  // The container's own view of its root, /run tmpfs included: /proc/PID/root.
  base::Root container_root() {
    auto r = base::Root::open("/proc/" + std::to_string(box_->leader()) + "/root");
    EXPECT_TRUE(r) << r.error().to_string();
    return std::move(*r);
  }

  // Runs the installed upgrade-guard inside the container, e.g. guard({"gate", "status"}).
  base::ProcessResult guard(std::vector<std::string> args) {
    args.insert(args.begin(), "upgrade-guard");
    return box_->exec(args, 120);
  }
  void close_gate(const std::string& reason) {
    auto r = guard({"gate", "close", "--reason", reason});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  void open_gate() {
    auto r = guard({"gate", "open", "--force", "--reason", "boot test"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  // The trimmed stdout of argv run inside, e.g. output({"systemctl", "is-active", "x"}) == "active".
  std::string output(const std::vector<std::string>& argv) { return std::string(base::trim(box_->exec(argv).out)); }

  std::string inhibitors() { return box_->exec({"systemd-inhibit", "--list", "--no-pager"}).out; }
  bool upgrade_guard_inhibits() {
    std::string list = inhibitors();
    return list.find("upgrade-guard") != std::string::npos && list.find("shutdown:sleep") != std::string::npos &&
           list.find("block") != std::string::npos;
  }

  // `systemctl reboot` is refused and the container keeps running.
  void expect_reboot_refused() {
    auto r = box_->exec({"systemctl", "reboot"});
    EXPECT_NE(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.err.find("refuse"), std::string::npos) << r.err;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_TRUE(box_->running()) << box_->log();
  }

  // `systemctl reboot` is accepted: the container goes down.
  void expect_reboot_accepted() {
    auto r = box_->exec({"systemctl", "reboot"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(box_->wait_exit(std::chrono::seconds(60))) << "the container did not go down:\n" << box_->log();
  }

  TempDir tmp_{"ug-boot"};
  std::string root_dir_;
  std::unique_ptr<BootedContainer> box_;  // declared after tmp_: ended before the dir goes
};

TEST_F(GateBootTest, RuntimeDropInsRefuseRebootAndPoweroffUntilRemoved) {
  ASSERT_NO_FATAL_FAILURE(boot());
  auto root = container_root();
  auto applied = apply_reboot_block(root, "boot test: run 1 failed its checks", nullptr);
  ASSERT_TRUE(applied) << applied.error().to_string();
  ASSERT_TRUE(applied->enforced) << applied->note;
  auto reload = box_->exec({"systemctl", "daemon-reload"});
  ASSERT_TRUE(reload.ok()) << reload.err;

  expect_reboot_refused();
  auto poweroff = box_->exec({"systemctl", "poweroff"});
  EXPECT_NE(poweroff.exit_code, 0);
  EXPECT_NE(poweroff.err.find("refuse"), std::string::npos) << poweroff.err;
  // The plain `reboot` command (systemctl in disguise on 252: it reports the refusal but exits 0).
  auto plain = box_->exec({"reboot"});
  EXPECT_NE(plain.err.find("refuse"), std::string::npos) << plain.err;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_TRUE(box_->running()) << box_->log();
  EXPECT_EQ(output({"systemctl", "is-system-running"}), "running");

  auto removed = remove_reboot_block(root, nullptr);
  ASSERT_TRUE(removed) << removed.error().to_string();
  ASSERT_TRUE(box_->exec({"systemctl", "daemon-reload"}).ok());
  expect_reboot_accepted();
}

TEST_F(GateBootTest, GateCloseStartsTheHolderWhichInhibitsAndBlocksUntilGateOpen) {
  ASSERT_NO_FATAL_FAILURE(boot());
  EXPECT_EQ(output({"systemctl", "is-active", "upgrade-guard-gate.path"}), "active");
  EXPECT_FALSE(upgrade_guard_inhibits()) << inhibitors();
  auto hook_open = box_->exec({"/etc/molly-guard/run.d/20-upgrade-guard"});
  EXPECT_EQ(hook_open.exit_code, 0) << hook_open.err;
  // molly-guard finds its hooks with run-parts, which skips names with dots.
  EXPECT_NE(box_->exec({"run-parts", "--test", "/etc/molly-guard/run.d"}).out.find("/20-upgrade-guard"),
            std::string::npos);

  ASSERT_NO_FATAL_FAILURE(close_gate("boot test: run 7 broke sshd"));
  EXPECT_EQ(guard({"gate", "status"}).exit_code, 1);
  ASSERT_TRUE(eventually([&] { return upgrade_guard_inhibits(); }))
      << inhibitors() << box_->exec({"journalctl", "-u", "upgrade-guard-gate", "--no-pager"}).out;
  EXPECT_NE(inhibitors().find("run 7 broke sshd"), std::string::npos) << inhibitors();
  EXPECT_EQ(output({"systemctl", "is-active", "upgrade-guard-gate.service"}), "active");
  // The holder put the drop-ins in place too.
  ASSERT_TRUE(eventually([&] {
    return box_->exec({"systemctl", "show", "-P", "RefuseManualStart", "reboot.target"}).out == "yes\n";
  }));
  expect_reboot_refused();
  auto hook_closed = box_->exec({"/etc/molly-guard/run.d/20-upgrade-guard"}, 30);
  EXPECT_EQ(hook_closed.exit_code, 1);
  EXPECT_NE(hook_closed.err.find("the reboot gate is closed"), std::string::npos) << hook_closed.err;
  EXPECT_NE(hook_closed.err.find("run 7 broke sshd"), std::string::npos) << hook_closed.err;

  ASSERT_NO_FATAL_FAILURE(open_gate());
  EXPECT_EQ(guard({"gate", "status"}).exit_code, 0);
  ASSERT_TRUE(eventually([&] { return !upgrade_guard_inhibits(); })) << inhibitors();
  EXPECT_TRUE(eventually([&] {
    return output({"systemctl", "is-active", "upgrade-guard-gate.service"}) == "inactive";
  }));
  EXPECT_TRUE(eventually([&] {
    return box_->exec({"systemctl", "show", "-P", "RefuseManualStart", "reboot.target"}).out == "no\n";
  }));
  EXPECT_EQ(box_->exec({"/etc/molly-guard/run.d/20-upgrade-guard"}).exit_code, 0);
  expect_reboot_accepted();
}

TEST_F(GateBootTest, AGateClosedBeforeTheBootIsEnforcedAgainAfterIt) {
  // The state after a reboot forced past the gate: the gate is closed, /run is fresh.
  // Closed from a chroot with /proc mounted (in a private mount namespace, gone with it), as an
  // administrator's rescue chroot has it; the sanitizer build cannot even start without /proc.
  auto closed = run({"unshare", "--mount", "--propagation", "private", "sh", "-c",
                     "mount -t proc proc \"$1/proc\" && exec chroot \"$1\" upgrade-guard gate close --reason \"$2\"",
                     "sh", root_dir_, "boot test: forced past"});
  ASSERT_EQ(closed.exit_code, 0) << closed.out << closed.err;
  ASSERT_NO_FATAL_FAILURE(boot());
  EXPECT_EQ(guard({"gate", "status"}).exit_code, 1);
  ASSERT_TRUE(eventually([&] { return upgrade_guard_inhibits(); }))
      << inhibitors() << box_->exec({"journalctl", "-u", "upgrade-guard-gate", "--no-pager"}).out;
  ASSERT_TRUE(eventually([&] {
    return box_->exec({"systemctl", "show", "-P", "RefuseManualStart", "reboot.target"}).out == "yes\n";
  }));
  expect_reboot_refused();
  // Forcing still gets through, as documented (systemd asks PID 1 directly).
  auto forced = box_->exec({"systemctl", "reboot", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_TRUE(box_->wait_exit(std::chrono::seconds(60))) << box_->log();
}

TEST_F(GateBootTest, MollyGuardRefusesRebootWhileTheGateIsClosed) {
  // Debian's molly-guard package, fetched with the host's apt (the system tests need the archive too).
  base::SystemCommandRunner runner;
  base::Command download;
  download.argv = {"apt-get", "download", "molly-guard"};
  download.cwd = tmp_.path();
  download.timeout = std::chrono::minutes(5);
  auto fetched = runner.run(download);
  if (!fetched || !fetched->ok()) UG_SKIP_OR_FAIL("cannot download molly-guard: " + (fetched ? fetched->err : ""));
  std::string deb;
  for (const auto& e : fs::directory_iterator(tmp_.path()))
    if (e.path().extension() == ".deb") deb = e.path().string();
  ASSERT_FALSE(deb.empty());
  fs::copy_file(deb, root_dir_ + "/root/molly-guard.deb");
  ASSERT_NO_FATAL_FAILURE(boot());
  auto installed = box_->exec({"dpkg", "-i", "/root/molly-guard.deb"}, 120);
  ASSERT_TRUE(installed.ok()) << installed.out << installed.err;

  ASSERT_NO_FATAL_FAILURE(close_gate("boot test: run 9 broke libc"));
  // Through molly-guard's own `reboot` (/usr/sbin/reboot now), without a terminal.
  auto refused = box_->exec({"reboot"});
  EXPECT_NE(refused.exit_code, 0) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("aborting reboot due to 20-upgrade-guard"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("run 9 broke libc"), std::string::npos) << refused.err;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_TRUE(box_->running()) << box_->log();

  ASSERT_NO_FATAL_FAILURE(open_gate());
  ASSERT_TRUE(eventually([&] { return !upgrade_guard_inhibits(); })) << inhibitors();
  ASSERT_TRUE(eventually([&] {
    return box_->exec({"systemctl", "show", "-P", "RefuseManualStart", "reboot.target"}).out == "no\n";
  }));
  auto accepted = box_->exec({"reboot"});
  EXPECT_EQ(accepted.exit_code, 0) << accepted.err;
  EXPECT_TRUE(box_->wait_exit(std::chrono::seconds(60))) << box_->log();
}

}  // namespace
}  // namespace guard::testing
