#include "guard/run/apt_session.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/strings.h"
#include "guard/core/locks.h"

namespace guard::run {
namespace {

constexpr const char* kSessionFile = "/hook-session";

std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The parent of `pid` from /proc/PID/stat (0 when unreadable). The command name in field 2
// may hold spaces and parentheses, so fields are counted after its last ')'.
int parent_of(int pid) {
  auto stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  auto close = stat->rfind(')');
  if (close == std::string::npos) return 0;
  std::string rest = stat->substr(close + 1);
  auto fields = base::split_ws(rest);  // state, ppid, ...
  return fields.size() > 1 ? std::atoi(std::string(fields[1]).c_str()) : 0;
}

}  // namespace

base::Result<AptProcess> describe_process(int pid) {
  std::string dir = "/proc/" + std::to_string(pid);
  auto stat = slurp(dir + "/stat");
  if (!stat) return base::fail_errno("open", dir + "/stat", ESRCH, "no such process");
  AptProcess p;
  p.pid = pid;
  if (auto close = stat->rfind(')'); close != std::string::npos) {
    std::string rest = stat->substr(close + 1);
    auto fields = base::split_ws(rest);  // fields[0] is field 3 (state), fields[19] field 22
    if (fields.size() > 19) p.start_ticks = std::strtoull(std::string(fields[19]).c_str(), nullptr, 10);
  }
  if (auto cmdline = slurp(dir + "/cmdline")) {
    std::string arg;
    for (char c : *cmdline) {
      if (c != '\0') {
        arg += c;
        continue;
      }
      p.command.push_back(arg);
      arg.clear();
    }
    if (!arg.empty()) p.command.push_back(arg);
  }
  return p;
}

base::Result<AptProcess> find_apt_process(const base::Root& root) {
  for (const char* lock : {"/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"}) {
    auto holder = dpkg_lock_holder(root, lock);
    if (holder && *holder > 0) {
      if (auto p = describe_process(*holder)) return p;
    }
  }
  int shell = static_cast<int>(::getppid());
  int apt = parent_of(shell);
  if (apt <= 1) return base::fail("hook", "/proc", "cannot tell which apt process runs this hook");
  return describe_process(apt);
}

bool same_process_running(const AptProcess& apt) {
  auto now = describe_process(apt.pid);
  return now && now->start_ticks == apt.start_ticks;
}

std::optional<HookSession> read_hook_session(const std::string& run_dir, const std::string& root_key,
                                             const AptProcess& apt) {
  auto text = slurp(run_dir + kSessionFile);
  if (!text) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  HookSession s;
  try {
    s.apt.pid = j.at("apt_pid").get<int>();
    s.apt.start_ticks = j.at("apt_start_ticks").get<std::uint64_t>();
    s.run_id = j.at("run").get<std::int64_t>();
    s.root = j.at("root").get<std::string>();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  if (s.root != root_key || s.apt.pid != apt.pid || s.apt.start_ticks != apt.start_ticks) return std::nullopt;
  return s;
}

base::Result<void> write_hook_session(const std::string& run_dir, const HookSession& s) {
  if (::mkdir(run_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return base::fail_errno("mkdir", run_dir, errno, "cannot create the run directory");
  nlohmann::json j{{"apt_pid", s.apt.pid},
                   {"apt_start_ticks", s.apt.start_ticks},
                   {"run", s.run_id},
                   {"root", s.root}};
  return base::write_file_atomic(run_dir + kSessionFile, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600);
}

}  // namespace guard::run
