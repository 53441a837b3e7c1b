#include "guard/gate/enforcement.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include "base/atomic_file.h"
#include "base/strings.h"
#include "base/unique_fd.h"

namespace guard::gate {
namespace {

constexpr std::string_view kSystemdRuntimeDir = "/run/systemd/system";

std::string no_systemd_note(std::string_view action) {
  return "no systemd is running (" + std::string(kSystemdRuntimeDir) + " is missing): the reboot block was not " +
         std::string(action);
}

// Opens <root>/run/systemd/system as a directory fd; an empty fd with `missing` set when
// systemd is not running in that root.
base::Result<base::UniqueFd> open_runtime_unit_dir(const base::Root& root, bool& missing) {
  missing = false;
  auto exists = root.exists(kSystemdRuntimeDir);
  if (!exists) return base::fail(exists.error());
  if (!*exists) {
    missing = true;
    return base::UniqueFd();
  }
  return root.open(kSystemdRuntimeDir, O_RDONLY | O_DIRECTORY);
}

// Restores the calling thread's signal mask when it goes out of scope.
class SignalMaskGuard {
 public:
  explicit SignalMaskGuard(const sigset_t& block) { ok_ = ::pthread_sigmask(SIG_BLOCK, &block, &old_) == 0; }
  SignalMaskGuard(const SignalMaskGuard&) = delete;
  SignalMaskGuard& operator=(const SignalMaskGuard&) = delete;
  ~SignalMaskGuard() {
    if (ok_) ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  sigset_t old_{};
  bool ok_ = false;
};

// Reads everything queued on a non-blocking fd (inotify events we only need as a wake-up).
void drain(int fd) {
  std::array<char, 4096> buf{};
  while (::read(fd, buf.data(), buf.size()) > 0) {
  }
}

}  // namespace

const std::vector<std::string>& reboot_block_targets() {
  static const std::vector<std::string> targets{"reboot.target", "poweroff.target", "halt.target", "kexec.target",
                                                "soft-reboot.target"};
  return targets;
}

// The gate's reason on one line, trimmed: for a unit file comment and the inhibitor's "why".
std::string one_line(std::string_view reason) {
  std::string flat;
  for (char c : reason) flat += (c == '\n' || c == '\r') ? ' ' : c;
  return std::string(base::trim(flat));
}

std::string reboot_block_drop_in(std::string_view reason) {
  const std::string flat = one_line(reason);
  std::string text = "# upgrade-guard: the reboot gate is closed";
  if (!flat.empty()) text += ": " + flat;
  text +=
      "\n"
      "# Written by upgrade-guard while its reboot gate is closed, removed when it opens.\n"
      "# See `upgrade-guard gate status`; `upgrade-guard gate open` lifts it.\n"
      "[Unit]\n"
      "RefuseManualStart=yes\n";
  return text;
}

std::string inhibitor_why(std::string_view reason) {
  const std::string flat = one_line(reason);
  std::string why = "REBOOT REFUSED by upgrade-guard: the reboot gate is closed";
  if (!flat.empty()) why += " (" + flat + ")";
  why +=
      ". The machine will not reboot or power off, even if this command exits 0. "
      "`upgrade-guard gate status` says why; `upgrade-guard gate open` once it is fixed.";
  return why;
}

base::Result<EnforcementOutcome> apply_reboot_block(const base::Root& root, std::string_view reason, GateBus* bus) {
  bool missing = false;
  auto units = open_runtime_unit_dir(root, missing);
  if (!units) return base::fail(units.error());
  if (missing) return EnforcementOutcome{false, no_systemd_note("installed")};

  const std::string text = reboot_block_drop_in(reason);
  for (const auto& target : reboot_block_targets()) {
    const std::string dir_name = target + ".d";
    const std::string dir_path = base::join_path(kSystemdRuntimeDir, dir_name);
    bool created = ::mkdirat(units->get(), dir_name.c_str(), 0755) == 0;
    if (!created && errno != EEXIST) return base::fail_errno("mkdirat", root.host_path(dir_path));
    auto dir = root.open(dir_path, O_RDONLY | O_DIRECTORY, 0, base::Follow::no);
    if (!dir) return base::fail(dir.error());
    if (created && ::fchmod(dir->get(), 0755) != 0) return base::fail_errno("fchmod", root.host_path(dir_path));
    const std::string file_path = base::join_path(dir_path, kRebootBlockDropIn);
    auto written =
        base::write_file_atomic_at(dir->get(), std::string(kRebootBlockDropIn), text, 0644, root.host_path(file_path));
    if (!written) return base::fail(written.error());
  }
  if (bus == nullptr) return EnforcementOutcome{true, "drop-ins written; systemd was not asked to reload"};
  auto reloaded = bus->reload_systemd();
  if (!reloaded) return base::fail(reloaded.error());
  return EnforcementOutcome{true, "systemd refuses reboot, poweroff, halt, kexec and soft-reboot"};
}

base::Result<EnforcementOutcome> remove_reboot_block(const base::Root& root, GateBus* bus) {
  bool missing = false;
  auto units = open_runtime_unit_dir(root, missing);
  if (!units) return base::fail(units.error());
  if (missing) return EnforcementOutcome{false, no_systemd_note("removed")};

  bool removed_any = false;
  for (const auto& target : reboot_block_targets()) {
    const std::string dir_name = target + ".d";
    const std::string dir_path = base::join_path(kSystemdRuntimeDir, dir_name);
    auto dir = root.open(dir_path, O_RDONLY | O_DIRECTORY, 0, base::Follow::no);
    if (!dir) {
      if (dir.error().err == ENOENT) continue;
      return base::fail(dir.error());
    }
    const std::string name(kRebootBlockDropIn);
    if (::unlinkat(dir->get(), name.c_str(), 0) == 0) {
      removed_any = true;
    } else if (errno != ENOENT) {
      return base::fail_errno("unlinkat", root.host_path(base::join_path(dir_path, name)));
    }
    // Another tool's drop-ins may share the directory: only an empty one goes.
    if (::unlinkat(units->get(), dir_name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOTEMPTY && errno != EEXIST &&
        errno != ENOENT)
      return base::fail_errno("unlinkat", root.host_path(dir_path));
  }
  if (!removed_any) return EnforcementOutcome{true, "no reboot block was installed"};
  if (bus == nullptr) return EnforcementOutcome{true, "drop-ins removed; systemd was not asked to reload"};
  auto reloaded = bus->reload_systemd();
  if (!reloaded) return base::fail(reloaded.error());
  return EnforcementOutcome{true, "systemd accepts reboot and poweroff again"};
}

base::Result<HoldEnd> hold_inhibitor(GateBus& bus, const InhibitRequest& request, const HoldUntil& until) {
  sigset_t stop_signals;
  ::sigemptyset(&stop_signals);
  ::sigaddset(&stop_signals, SIGTERM);
  ::sigaddset(&stop_signals, SIGINT);
  ::sigaddset(&stop_signals, SIGHUP);
  // Block first, so a stop requested while logind answers is not lost.
  SignalMaskGuard mask(stop_signals);
  if (!mask.ok()) return base::fail_errno("pthread_sigmask", "");
  base::UniqueFd signals(::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signals) return base::fail_errno("signalfd", "");

  base::UniqueFd notify(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!notify) return base::fail_errno("inotify_init1", until.watch_dir);
  if (!until.watch_dir.empty() &&
      ::inotify_add_watch(notify.get(), until.watch_dir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB) < 0 &&
      errno != ENOENT)
    return base::fail_errno("inotify_add_watch", until.watch_dir);

  auto inhibitor = bus.inhibit(request);
  if (!inhibitor) return base::fail(inhibitor.error());

  const int timeout_ms = static_cast<int>(std::max<std::chrono::milliseconds::rep>(1, until.recheck.count()));
  for (;;) {
    if (until.released()) return HoldEnd::released;  // the inhibitor fd closes on return
    std::array<pollfd, 2> fds{pollfd{signals.get(), POLLIN, 0}, pollfd{notify.get(), POLLIN, 0}};
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::fail_errno("poll", until.watch_dir);
    }
    if ((fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo info{};
      if (::read(signals.get(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) return HoldEnd::signalled;
    }
    if ((fds[1].revents & POLLIN) != 0) drain(notify.get());
  }
}

}  // namespace guard::gate
