// Booting a Debian root with systemd-nspawn for the boot tests, on a host whose PID 1 is not
// systemd: the container runs in a private mount namespace with a private tmpfs on
// /run/systemd/nspawn (nspawn's propagation directory), unregistered (--register=no) and in
// our own cgroup (--keep-unit). Commands run inside it through nsenter.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/process.h"

namespace guard::testing {

// Copies the cached server root (scripts/test-root server: systemd-sysv, dbus) into
// `dir`/root, never touching the cache, and installs into the copy: the built binary as
// /usr/sbin/upgrade-guard (plus the host libraries it links that the root lacks, into
// /usr/local/lib, with ldconfig), the packaging units in /etc/systemd/system (enabled as their
// [Install] sections say) and the molly-guard hook in /etc/molly-guard/run.d. Returns the
// root's path, e.g. "/tmp/ug-boot.X1/root". `dir`/root may exist already (an empty btrfs
// subvolume): the root is copied into it.
[[nodiscard]] base::Result<std::string> prepare_boot_root(const std::string& dir);

// A booted container. Destruction always ends it: SIGTERM to nspawn (a clean halt), then
// SIGKILL to the container's PID 1 and to nspawn if it has not exited within 30 s; it reaps
// nspawn either way, also when the test failed.
class BootedContainer {
 public:
  // Boots `root_dir` (e.g. "/tmp/ug-boot.X1/root") as machine `name` and waits until
  // `systemctl is-system-running --wait` inside says running or degraded, at most `timeout`.
  // nspawn's console output goes to `log_path`. `extra_args` go to systemd-nspawn before -b,
  // e.g. {"--bind=/dev/loop7"} so the container can mount its own btrfs top level.
  [[nodiscard]] static base::Result<std::unique_ptr<BootedContainer>> boot(
      const std::string& root_dir, const std::string& name, const std::string& log_path,
      std::chrono::seconds timeout = std::chrono::seconds(120), const std::vector<std::string>& extra_args = {});
  // Starts nspawn like boot() and returns at once, e.g. for a boot that is expected to end by
  // itself (wait_exit); exec() is usable on it after wait_init().
  [[nodiscard]] static base::Result<std::unique_ptr<BootedContainer>> start(const std::string& root_dir,
                                                                            const std::string& name,
                                                                            const std::string& log_path,
                                                                            const std::vector<std::string>& extra_args);

  // After start(): waits up to `timeout` for the container's init, so that exec() works while
  // the boot is still in progress (e.g. to watch a trial boot before boot-check settles it).
  [[nodiscard]] base::Result<void> wait_init(std::chrono::milliseconds timeout);
  // Waits up to `timeout` until `systemctl is-system-running --wait` inside says running or
  // degraded (after wait_init), as boot() does.
  [[nodiscard]] base::Result<void> wait_running(std::chrono::milliseconds timeout);

  BootedContainer(const BootedContainer&) = delete;
  BootedContainer& operator=(const BootedContainer&) = delete;
  ~BootedContainer();

  // The container's PID 1 as the host sees it (the child of systemd-nspawn).
  [[nodiscard]] pid_t leader() const { return leader_; }
  // How long from starting nspawn to a running system.
  [[nodiscard]] std::chrono::milliseconds boot_time() const { return boot_time_; }
  // Runs argv inside every namespace of the container: nsenter -t LEADER -a -- argv...
  // e.g. exec({"systemctl", "reboot"}).
  [[nodiscard]] base::ProcessResult exec(const std::vector<std::string>& argv, int timeout_seconds = 60) const;
  // False once systemd-nspawn has exited (it is reaped then).
  [[nodiscard]] bool running();
  // Waits up to `timeout` for nspawn to exit, e.g. after a reboot inside; true when it did.
  [[nodiscard]] bool wait_exit(std::chrono::milliseconds timeout);
  // Pulls the plug: SIGKILL to the container's PID 1 (taking every process in it along) and to
  // nspawn, no shutdown transaction at all; returns once nspawn is reaped.
  void kill_hard();
  // nspawn's console output so far, for failure messages.
  [[nodiscard]] std::string log() const;

 private:
  BootedContainer(pid_t nspawn, std::string log_path) : nspawn_(nspawn), log_path_(std::move(log_path)) {}

  pid_t nspawn_ = -1;
  std::chrono::steady_clock::time_point started_;
  pid_t leader_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::string log_path_;
  std::chrono::milliseconds boot_time_{0};
};

}  // namespace guard::testing
