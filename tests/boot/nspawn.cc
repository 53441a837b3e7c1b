#include "tests/boot/nspawn.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "base/root.h"
#include "base/strings.h"
#include "tests/common/test_env.h"

namespace guard::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

constexpr const char* kNspawn = "/usr/bin/systemd-nspawn";
constexpr const char* kPropagationDir = "/run/systemd/nspawn";

base::Result<base::ProcessResult> run_cmd(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  base::SystemCommandRunner runner;
  base::Command cmd;
  cmd.argv = argv;
  cmd.timeout = timeout;
  return runner.run(cmd);
}

// Runs argv and fails unless it exits 0; returns its stdout.
base::Result<std::string> run_ok(const std::vector<std::string>& argv, int timeout_seconds = 600) {
  auto r = run_cmd(argv, std::chrono::seconds(timeout_seconds));
  if (!r) return base::fail(r.error());
  if (!r->ok()) return base::fail(argv.front(), "", r->describe() + ": " + r->err + r->out);
  return r->out;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// The child of systemd-nspawn that is the container's init: in another PID namespace, named systemd.
pid_t find_leader(pid_t nspawn) {
  std::string own_ns = fs::read_symlink("/proc/self/ns/pid").string();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return -1;
  pid_t found = -1;
  while (struct dirent* de = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(de->d_name, &end, 10);
    if (end == de->d_name || *end != '\0') continue;
    std::string dir = std::string("/proc/") + de->d_name;
    std::string status = read_file(dir + "/status");
    auto ppid_at = status.find("\nPPid:\t");
    if (ppid_at == std::string::npos || std::atol(status.c_str() + ppid_at + 7) != nspawn) continue;
    std::error_code ec;
    std::string ns = fs::read_symlink(dir + "/ns/pid", ec).string();
    if (ec || ns == own_ns) continue;
    if (base::trim(read_file(dir + "/comm")) != "systemd") continue;
    found = static_cast<pid_t>(pid);
    break;
  }
  ::closedir(proc);
  return found;
}

}  // namespace

base::Result<std::string> prepare_boot_root(const std::string& dir) {
  auto cached = run_ok({std::string(UG_SOURCE_DIR) + "/scripts/test-root", "server"}, 3600);
  if (!cached) return base::fail(cached.error());
  auto lines = base::split(base::trim(*cached), '\n');
  std::string source(base::trim(lines.back()));
  std::string root_dir = dir + "/root";
  std::error_code mk;
  fs::create_directories(root_dir, mk);
  if (auto c = run_ok({"cp", "-a", "--reflink=auto", source + "/.", root_dir + "/"}); !c) return base::fail(c.error());

  if (auto installed = install_guard_into(root_dir); !installed) return base::fail(installed.error());

  // The units as `make install` would configure them for a /usr build.
  std::vector<std::string> units;
  for (const auto& entry : fs::directory_iterator(std::string(UG_SOURCE_DIR) + "/packaging/systemd")) {
    if (entry.path().extension() != ".in") continue;
    std::string unit = entry.path().stem().string();
    std::string text = read_file(entry.path().string());
    text = replace_all(text, "@UG_SBINDIR@", "/usr/sbin");
    text = replace_all(text, "@UG_STATE_DIR@", "/var/lib/upgrade-guard");
    std::string unit_path = root_dir + "/etc/systemd/system/";
    unit_path += unit;
    write_file(unit_path, text);
    units.push_back(unit);
  }
  std::vector<std::string> enable{"systemctl", "--root=" + root_dir, "enable"};
  enable.insert(enable.end(), units.begin(), units.end());
  if (auto e = run_ok(enable, 120); !e) return base::fail(e.error());

  const std::string hook = "/packaging/molly-guard/run.d/20-upgrade-guard";
  write_file(root_dir + "/etc/molly-guard/run.d/20-upgrade-guard", read_file(std::string(UG_SOURCE_DIR) + hook), 0755);

  // The sanitizer build's runtime options (set by ctest, tests/CMakeLists.txt) reach what runs
  // through nsenter by inheritance; the container's units get them from its systemd manager.
  std::string sanitizer_env;
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0')
      sanitizer_env += std::string(" \"") + name + "=" + value + "\"";
  }
  if (!sanitizer_env.empty())
    write_file(root_dir + "/etc/systemd/system.conf.d/50-sanitizer.conf", "[Manager]\nDefaultEnvironment=" + sanitizer_env + "\n");
  return root_dir;
}

