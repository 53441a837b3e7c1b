#include "checks/login_shells.h"

#include <cstdlib>
#include <map>
#include <set>

#include <fmt/format.h>

#include "base/input_limits.h"
#include "base/strings.h"
#include "checks/elf_resolver.h"
#include "checks/interpreters.h"
#include "checks/libraries.h"

namespace guard::checks {
namespace {

constexpr std::uint64_t kMaxAccountsBytes = 64 << 20;

bool refuses_login(std::string_view shell) {
  auto name = base::basename(shell);
  return shell.empty() || name == "nologin" || name == "false" || name == "true";
}

// The lines of a text file with their 1-based numbers, comments and empty lines dropped.
std::vector<std::pair<std::size_t, std::string_view>> lines_of(std::string_view text) {
  std::vector<std::pair<std::size_t, std::string_view>> out;
  std::size_t n = 0;
  for (auto line : base::split(text, '\n')) {
    ++n;
    auto t = base::trim(line);
    if (!t.empty() && t.front() != '#') out.emplace_back(n, t);
  }
  return out;
}

class LoginShellsRun {
 public:
  explicit LoginShellsRun(const CheckContext& ctx) : root_(ctx.root), resolver_(ctx.root) {}

  base::Result<CheckOutput> run() {
    auto passwd = root_.read_file("/etc/passwd", kMaxAccountsBytes);
    if (!passwd) {
      if (passwd.error().err == ENOENT) {
        out_.skipped = "no /etc/passwd";
        return std::move(out_);
      }
      return base::fail(passwd.error());
    }
    read_login_defs();
    read_shadow();
    for (const auto& [n, line] : lines_of(*passwd)) {
      auto f = base::split(line, ':');
      if (f.size() < 7 || f[0].starts_with("+") || f[0].starts_with("-")) continue;  // NIS compat entries
      ++out_.items;
      std::string user(f[0]);
      std::string shell(base::trim(f[6]));
      if (refuses_login(shell)) continue;
      char* end = nullptr;
      std::string uid_text(f[2]);
      unsigned long uid = std::strtoul(uid_text.c_str(), &end, 10);
      bool uid_ok = !uid_text.empty() && end != nullptr && *end == 0;
      bool logs_in = user == "root" || (uid_ok && uid == 0) || (uid_ok && uid >= uid_min_) || usable_password(user);
      check_shell(n, user, shell, logs_in ? Severity::block : Severity::warn);
    }
    check_shells_file();
    return std::move(out_);
  }

 private:
  void read_login_defs() {
    auto defs = root_.read_file("/etc/login.defs", base::limits::kConfigFileBytes);
    if (!defs) return;
    for (const auto& [n, line] : lines_of(*defs)) {
      auto w = base::split_ws(line);
      if (w.size() >= 2 && w[0] == "UID_MIN") {
        std::string v(w[1]);
        char* end = nullptr;
        unsigned long m = std::strtoul(v.c_str(), &end, 10);
        if (end != nullptr && *end == 0) uid_min_ = m;
      }
    }
  }

  void read_shadow() {
    auto shadow = root_.read_file("/etc/shadow", kMaxAccountsBytes);
    if (!shadow) return;
    for (const auto& [n, line] : lines_of(*shadow)) {
      auto f = base::split(line, ':');
      if (f.size() >= 2) passwords_[std::string(f[0])] = std::string(f[1]);
    }
  }

  // A password that lets the account log in: set and not locked ("*", "!..."); an empty one
  // logs in without a password where PAM allows it (nullok).
  bool usable_password(const std::string& user) const {
    auto it = passwords_.find(user);
    if (it == passwords_.end()) return false;
    return it->second.empty() || (it->second.front() != '*' && it->second.front() != '!');
  }

  void add(Severity s, std::size_t line, const std::string& user, const std::string& what, const std::string& hint) {
    out_.findings.push_back(make_finding("login-shells", s, "/etc/passwd",
                                         fmt::format("line {}: user {}: {}", line, user, what), hint, "shell:" + user));
  }

  void check_shell(std::size_t line, const std::string& user, const std::string& shell, Severity severity) {
    std::string hint = fmt::format("install the package that ships {}, or chsh -s /bin/bash {}", shell, user);
    if (shell.front() != '/') {
      add(severity, line, user, fmt::format("login shell {} is not an absolute path", shell), hint);
      return;
    }
    if (std::string problem = executable_problem(root_, shell); !problem.empty()) {
      add(severity, line, user,
          fmt::format("login shell {} {}", shell, problem == "does not exist" ? "is not installed" : problem), hint);
      return;
    }
    if (auto p = interpreter_problem(root_, shell)) {
      add(severity, line, user,
          fmt::format("login shell {} is a script whose interpreter {} {}", p->script, p->interpreter, p->problem),
          hint);
      return;
    }
    int err = 0;
    const ElfObject* elf = resolver_.load(shell, &err);
    if (elf == nullptr) return;  // a script (checked above) or not ELF
    auto real = root_.realpath(shell);
    std::vector<std::string> problems;
    resolver_.load_tree(LoadedElf{real ? *real : shell, elf}, [&](const TreeObject& t) {
      for (auto& f : dependency_findings(shell, t.problems, Severity::block, "login-shells"))
        problems.push_back(t.top ? f.message : fmt::format("loads {}, which {}", t.object.path, f.message));
    });
    if (!problems.empty())
      add(severity, line, user, fmt::format("login shell {} cannot start: {}", shell, base::join(problems, "; ")),
          fmt::format("reinstall the packages that ship {} and its libraries", shell));
  }

  void check_shells_file() {
    auto shells = root_.read_file("/etc/shells", base::limits::kConfigFileBytes);
    if (!shells) return;
    for (const auto& [n, line] : lines_of(*shells)) {
      std::string shell(line);
      ++out_.items;
      if (shell.front() != '/') continue;
      auto e = root_.exists(shell);
      if (e && *e) continue;
      out_.findings.push_back(make_finding(
          "login-shells", Severity::warn, "/etc/shells",
          fmt::format("line {}: {} is listed but not installed (chsh refuses it)", n, shell),
          fmt::format("remove-shell {} (or install the package that ships it)", shell), "shells:" + shell));
    }
  }

  const base::Root& root_;
  LibraryResolver resolver_;
  CheckOutput out_;
  unsigned long uid_min_ = 1000;
  std::map<std::string, std::string> passwords_;
};

}  // namespace

base::Result<CheckOutput> LoginShellsCheck::run(const CheckContext& ctx) const { return LoginShellsRun(ctx).run(); }

}  // namespace guard::checks
