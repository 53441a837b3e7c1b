#include "base/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <algorithm>
#include <cstring>
#include <string_view>
#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <functional>
#include <future>
#include <optional>

#include "base/mount_namespace.h"
#include "base/unique_fd.h"

namespace guard::base {
namespace bp = boost::process;

std::string ProcessResult::describe() const {
  if (timed_out) {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(duration).count();
    return "timed out after " + std::to_string(secs) + "s and was killed";
  }
  if (signal != 0) return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
  return "exited with status " + std::to_string(exit_code);
}

namespace {

// One step of preparing a chroot's /proc, /sys and /dev, computed before the fork (the child
// only makes system calls).
struct MountStep {
  enum Kind { bind, fs, node, dir, link } kind;
  std::string source;  // bind: host path; fs: fstype; link: target
  std::string target;  // a path under the chroot
  std::string data;    // fs: mount options
  mode_t mode = 0;
  dev_t dev = 0;
};

// A private /dev at `dev`: a tmpfs with the usual nodes (world-usable whatever the host's look
// like); with `terminals`, also tty, devpts and shm, like systemd-nspawn and debootstrap provide.
void add_dev_steps(std::vector<MountStep>& steps, const std::string& dev, bool terminals) {
  steps.push_back({MountStep::fs, "tmpfs", dev, "mode=755,size=16m", 0, 0});
  struct Node {
    const char* name;
    unsigned major, minor;
  };
  for (Node n : {Node{"null", 1, 3}, Node{"zero", 1, 5}, Node{"full", 1, 7}, Node{"random", 1, 8},
                 Node{"urandom", 1, 9}, Node{"tty", 5, 0}}) {
    if (!terminals && std::string_view(n.name) == "tty") continue;
    steps.push_back({MountStep::node, "", dev + "/" + n.name, "", S_IFCHR | 0666, makedev(n.major, n.minor)});
  }
  if (terminals) {
    steps.push_back({MountStep::dir, "", dev + "/pts", "", 0755, 0});
    steps.push_back({MountStep::fs, "devpts", dev + "/pts", "newinstance,ptmxmode=0666,mode=620", 0, 0});
    steps.push_back({MountStep::link, "pts/ptmx", dev + "/ptmx", "", 0, 0});
    steps.push_back({MountStep::dir, "", dev + "/shm", "", 01777, 0});
    steps.push_back({MountStep::fs, "tmpfs", dev + "/shm", "mode=1777", 0, 0});
  }
  steps.push_back({MountStep::link, "/proc/self/fd", dev + "/fd", "", 0, 0});
  steps.push_back({MountStep::link, "/proc/self/fd/0", dev + "/stdin", "", 0, 0});
  steps.push_back({MountStep::link, "/proc/self/fd/1", dev + "/stdout", "", 0, 0});
  steps.push_back({MountStep::link, "/proc/self/fd/2", dev + "/stderr", "", 0, 0});
}

std::vector<MountStep> system_dir_steps(const std::string& root) {
  std::vector<MountStep> steps;
  steps.push_back({MountStep::bind, "/proc", root + "/proc", "", 0, 0});
  steps.push_back({MountStep::bind, "/sys", root + "/sys", "", 0, 0});
  add_dev_steps(steps, root + "/dev", /*terminals=*/true);
  return steps;
}

// The sandbox's own /run (with the runtime directories and their parents), /tmp, /dev and
// /proc, made after the chroot into the read-only root: paths inside it.
std::vector<MountStep> sandbox_steps(const Sandbox& sandbox) {
  std::vector<MountStep> steps;
  steps.push_back({MountStep::fs, "tmpfs", "/run", "mode=755,size=16m", 0, 0});
  std::vector<std::string> made = {"/run"};
  for (const auto& dir : sandbox.runtime_dirs) {
    for (std::size_t slash = dir.find('/', 1); ; slash = dir.find('/', slash + 1)) {
      std::string part = dir.substr(0, slash);
      if (std::find(made.begin(), made.end(), part) == made.end()) {
        made.push_back(part);
        steps.push_back({MountStep::dir, "", part, "", 0755, 0});
      }
      if (slash == std::string::npos) break;
    }
  }
  steps.push_back({MountStep::fs, "tmpfs", "/tmp", "mode=1777,size=64m", 0, 0});
  add_dev_steps(steps, "/dev", /*terminals=*/false);
  steps.push_back({MountStep::fs, "proc", "/proc", "", 0, 0});
  return steps;
}

// In the child: new namespaces, the root (`root`, a host path) bound onto itself and made
// read-only with everything mounted below it, then chrooted into. Returns the failed call.
const char* enter_sandbox(const char* root) {
  if (::unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0) return "unshare sandbox namespaces";
  // From here on no mount propagates back to the host's namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return "make the sandbox's mounts private";
  // The live root is already the top of its tree; any other root becomes a mount of its own.
  if (std::strcmp(root, "/") != 0 && ::mount(root, root, nullptr, MS_BIND | MS_REC, nullptr) != 0)
    return "bind the root";
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  if (::mount_setattr(AT_FDCWD, root, AT_RECURSIVE, &attr, sizeof attr) != 0) {
    // Before Linux 5.12: only the top mount.
    if (errno != ENOSYS || ::mount(nullptr, root, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0)
      return "make the root read-only";
  }
  if (::chroot(root) != 0 || ::chdir("/") != 0) return "chroot";
  const struct rlimit as{kSandboxAddressSpaceMax, kSandboxAddressSpaceMax};
  if (::setrlimit(RLIMIT_AS, &as) != 0) return "limit the address space";
  return nullptr;
}

// Runs the steps (after fork, only system calls); the failed call's name, or nullptr.
const char* run_steps(const std::vector<MountStep>& steps) {
  for (const auto& st : steps) {
    int rc = 0;
    switch (st.kind) {
      case MountStep::bind: rc = ::mount(st.source.c_str(), st.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr); break;
      case MountStep::fs: rc = ::mount(st.source.c_str(), st.target.c_str(), st.source.c_str(), MS_NOSUID, st.data.c_str()); break;
      case MountStep::node: rc = ::mknod(st.target.c_str(), st.mode, st.dev); if (rc == 0) rc = ::chmod(st.target.c_str(), st.mode & 07777); break;
      case MountStep::dir: rc = ::mkdir(st.target.c_str(), st.mode); if (rc == 0) rc = ::chmod(st.target.c_str(), st.mode); break;
      case MountStep::link: rc = ::symlink(st.source.c_str(), st.target.c_str()); break;
    }
    if (rc != 0) return "prepare chroot /dev";
  }
  return nullptr;
}

// The terminal a command reads from. The command runs in a process group of its own (so that a
// timeout kills its whole tree), which makes it a background job of the terminal the guard was
// started from: apt sets the terminal's modes on stdin before it starts dpkg, and a background
// job that does so is stopped by SIGTTOU, for ever. So, like a shell, the guard makes the
// command's group the terminal's foreground while it runs (Ctrl-C then reaches apt, which the
// guard checks after like any failed command) and takes the terminal back after. Only when
// stdin is a terminal whose foreground the guard is: a guard started in the background, or
// without a terminal, leaves it alone.
class ForegroundTerminal {
 public:
  // Before the fork: whether stdin is a terminal this process group holds the foreground of.
  static bool ours() { return ::isatty(STDIN_FILENO) == 1 && ::tcgetpgrp(STDIN_FILENO) == ::getpgrp(); }
  // Makes `group` the foreground of stdin's terminal. SIGTTOU is blocked around the call: from
  // the background, tcsetpgrp would otherwise stop the caller. Errors are ignored: the worst
  // case is the behaviour without this.
  static void give_to(pid_t group) {
    const sigset_t old = block_ttou();
    (void)::tcsetpgrp(STDIN_FILENO, group);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
  }
  // In the parent after the fork: the command's group gets the terminal (the child does the
  // same: whichever runs first wins the race a shell also closes this way), and SIGTTOU stays
  // blocked while the guard is in the background, so that copying the command's output to the
  // terminal is never stopped (a terminal with `stty tostop`). The destructor takes it back.
  explicit ForegroundTerminal(pid_t group) : old_mask_(block_ttou()) { (void)::tcsetpgrp(STDIN_FILENO, group); }
  ForegroundTerminal(const ForegroundTerminal&) = delete;
  ForegroundTerminal& operator=(const ForegroundTerminal&) = delete;
  ~ForegroundTerminal() {
    (void)::tcsetpgrp(STDIN_FILENO, ::getpgrp());
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }

 private:
  // Blocks SIGTTOU; returns the signal mask before.
  static sigset_t block_ttou() {
    sigset_t ttou, old;
    ::sigemptyset(&ttou);
    ::sigaddset(&ttou, SIGTTOU);
    ::sigprocmask(SIG_BLOCK, &ttou, &old);
    return old;
  }

  sigset_t old_mask_;
};

// Runs in the child between fork and exec: own process group, optional private mount
// namespace with /proc, /sys and a private /dev in the chroot, optional chroot.
struct ChildSetup {
  const Command* command;
  std::vector<MountStep> steps;
  int host_namespace = -1;  // host_mount_namespace(), read before the fork
  bool take_terminal = false;  // stdin is our terminal and we are its foreground: pass it on
  template <class Executor>
  void operator()(Executor& exec) const {
    ::setpgid(0, 0);
    if (take_terminal) ForegroundTerminal::give_to(::getpid());
    auto failed = [&exec](const char* what) {
      exec.set_error(std::error_code(errno, std::system_category()), what);
    };
    // The guard's private mount namespace holds its own mounts (the btrfs top level); a
    // command on the system itself (apt and its maintainer scripts) runs in the host's, so
    // what it mounts is the system's. A chrooted command may need a root only the guard's
    // namespace shows (a snapshot under the top level) and stays.
    if (!command->chroot && host_namespace >= 0 && ::setns(host_namespace, CLONE_NEWNS) != 0)
      return failed("setns host mount namespace");
    if (command->sandbox) {
      if (const char* what = enter_sandbox(command->chroot->c_str())) return failed(what);
      if (const char* what = run_steps(steps)) return failed(what);
      return;
    }
    if (!steps.empty()) {
      if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return failed("unshare mount namespace");
      if (const char* what = run_steps(steps)) return failed(what);
    }
    if (command->chroot) {
      if (::chroot(command->chroot->c_str()) != 0) return failed("chroot");
      std::string dir = command->cwd.empty() ? std::string("/") : command->cwd;
      if (::chdir(dir.c_str()) != 0) failed("chdir");
    } else if (!command->cwd.empty() && ::chdir(command->cwd.c_str()) != 0) {
      failed("chdir");
    }
  }
};

// The child's environment, built by the project as "NAME=value" strings: the guard's own
// environment (or, for a sandbox, only PATH and LC_ALL=C: nothing of the guard's reaches the
// root's code) with the command's overrides. Boost.Process 1.74's environment is not used: its
// find() (behind env[k]) compares "NAME=" against every entry for the name's length, reading
// past the end of shorter entries. SetEnvironment hands execve this array.
class ChildEnvironment {
 public:
  explicit ChildEnvironment(const Command& command) {
    std::map<std::string, std::string, std::less<>> vars;
    if (command.sandbox) {
      vars["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
      vars["LC_ALL"] = "C";
    } else {
      for (char** e = ::environ; e && *e; ++e) {
        std::string_view entry(*e);
        std::size_t eq = entry.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;  // not a variable execve's users can read
        vars.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));  // the first wins, like getenv
      }
    }
    for (const auto& [k, v] : command.env) vars[k] = v;
    entries_.reserve(vars.size());
    for (const auto& [k, v] : vars) entries_.push_back(k + "=" + v);
    pointers_.reserve(entries_.size() + 1);
    for (auto& entry : entries_) pointers_.push_back(entry.data());
    pointers_.push_back(nullptr);
  }
  ChildEnvironment(const ChildEnvironment&) = delete;  // pointers_ point into entries_
  ChildEnvironment& operator=(const ChildEnvironment&) = delete;

  // The NULL-terminated array for execve, valid while this object lives.
  char** envp() { return pointers_.data(); }

 private:
  std::vector<std::string> entries_;
  std::vector<char*> pointers_;
};

// An on_setup handler (copied by Boost.Process) that gives the child `envp`.
struct SetEnvironment {
  char** envp;
  template <class Executor>
  void operator()(Executor& exec) const {
    exec.env = envp;
  }
};

}  // namespace

Result<ProcessResult> SystemCommandRunner::run(const Command& command) {
  if (command.argv.empty()) return fail("run", "", "empty command");
  std::string exe = command.argv.front();
  if (exe.find('/') == std::string::npos) {
    auto found = bp::search_path(exe);
    if (found.empty()) return fail_errno("run", exe, ENOENT, "command not found in PATH");
    exe = found.string();
  }
  if (command.sandbox && !command.chroot) return fail("run", exe, "a sandbox needs the root to chroot into");
  std::vector<std::string> args(command.argv.begin() + 1, command.argv.end());
  ChildEnvironment environment(command);
  const SetEnvironment env{environment.envp()};

  boost::asio::io_context ios;
  std::future<std::string> out_future, err_future;
  bp::async_pipe in_pipe(ios);
  std::error_code start_error;
  int native_status = 0;
  bool exited = false;
  auto on_exit = [&](int, const std::error_code&) { exited = true; };
  auto started = std::chrono::steady_clock::now();
  std::optional<bp::child> child;
  // Output::tee and Output::inherit leave the child our stdin.
  const bool take_terminal = !command.sandbox && command.output != Output::capture && ForegroundTerminal::ours();
  ChildSetup setup{&command, {}, host_mount_namespace(), take_terminal};
  if (command.sandbox)
    setup.steps = sandbox_steps(*command.sandbox);
  else if (command.chroot && command.bind_system_dirs)
    setup.steps = system_dir_steps(*command.chroot);
  // A sandbox's output: a sealed memfd of kSandboxOutputMax bytes that cannot grow.
  UniqueFd sandbox_out;
  std::unique_ptr<FILE, int (*)(FILE*)> sandbox_file(nullptr, &std::fclose);
  if (command.sandbox) {
    sandbox_out.reset(::memfd_create("validator-output", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!sandbox_out) return fail_errno("memfd_create", exe);
    if (::ftruncate(sandbox_out.get(), kSandboxOutputMax) != 0 ||
        ::fcntl(sandbox_out.get(), F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
      return fail_errno("seal", exe, errno, "cannot bound the command's output");
    sandbox_file.reset(::fdopen(::dup(sandbox_out.get()), "w"));
    if (!sandbox_file) return fail_errno("fdopen", exe);
  }
  // Output::tee: the child writes straight into the log file (O_APPEND), so its output never
  // depends on this process staying alive (a killed guard must not break the upgrade's
  // stdout); this process follows the file and copies what arrives to the terminal.
  UniqueFd tee_fd;
  UniqueFd follow_fd;
  std::unique_ptr<FILE, int (*)(FILE*)> tee_file(nullptr, &std::fclose);
  if (command.output == Output::tee) {
    if (command.tee_file.empty()) return fail("run", exe, "Output::tee needs a log file");
    tee_fd.reset(::open(command.tee_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!tee_fd) return fail_errno("open", command.tee_file, errno, "cannot open the command's log file");
    follow_fd.reset(::open(command.tee_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!follow_fd) return fail_errno("open", command.tee_file, errno, "cannot read the command's log file");
    ::lseek(follow_fd.get(), 0, SEEK_END);
    tee_file.reset(::fdopen(::dup(tee_fd.get()), "a"));
    if (!tee_file) return fail_errno("fdopen", command.tee_file);
  }
  if (command.sandbox) {
    child.emplace(bp::exe = exe, bp::args = args, bp::extend::on_setup = env, (bp::std_out & bp::std_err) > sandbox_file.get(),
                  bp::std_in < bp::null, ios, bp::on_exit = on_exit, bp::extend::on_exec_setup = setup, start_error);
  } else if (command.output == Output::tee) {
    child.emplace(bp::exe = exe, bp::args = args, bp::extend::on_setup = env, (bp::std_out & bp::std_err) > tee_file.get(), ios,
                  bp::on_exit = on_exit, bp::extend::on_exec_setup = setup, start_error);
  } else if (command.output == Output::capture) {
    child.emplace(bp::exe = exe, bp::args = args, bp::extend::on_setup = env, bp::std_out > out_future, bp::std_err > err_future,
                  bp::std_in < in_pipe, ios, bp::on_exit = on_exit, bp::extend::on_exec_setup = setup,
                  start_error);
  } else {
    child.emplace(bp::exe = exe, bp::args = args, bp::extend::on_setup = env, ios, bp::on_exit = on_exit,
                  bp::extend::on_exec_setup = setup, start_error);
  }
  if (start_error) return fail_errno("exec", exe, start_error.value(), "cannot start the command");
  const pid_t pid = child->id();
  std::optional<ForegroundTerminal> terminal;
  if (take_terminal) terminal.emplace(pid);

  if (command.output == Output::capture) {
    if (command.input.empty()) {
      in_pipe.close();
    } else {
      boost::asio::async_write(in_pipe, boost::asio::buffer(command.input),
                               [&](const boost::system::error_code&, std::size_t) { in_pipe.close(); });
    }
  }

  ProcessResult result;
  auto copy_new_output = [&] {
    if (!follow_fd) return;
    char buf[16384];
    ssize_t n;
    while ((n = ::read(follow_fd.get(), buf, sizeof(buf))) > 0) {
      // A vanished terminal is ignored: the log has it all.
      [[maybe_unused]] ssize_t w = ::write(command.tee_fd, buf, static_cast<std::size_t>(n));
      result.out.append(buf, static_cast<std::size_t>(n));
      if (result.out.size() > 128UL * 1024) result.out.erase(0, result.out.size() - 64UL * 1024);
    }
  };
  const auto deadline = started + command.timeout;
  if (command.output == Output::tee) {
    while (!exited && std::chrono::steady_clock::now() < deadline) {
      ios.run_for(std::chrono::milliseconds(100));
      copy_new_output();
    }
  } else {
    ios.run_for(command.timeout);
  }
  if (!exited || !ios.stopped()) {
    // Work remains after the timeout: the child, or a descendant holding its output open, is
    // still running. Kill the whole process group and collect what is left.
    result.timed_out = !exited;
    ::kill(-pid, SIGKILL);
    if (!exited) ::kill(pid, SIGKILL);
    ios.run_for(std::chrono::seconds(10));
  }
  child->wait();  // reaps if the exit handler has not
  terminal.reset();  // the terminal back to the guard
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  copy_new_output();
  if (tee_fd) ::fsync(tee_fd.get());
  if (result.out.size() > 64UL * 1024) result.out.erase(0, result.out.size() - 64UL * 1024);
  if (command.output == Output::capture) {
    if (out_future.valid() && out_future.wait_for(std::chrono::seconds(0)) == std::future_status::ready)
      result.out = out_future.get();
    if (err_future.valid() && err_future.wait_for(std::chrono::seconds(0)) == std::future_status::ready)
      result.err = err_future.get();
  }
  if (sandbox_out) {
    result.out.resize(kSandboxOutputMax);
    ssize_t n = ::pread(sandbox_out.get(), result.out.data(), result.out.size(), 0);
    result.out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!result.out.empty() && result.out.back() == '\0') result.out.pop_back();  // the unwritten rest
  }
  native_status = child->native_exit_code();  // the raw wait status
  if (WIFEXITED(native_status)) {
    result.exit_code = result.timed_out ? -1 : WEXITSTATUS(native_status);
  } else if (WIFSIGNALED(native_status)) {
    result.signal = WTERMSIG(native_status);
    if (result.timed_out && result.signal == SIGKILL) result.signal = 0;
  }
  if (result.timed_out) result.exit_code = -1;
  return result;
}

}  // namespace guard::base
