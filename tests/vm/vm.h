// Real machines for the vm tests: a cached Debian 12 disk image (scripts/test-vm-image) booted
// with qemu (TCG) through SeaBIOS, GRUB, Debian's kernel and initramfs and systemd, with
// upgrade-guard installed from its .deb. Each scenario boots a fresh copy-on-write overlay of
// the image, runs commands in the guest through the QEMU guest agent (guest-exec over a
// virtio-serial port), reboots it, and reads the disk from the host afterwards.
//
// Every boot is one qemu process started with -no-reboot: a reboot or a panic (panic=10 is on
// the kernel command line) ends it, and only the test starts the next one, so no scenario can
// loop; a boot that does not end within its time is killed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace guard::testing {

// The image of `layout` (e.g. "bios-btrfs") with this checkout's .deb installed: runs
// scripts/test-packages (current package only) and scripts/test-vm-image, which rebuild only
// what changed. Returns e.g. "/var/cache/upgrade-guard-tests/vm/bios-btrfs/deb-1a2b…-3c4d….qcow2".
[[nodiscard]] base::Result<std::string> vm_image(const std::string& layout);

// Why the vm tests cannot run here ("" when they can): not root, no qemu, no loop devices.
std::string vm_unavailable();

// What a command run in the guest did.
struct GuestResult {
  int exit_code = -1;
  bool timed_out = false;
  std::string out;
  std::string err;
  [[nodiscard]] bool ok() const { return exit_code == 0 && !timed_out; }
  // "exit 1: <stderr><stdout>" for failure messages.
  [[nodiscard]] std::string describe() const;
};

// One virtual machine over an overlay of an image. Destruction kills qemu (it is reaped), also
// when the test failed.
class Vm {
 public:
  // Creates `dir`/disk.qcow2, a qcow2 overlay of `image` (never written), e.g.
  // Vm::create(image, "/tmp/ug-vm.X1"). Nothing runs yet. `uefi`: boot with OVMF
  // (/usr/share/ovmf/OVMF.fd) instead of SeaBIOS.
  [[nodiscard]] static base::Result<std::unique_ptr<Vm>> create(const std::string& image, const std::string& dir,
                                                                bool uefi = false);

  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;
  ~Vm();

  // Starts a boot (qemu) and waits until the guest agent answers and `systemctl
  // is-system-running --wait` says running or degraded, at most `timeout`. The console goes
  // to `dir`/console-N.log (N counts boots from 1). Fails when the guest powers off, reboots
  // or panics before that.
  [[nodiscard]] base::Result<void> boot(std::chrono::seconds timeout = std::chrono::seconds(300));
  // Starts a boot and returns at once, e.g. for a trial boot expected to end by itself.
  [[nodiscard]] base::Result<void> start();
  // Waits up to `timeout` for the running boot to end (a reboot, a poweroff or a panic end
  // qemu); true when it did. The agent connection is closed.
  [[nodiscard]] bool wait_down(std::chrono::seconds timeout);
  // Asks the guest to reboot with `argv` (e.g. {"systemctl", "reboot"}), waits for this boot
  // to end and boots again (boot()). Fails when the guest is still up after `down_timeout`.
  [[nodiscard]] base::Result<void> reboot(const std::vector<std::string>& argv = {"systemctl", "reboot"},
                                          std::chrono::seconds down_timeout = std::chrono::seconds(180));
  // True while qemu runs.
  [[nodiscard]] bool running();
  // Kills qemu (SIGKILL) and reaps it.
  void kill();

  // Runs `script` with /bin/sh -c in the guest (as root, DEBIAN_FRONTEND=noninteractive,
  // stdin from `input`), at most `timeout`; a guest that is down or a broken agent gives
  // exit_code -1 with the reason in err.
  GuestResult sh(const std::string& script, std::chrono::seconds timeout = std::chrono::seconds(120),
                 const std::string& input = "");
  // Writes `content` to `path` in the guest (mode 0644, parents created).
  [[nodiscard]] base::Result<void> put(const std::string& path, const std::string& content);

  // How many boots were started; the console of boot n (1-based) so far.
  [[nodiscard]] int boots() const { return boots_; }
  [[nodiscard]] std::string console(int boot) const;
  // The last lines of the current boot's console, for failure messages.
  [[nodiscard]] std::string console_tail(std::size_t lines = 40) const;
  // From qemu's start to a ready guest, for each boot() so far.
  [[nodiscard]] const std::vector<std::chrono::milliseconds>& ready_times() const { return ready_times_; }
  // The overlay, e.g. "/tmp/ug-vm.X1/disk.qcow2"; read it only while qemu is not running.
  [[nodiscard]] const std::string& disk() const { return disk_; }

 private:
  Vm(std::string dir, std::string disk, bool uefi) : dir_(std::move(dir)), disk_(std::move(disk)), uefi_(uefi) {}
  // Sends one agent command (a JSON object as text) and returns its "return" member as text;
  // fails on an agent error, a closed connection or no answer within `timeout`.
  base::Result<std::string> agent(const std::string& request, std::chrono::milliseconds timeout);
  // Connects to the agent and synchronises (guest-sync-delimited) within `timeout`.
  base::Result<void> connect_agent(std::chrono::steady_clock::time_point deadline);

  std::string dir_;
  std::string disk_;
  bool uefi_ = false;
  pid_t qemu_ = -1;
  int boots_ = 0;
  base::UniqueFd agent_;
  std::string pending_;  // bytes read from the agent after the last answer
  std::vector<std::chrono::milliseconds> ready_times_;
};

// The guest's disk read from the host: the overlay converted to a raw file, its partitions
// attached read-only with `losetup --offset --sizelimit` (the host kernel may have no partition
// support), the btrfs top level (subvolid=5) and a separate ext4 /boot mounted read-only.
// Everything is released on destruction.
class DiskView {
 public:
  // e.g. DiskView::open(vm.disk(), "/tmp/ug-vm.X1/view"); the VM must be down.
  [[nodiscard]] static base::Result<std::unique_ptr<DiskView>> open(const std::string& qcow2, const std::string& dir);
  DiskView(const DiskView&) = delete;
  DiskView& operator=(const DiskView&) = delete;
  ~DiskView();
  // The mounted top level, e.g. "/tmp/ug-vm.X1/view/top" (holding @rootfs, @upgrade-guard…).
  [[nodiscard]] const std::string& top() const { return top_; }
  // The separate /boot partition, e.g. "/tmp/ug-vm.X1/view/boot"; "" when /boot is in the root.
  [[nodiscard]] const std::string& boot() const { return boot_; }

 private:
  explicit DiskView(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  std::string raw_;
  std::vector<std::string> loops_;
  std::vector<std::string> mounts_;  // in the order mounted
  std::string top_;
  std::string boot_;
};

}  // namespace guard::testing
