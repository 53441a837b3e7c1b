#include "checks/interpreters.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>

#include <fmt/format.h>

#include "base/input_limits.h"
#include "base/strings.h"
#include "checks/apt_hooks.h"
#include "checks/critical.h"
#include "checks/dpkg_status.h"
#include "checks/services.h"

namespace guard::checks {
namespace {

constexpr std::size_t kShebangBytes = 256;  // BINPRM_BUF_SIZE
constexpr int kMaxDepth = 4;                // the kernel's BINPRM_MAX_RECURSION
constexpr const char* kExecKeys[] = {"ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost",
                                     "ExecReload",    "ExecStop",     "ExecStopPost"};

// The program `env` runs for its argument: options and NAME=VALUE skipped ("-S python3 -u" -> "python3").
std::string env_target(std::string_view arg) {
  for (auto w : base::split_ws(arg)) {
    if (w.starts_with("-") || w.find('=') != std::string_view::npos) continue;
    return std::string(w);
  }
  return {};
}

}  // namespace

const std::vector<std::string>& default_exec_path() {
  static const std::vector<std::string> path = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                                "/usr/bin",        "/sbin",           "/bin"};
  return path;
}

std::string resolve_command(const base::Root& root, std::string_view word) {
  if (word.empty()) return {};
  if (word.find('/') != std::string_view::npos) return base::normalize_path(word.front() == '/' ? word : "/" + std::string(word));
  std::string first_existing;
  for (const auto& dir : default_exec_path()) {
    std::string p = base::join_path(dir, word);
    auto st = root.stat(p);
    if (!st) continue;
    if (S_ISREG(st->st_mode) && (st->st_mode & 0111)) return p;
    if (first_existing.empty()) first_existing = p;
  }
  return first_existing;
}

std::string executable_problem(const base::Root& root, const std::string& path) {
  auto st = root.stat(path);
  if (!st) {
    if (st.error().err == ELOOP) return "is a link loop";
    if (st.error().err == ENOENT || st.error().err == ENOTDIR) return "does not exist";
    return "cannot be examined: " + st.error().to_string();
  }
  if (!S_ISREG(st->st_mode)) return "is not a regular file";
  if ((st->st_mode & 0111) == 0) return "is not executable";
  return {};
}

Shebang parse_shebang(std::string_view head) {
  Shebang s;
  head = head.substr(0, kShebangBytes);
  if (!head.starts_with("#!")) return s;
  s.script = true;
  std::string_view line = head.substr(2, head.find('\n') == std::string_view::npos ? std::string_view::npos
                                                                                    : head.find('\n') - 2);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  std::size_t end = line.find_first_of(" \t");
  s.interpreter = std::string(line.substr(0, end));
  if (end != std::string_view::npos) s.arg = std::string(base::trim(line.substr(end)));
  return s;
}

Shebang read_shebang(const base::Root& root, const std::string& path) {
  auto fd = root.open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (!fd) return {};
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  char buf[kShebangBytes];
  ssize_t n = ::pread(fd->get(), buf, sizeof buf, 0);
  if (n <= 0) return {};
  return parse_shebang(std::string_view(buf, static_cast<std::size_t>(n)));
}

std::optional<InterpreterProblem> interpreter_problem(const base::Root& root, const std::string& path) {
  std::string script = path;
  for (int depth = 1;; ++depth) {
    Shebang s = read_shebang(root, script);
    if (!s.script) return std::nullopt;
    if (s.interpreter.empty()) return InterpreterProblem{"", "is empty: the #! line names no interpreter", script};
    if (depth > kMaxDepth)
      return InterpreterProblem{s.interpreter, fmt::format("is a script more than {} levels deep", kMaxDepth), script};
    std::string interp = s.interpreter.front() == '/' ? s.interpreter : "/" + s.interpreter;
    if (std::string problem = executable_problem(root, interp); !problem.empty())
      return InterpreterProblem{s.interpreter, problem, script};
    if (base::basename(interp) == "env") {
      std::string name = env_target(s.arg);
      if (!name.empty()) {
        std::string found = resolve_command(root, name);
        std::string problem = found.empty() ? "is not found in PATH" : executable_problem(root, found);
        if (!problem.empty()) return InterpreterProblem{name, problem, script};
        interp = found;
      }
    }
    script = interp;
  }
}

