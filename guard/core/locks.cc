#include "guard/core/locks.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "base/strings.h"
#include "guard/core/liveness.h"

namespace guard {

base::Result<GuardLock> GuardLock::acquire(const std::string& run_dir) {
  if (::mkdir(run_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return base::fail_errno("mkdir", run_dir, errno, "cannot create the run directory");
  std::string path = run_dir + "/lock";
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) return base::fail_errno("open", path, errno, "cannot open the guard lock");
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return base::fail_errno("flock", path);
    char buf[32] = {};
    [[maybe_unused]] ssize_t n = ::pread(fd.get(), buf, sizeof(buf) - 1, 0);
    return base::fail("locked", path,
                      "another upgrade-guard is running (pid " + std::string(base::trim(buf)) +
                          "); wait for it to finish");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) == 0) {
    [[maybe_unused]] ssize_t n = ::pwrite(fd.get(), pid.data(), pid.size(), 0);
  }
  return GuardLock(std::move(fd));
}

base::Result<GuardLock> GuardLock::acquire(const std::string& run_dir, std::chrono::seconds timeout,
                                          const std::function<void(const std::string&)>& waiting) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto next_message = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    auto lock = acquire(run_dir);
    if (lock || lock.error().what != "locked" || std::chrono::steady_clock::now() >= deadline) return lock;
    if (waiting && std::chrono::steady_clock::now() >= next_message) {
      waiting(lock.error().to_string());
      next_message += std::chrono::seconds(10);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

base::Result<int> dpkg_lock_holder(const base::Root& root, const std::string& path) {
  auto fd = root.open(path, O_RDONLY | O_NOFOLLOW);
  if (!fd) {
    if (fd.error().err == ENOENT) return 0;
    return base::fail(fd.error());
  }
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd->get(), F_GETLK, &fl) != 0) return base::fail_errno("fcntl F_GETLK", path);
  return fl.l_type == F_UNLCK ? 0 : static_cast<int>(fl.l_pid);
}

base::Result<void> wait_for_dpkg_locks(const base::Root& root, std::chrono::seconds timeout,
                                       const std::function<void(int, const std::string&)>& waiting) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto next_message = std::chrono::steady_clock::now();
  for (;;) {
    int holder = 0;
    std::string held;
    for (const char* path : {"/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"}) {
      auto pid = dpkg_lock_holder(root, path);
      if (!pid) return base::fail(pid.error());
      if (*pid != 0) {
        holder = *pid;
        held = path;
        break;
      }
    }
    if (holder == 0) return {};
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      return base::fail("locked", held,
                        "the package manager (pid " + std::to_string(holder) + ") still holds its lock after " +
                            std::to_string(timeout.count()) + "s; try again when it has finished");
    }
    if (now >= next_message) {
      if (waiting) waiting(holder, held);
      next_message = now + std::chrono::seconds(10);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

base::Result<void> wait_for_quiet_root(const base::Root& root, const std::string& key, const state::StateStore& store,
                                       std::chrono::seconds timeout,
                                       const std::function<void(int, const std::string&)>& waiting) {
  auto runs = store.unfinished_runs();
  if (!runs) return base::fail(runs.error());
  for (const auto& run : *runs) {
    if (run.root != key || !run_process_alive(run)) continue;
    return base::fail("busy", store.path(),
                      "guarded run " + std::to_string(run.id) + " (pid " + std::to_string(run.pid) +
                          ") is changing " + key + "; try again when it has finished");
  }
  return wait_for_dpkg_locks(root, timeout, waiting);
}

}  // namespace guard
