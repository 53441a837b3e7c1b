#include "guard/core/liveness.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.h"

namespace guard {

std::string current_boot_id() {
  base::UniqueFd fd(::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  char buf[128];
  ssize_t n = ::read(fd.get(), buf, sizeof(buf));
  if (n <= 0) return {};
  std::string s(buf, static_cast<std::size_t>(n));
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return {};
  return buf;
}

namespace {

bool process_alive(std::int64_t pid, const std::string& boot_id) {
  if (pid <= 0) return false;
  if (!boot_id.empty() && boot_id != current_boot_id()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

bool run_process_alive(const state::RunRecord& run) {
  return !run.finished_unix && process_alive(run.pid, run.boot_id);
}

bool rollback_process_alive(const state::RollbackRecord& rollback) {
  return rollback.state == state::RollbackState::running && process_alive(rollback.pid, rollback.boot_id);
}

}  // namespace guard