base::Result<std::unique_ptr<BootedContainer>> BootedContainer::start(const std::string& root_dir,
                                                                      const std::string& name,
                                                                      const std::string& log_path,
                                                                      const std::vector<std::string>& extra_args) {
  std::error_code ec;
  fs::create_directories(kPropagationDir, ec);
  if (ec) return base::fail("mkdir", kPropagationDir, ec.message());
  base::UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!log) return base::fail_errno("open", log_path);
  base::UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null) return base::fail_errno("open", "/dev/null");

  // Everything the child needs is built before fork: after it only async-signal-safe calls.
  std::vector<std::string> args{kNspawn, "-q", "--register=no", "--keep-unit", "-M", name, "-D", root_dir};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  args.insert(args.end(), {"-b", "--console=passive"});
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const auto start = steady_clock::now();

  pid_t pid = ::fork();
  if (pid < 0) return base::fail_errno("fork", "");
  if (pid == 0) {
    // The equivalent of: unshare -m sh -c 'mount -t tmpfs tmpfs /run/systemd/nspawn && exec systemd-nspawn ...'
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the test process died: nspawn halts the container
    ::dup2(null.get(), STDIN_FILENO);
    ::dup2(log.get(), STDOUT_FILENO);
    ::dup2(log.get(), STDERR_FILENO);
    static const char kFail[] = "boot harness: unshare/mount of /run/systemd/nspawn failed\n";
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", kPropagationDir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
      (void)!::write(STDERR_FILENO, kFail, sizeof(kFail) - 1);
      ::_exit(126);
    }
    ::execv(kNspawn, argv.data());
    ::_exit(127);
  }
  std::unique_ptr<BootedContainer> box(new BootedContainer(pid, log_path));
  box->started_ = start;
  return box;
}

base::Result<std::unique_ptr<BootedContainer>> BootedContainer::boot(const std::string& root_dir,
                                                                     const std::string& name,
                                                                     const std::string& log_path,
                                                                     std::chrono::seconds timeout,
                                                                     const std::vector<std::string>& extra_args) {
  auto started = start(root_dir, name, log_path, extra_args);
  if (!started) return started;
  std::unique_ptr<BootedContainer> box = std::move(*started);
  const auto deadline = box->started_ + timeout;
  auto remaining = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
  };
  if (auto init = box->wait_init(remaining()); !init) return base::fail(init.error());
  if (auto up = box->wait_running(remaining()); !up) return base::fail(up.error());
  box->boot_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - box->started_);
  return box;
}

base::Result<void> BootedContainer::wait_init(std::chrono::milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  while (leader_ < 0) {
    if (!running())
      return base::fail("systemd-nspawn", log_path_, "nspawn exited before the container's init started; console:\n" + log());
    if (steady_clock::now() >= deadline)
      return base::fail("systemd-nspawn", log_path_,
                        "no container init after " + std::to_string(timeout.count()) + " ms; console:\n" + log());
    leader_ = find_leader(nspawn_);
    if (leader_ < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return {};
}

base::Result<void> BootedContainer::wait_running(std::chrono::milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  std::string state;
  for (;;) {
    if (!running())
      return base::fail("systemd-nspawn", log_path_, "the container exited while booting; console:\n" + log());
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0)
      return base::fail("systemd-nspawn", log_path_,
                        "not running after " + std::to_string(timeout.count()) + " ms (state: " + state +
                            "); console:\n" + log());
    auto r = run_cmd({"nsenter", "-t", std::to_string(leader_), "-a", "--", "systemctl", "is-system-running", "--wait"},
                     left);
    if (r) state = std::string(base::trim(r->out));
    if (state == "running" || state == "degraded") return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // systemd's bus is not up yet
  }
}

BootedContainer::~BootedContainer() {
  if (!running()) return;
  ::kill(nspawn_, SIGTERM);  // nspawn asks the container's init to halt (SIGRTMIN+3)
  if (wait_exit(std::chrono::seconds(30))) return;
  kill_hard();
}

void BootedContainer::kill_hard() {
  if (!running()) return;
  if (leader_ > 0) ::kill(leader_, SIGKILL);  // PID 1 of its namespace: takes every process in it along
  ::kill(nspawn_, SIGKILL);
  int status = 0;
  ::waitpid(nspawn_, &status, 0);
  exited_ = true;
}

base::ProcessResult BootedContainer::exec(const std::vector<std::string>& argv, int timeout_seconds) const {
  std::vector<std::string> full{"nsenter", "-t", std::to_string(leader_), "-a", "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  return run(full, timeout_seconds);
}

bool BootedContainer::running() {
  if (exited_) return false;
  pid_t r = ::waitpid(nspawn_, &status_, WNOHANG);
  if (r == nspawn_ || (r < 0 && errno == ECHILD)) exited_ = true;
  return !exited_;
}

bool BootedContainer::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  while (running()) {
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

std::string BootedContainer::log() const {
  return read_file(log_path_);
}

}  // namespace guard::testing