namespace {

class InterpretersRun {
 public:
  explicit InterpretersRun(const CheckContext& ctx) : ctx_(ctx), root_(ctx.root) {}

  base::Result<CheckOutput> run() {
    auto services = enabled_services(ctx_);
    if (!services) return base::fail(services.error());
    for (const auto& s : *services) {
      for (const char* key : kExecKeys) {
        for (const auto& v : unit_assignments(s.files, "Service", key)) {
          auto bin = exec_binary(v.assignment->value);
          if (!bin) continue;
          check(resolve_command(root_, *bin), Severity::block,
                fmt::format("{} line {}: {}= of the enabled unit {}", s.paths[v.file], v.assignment->line, key,
                            s.unit));
        }
      }
    }
    const auto& configured = ctx_.policy.check("critical").paths;
    for (const auto& p : configured.empty() ? default_critical_paths() : configured)
      check(p, Severity::block, "the critical programs of the policy");
    maintainer_scripts();
    auto apt = root_.exists("/etc/apt");
    if (apt && *apt) {
      AptConfigRead read = read_apt_config(root_);
      for (const auto& p : apt_hook_programs(root_, read.conf))
        check(p.path, p.guarded ? Severity::info : Severity::block,
              fmt::format("{} line {}: {}", p.hook.file, p.hook.line, p.hook.key));
    }
    return std::move(out_);
  }

 private:
  // The maintainer scripts dpkg runs next: those of packages it left in the middle of something.
  void maintainer_scripts() {
    auto bytes = root_.read_file("/var/lib/dpkg/status", base::limits::kDpkgStatusBytes);
    if (!bytes) return;
    auto records = parse_status(*bytes, "/var/lib/dpkg/status");
    if (!records) return;  // the dpkg-state check reports a database dpkg cannot read
    for (const auto& r : *records) {
      if (r.state != DpkgState::half_installed && r.state != DpkgState::unpacked &&
          r.state != DpkgState::half_configured && r.state != DpkgState::triggers_awaited &&
          r.state != DpkgState::triggers_pending)
        continue;
      for (const char* script : {"preinst", "postinst", "prerm", "postrm"}) {
        std::string path = fmt::format("/var/lib/dpkg/info/{}.{}", r.key(), script);
        auto e = root_.exists(path);
        if (!e || !*e) continue;
        check(path, Severity::block,
              fmt::format("/var/lib/dpkg/status line {}: package {} is {}, dpkg runs its {} next", r.line, r.key(),
                          to_string(r.state), script));
      }
    }
  }

  void check(const std::string& path, Severity severity, const std::string& named_by) {
    if (path.empty()) return;
    ++out_.items;
    auto [it, fresh] = cache_.try_emplace(path);
    if (fresh) it->second = interpreter_problem(root_, path);
    const auto& problem = it->second;
    if (!problem) return;
    if (!reported_.insert(problem->script + "\n" + problem->interpreter).second) return;
    std::string what = problem->interpreter.empty() ? "the #! line" : "interpreter " + problem->interpreter;
    std::string via = problem->script == path ? "" : fmt::format(", the interpreter of {}", path);
    out_.findings.push_back(make_finding(
        "interpreters", severity, problem->script,
        fmt::format("line 1: {} {} (named by {}{})", what, problem->problem, named_by, via),
        fmt::format("install the package that ships {} (apt-file search {}), or fix the #! line of {}",
                    problem->interpreter, problem->interpreter, problem->script),
        "interpreter:" + problem->interpreter));
  }

  const CheckContext& ctx_;
  const base::Root& root_;
  CheckOutput out_;
  std::map<std::string, std::optional<InterpreterProblem>> cache_;
  std::set<std::string> reported_;
};

}  // namespace

base::Result<CheckOutput> InterpretersCheck::run(const CheckContext& ctx) const { return InterpretersRun(ctx).run(); }

}  // namespace guard::checks
