#include "checks/pam.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fmt/format.h>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "base/input_limits.h"
#include "base/strings.h"
#include "checks/configured_objects.h"

namespace guard::checks {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Splits a logical line into libpam's tokens: words, or "[...]" kept whole (it may hold spaces).
// libpam's word separators (_pam_StrTok(buf, " \n\t", ...)) and '\r' (a CRLF file): not \v or
// \f, which libpam keeps in a word. The same set as base::trim's, so every line that is not
// blank has a first word.
bool pam_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::vector<std::string> tokenize(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && pam_space(s[i])) ++i;
    if (i >= s.size()) break;
    std::size_t start = i;
    if (s[i] == '[') {
      while (i < s.size() && s[i] != ']') i += (s[i] == '\\' && i + 1 < s.size()) ? 2 : 1;
      if (i < s.size()) ++i;  // the ']'
    } else {
      while (i < s.size() && !pam_space(s[i])) ++i;
    }
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

// "[success=1 default=ignore]": nullopt when libpam would reject it, else whether an action
// other than ignore/ok appears (a jump, bad, die, done, reset).
std::optional<bool> bracket_is_hard(std::string_view control) {
  if (control.size() < 2 || control.back() != ']') return std::nullopt;
  bool hard = false;
  auto body = control.substr(1, control.size() - 2);
  auto pairs = base::split_ws(body);
  if (pairs.empty()) return std::nullopt;
  for (auto pair : pairs) {
    auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == pair.size()) return std::nullopt;
    auto action = pair.substr(eq + 1);
    if (iequals(action, "ignore") || iequals(action, "ok")) continue;
    bool jump = std::all_of(action.begin(), action.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!jump && !iequals(action, "bad") && !iequals(action, "die") && !iequals(action, "done") &&
        !iequals(action, "reset"))
      return std::nullopt;
    hard = true;
  }
  return hard;
}

PamLine parse_line(std::size_t number, std::string_view logical) {
  PamLine l;
  l.line = number;
  auto tok = tokenize(logical);
  auto malformed = [&](std::string why) {
    l.kind = PamLine::Kind::malformed;
    l.control = std::string(base::trim(logical));  // the whole line, for messages and ids
    l.problem = std::move(why);
    l.hard = true;  // libpam installs a handler that always fails
    return l;
  };
  if (tok[0][0] == '@') {
    l.type = tok[0];
    if (tok[0] != "@include") return malformed(fmt::format("unknown directive \"{}\"", tok[0]));
    if (tok.size() < 2) return malformed("@include without a stack name");
    l.kind = PamLine::Kind::at_include;
    l.hard = true;
    l.target = tok[1];
    return l;
  }
  std::string type = tok[0];
  if (type[0] == '-') {
    l.silent = true;
    type.erase(0, 1);
  }
  l.type = type;
  if (!iequals(type, "auth") && !iequals(type, "account") && !iequals(type, "session") && !iequals(type, "password"))
    return malformed(fmt::format("unknown module type \"{}\"", type));
  if (tok.size() < 2) return malformed("no control flag");
  l.control = tok[1];
  const std::string& c = l.control;
  if (iequals(c, "include") || iequals(c, "substack")) {
    if (tok.size() < 3) return malformed("no stack name to " + c);
    l.kind = PamLine::Kind::include;
    l.hard = true;  // an include that fails to load installs an always-failing handler
    l.target = tok[2];
    return l;
  }
  if (iequals(c, "required") || iequals(c, "requisite")) {
    l.hard = true;
  } else if (iequals(c, "optional") || iequals(c, "sufficient")) {
    l.hard = false;
  } else if (c[0] == '[') {
    auto hard = bracket_is_hard(c);
    if (!hard) return malformed(fmt::format("invalid control \"{}\"", c));
    l.hard = *hard;
  } else {
    return malformed(fmt::format("unknown control flag \"{}\"", c));
  }
  if (tok.size() < 3) return malformed("no module name");
  l.target = tok[2];
  return l;
}

}  // namespace

std::string PamLine::text() const {
  switch (kind) {
    case Kind::at_include: return "@include " + target;
    case Kind::include:
    case Kind::module: return fmt::format("{}{} {} {}", silent ? "-" : "", type, control, target);
    case Kind::malformed: break;
  }
  return control;
}

std::vector<PamLine> parse_pam_stack(std::string_view text) {
  std::vector<PamLine> out;
  std::string logical;
  std::size_t first = 0;
  std::size_t number = 0;
  for (auto physical : base::split(text, '\n')) {
    ++number;
    if (logical.empty()) first = number;
    auto hash = physical.find('#');
    if (hash != std::string_view::npos) physical = physical.substr(0, hash);
    if (!physical.empty() && physical.back() == '\r') physical.remove_suffix(1);
    bool continued = !physical.empty() && physical.back() == '\\';
    if (continued) physical.remove_suffix(1);
    logical += physical;
    if (continued) {
      logical += ' ';
      continue;
    }
    if (!base::trim(logical).empty()) out.push_back(parse_line(first, logical));
    logical.clear();
  }
  if (!base::trim(logical).empty()) out.push_back(parse_line(first, logical));
  return out;
}

bool pam_gates_logins(std::string_view name) {
  static const std::set<std::string_view> gating = {"login",     "sshd",   "su",    "su-l",     "sudo",
                                                    "sudo-i",    "passwd", "chpasswd", "runuser", "runuser-l",
                                                    "systemd-user", "cron", "other"};
  return gating.count(name) != 0 || name.rfind("common-", 0) == 0;
}

namespace {

constexpr const char* kConfigDirs[] = {"/etc/pam.d", "/usr/lib/pam.d"};  // libpam's order
constexpr std::size_t kMaxIncludeLevel = 16;                          // PAM_SUBSTACK_MAX_LEVEL

// Backups that package tools leave next to a stack; no service is ever named like them.
bool backup_name(std::string_view n) {
  if (n.empty() || n[0] == '.' || n.back() == '~') return true;
  for (std::string_view s : {".dpkg-old", ".dpkg-dist", ".dpkg-new", ".dpkg-bak", ".dpkg-tmp", ".ucf-old", ".ucf-dist",
                             ".ucf-new", ".pam-old", ".bak", ".orig", ".save", ".swp"})
    if (n.size() > s.size() && n.substr(n.size() - s.size()) == s) return true;
  return false;
}

struct StackFile {
  std::vector<PamLine> lines;
  std::string error;  // why it could not be read
  bool blocking_error = true;
};

// The stacks of a root and libpam's lookups in it.
class PamModel {
 public:
  PamModel(const base::Root& root, LibraryResolver& resolver) : root_(root), resolver_(resolver) {
    for (std::string_view dir : {kConfigDirs[1], kConfigDirs[0]}) {  // /etc/pam.d wins: read it last
      auto walked = root.walk(dir, [&](const base::WalkEntry& e) {
        if (e.path == dir) return base::WalkAction::next;
        if (e.type == DT_DIR) return base::WalkAction::skip_subtree;
        // Every name libpam would open as a service, a FIFO or a device too (reported unreadable).
        if (!backup_name(e.name))
          stacks_[std::string(e.name)] = std::string(e.path);
        return base::WalkAction::next;
      });
      if (walked && dir == kConfigDirs[0]) has_etc_ = true;
    }
    module_dir_ = security_dir();
  }

  [[nodiscard]] bool has_config() const { return has_etc_ || !stacks_.empty(); }
  [[nodiscard]] const std::map<std::string, std::string>& stacks() const { return stacks_; }

  // The file an include names, as libpam opens it: an absolute path as is, a name in
  // /etc/pam.d, else in /usr/lib/pam.d; nullopt when none exists.
  [[nodiscard]] std::optional<std::string> stack_file(const std::string& name) const {
    if (!name.empty() && name[0] == '/') {
      auto e = root_.exists(name);
      return e && *e ? std::optional<std::string>(name) : std::nullopt;
    }
    if (name.find('/') == std::string::npos) {
      auto it = stacks_.find(name);
      if (it != stacks_.end()) return it->second;
    }
    for (const char* dir : kConfigDirs) {
      std::string p = base::normalize_path(base::join_path(dir, name));
      auto e = root_.exists(p);
      if (e && *e) return p;
    }
    return std::nullopt;
  }

  // An included file libpam would read but this check does not: outside the stack
  // directories (e.g. "@include /etc/shadow" or "../../root/x"), whose lines are not PAM
  // configuration that anyone meant to be echoed into a report.
  [[nodiscard]] static bool outside_config_dirs(const std::string& path) {
    std::string n = base::normalize_path(path);
    return n.rfind("/etc/pam.d/", 0) != 0 && n.rfind("/usr/lib/pam.d/", 0) != 0;
  }

  const StackFile& file(const std::string& path) {
    auto it = files_.find(path);
    if (it != files_.end()) return it->second;
    StackFile f;
    auto text = root_.read_file(path, base::limits::kConfigFileBytes);
    if (text) {
      f.lines = parse_pam_stack(*text);
    } else {
      f.error = text.error().message.empty() ? text.error().to_string() : text.error().message;
      f.blocking_error = text.error().message.find("larger than") == std::string::npos;
    }
    return files_.emplace(path, std::move(f)).first->second;
  }

  // Where libpam dlopen()s a module from: an absolute path as given, else in the security
  // directory; "$ISA" as libpam replaces it.
  [[nodiscard]] std::string module_path(const std::string& target) const {
    std::string t = target;
    if (auto isa = t.find("$ISA"); isa != std::string::npos) t.replace(isa, 4, ".");
    return base::normalize_path(t[0] == '/' ? t : module_dir_ + "/" + t);
  }

  // Every stack file reachable from `starts` through includes.
  std::set<std::string> closure(const std::vector<std::string>& starts) {
    std::set<std::string> seen(starts.begin(), starts.end());
    std::vector<std::string> queue(starts.begin(), starts.end());
    while (!queue.empty()) {
      std::string p = queue.back();
      queue.pop_back();
      for (const auto& l : file(p).lines) {
        if (l.kind != PamLine::Kind::include && l.kind != PamLine::Kind::at_include) continue;
        auto target = stack_file(l.target);
        if (target && !outside_config_dirs(*target) && seen.insert(*target).second) queue.push_back(*target);
      }
    }
    return seen;
  }

 private:
  // The security directory of the root's libpam: /lib/<tuple>/security (bookworm's libpam),
  // /usr/lib/<tuple>/security (trixie's; the same directory on a merged-/usr root).
  std::string security_dir() const {
    auto native = resolver_.native();
    auto dirs = resolver_.expand_search_path("/$LIB/security:/usr/$LIB/security", "/", native);
    for (const auto& d : dirs) {
      auto st = root_.stat(d);
      if (st && S_ISDIR(st->st_mode)) {
        auto real = root_.realpath(d);
        return real ? *real : d;
      }
    }
    return dirs.empty() ? "/lib/security" : dirs.front();
  }

  const base::Root& root_;
  LibraryResolver& resolver_;
  std::map<std::string, std::string> stacks_;  // name -> file; /etc/pam.d overrides /usr/lib/pam.d
  std::unordered_map<std::string, StackFile> files_;
  std::string module_dir_;
  bool has_etc_ = false;
};

// Include cycles and nesting deeper than libpam follows: (file, line, description).
struct IncludeProblem {
  std::string file;
  const PamLine* line;
  std::string detail;
};

std::vector<IncludeProblem> include_problems(PamModel& model, const std::set<std::string>& files) {
  std::vector<IncludeProblem> out;
  std::map<std::string, int> color;          // 0 white, 1 on the path, 2 done
  std::map<std::string, std::size_t> height;  // longest include chain below a finished file
  std::vector<std::string> path;
  std::function<void(const std::string&)> visit = [&](const std::string& f) {
    color[f] = 1;
    path.push_back(f);
    std::size_t h = 0;
    for (const auto& l : model.file(f).lines) {
      if (l.kind != PamLine::Kind::include && l.kind != PamLine::Kind::at_include) continue;
      auto t = model.stack_file(l.target);
      if (!t || PamModel::outside_config_dirs(*t)) continue;
      int c = color[*t];
      if (c == 1) {
        auto from = std::find(path.begin(), path.end(), *t);
        std::vector<std::string> cycle(from, path.end());
        cycle.push_back(*t);
        out.push_back({f, &l,
                       fmt::format("includes itself ({}): libpam gives up after {} levels and this part of the "
                                   "stack always fails",
                                   base::join(cycle, " -> "), kMaxIncludeLevel)});
        continue;
      }
      if (c == 0 && path.size() <= kMaxIncludeLevel * 4) visit(*t);
      h = std::max(h, height[*t] + 1);
    }
    height[f] = h;
    color[f] = 2;
    path.pop_back();
  };
  for (const auto& f : files)
    if (color[f] == 0) visit(f);
  for (const auto& f : files) {
    if (height[f] < kMaxIncludeLevel) continue;
    for (const auto& l : model.file(f).lines) {
      if (l.kind != PamLine::Kind::include && l.kind != PamLine::Kind::at_include) continue;
      out.push_back({f, &l,
                     fmt::format("includes nest {} levels deep: libpam gives up after {} and this part of the "
                                 "stack always fails",
                                 height[f], kMaxIncludeLevel)});
      break;
    }
  }
  return out;
}

}  // namespace

base::Result<CheckOutput> PamCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  LibraryResolver resolver(ctx.root);
  PamModel model(ctx.root, resolver);
  if (!model.has_config()) {
    out.skipped = "no PAM configuration (/etc/pam.d)";
    return out;
  }
  std::vector<std::string> all, gating_roots;
  for (const auto& [name, file] : model.stacks()) {
    all.push_back(file);
    if (pam_gates_logins(name)) gating_roots.push_back(file);
  }
  std::set<std::string> gating = model.closure(gating_roots);
  std::set<std::string> files = model.closure(all);

  LineFindings found("pam");
  ReinstallHints hints(ctx.root);
  std::unordered_map<std::string, std::vector<LoadFailure>> loads;  // per module path
  for (const auto& f : files) {
    bool gates = gating.count(f) != 0;
    const StackFile& stack = model.file(f);
    if (!stack.error.empty()) {
      Severity s = gates && stack.blocking_error ? Severity::block : Severity::warn;
      out.findings.push_back(make_finding("pam", s, f, "cannot be read: " + stack.error, "", "unreadable"));
      continue;
    }
    for (const auto& l : stack.lines) {
      ++out.items;
      Severity sev = l.hard && gates ? Severity::block : Severity::warn;
      const char* effect = l.hard ? "this stack fails" : "libpam skips the line";
      switch (l.kind) {
        case PamLine::Kind::malformed:
          found.add(sev, f, l.line, l.text(),
                    fmt::format("libpam cannot parse it ({}) and installs a handler that always fails", l.problem),
                    "fix or remove the line", "malformed:" + l.control);
          break;
        case PamLine::Kind::include:
        case PamLine::Kind::at_include:
          if (auto target = model.stack_file(l.target); !target) {
            found.add(sev, f, l.line, l.text(),
                      fmt::format("the stack {} does not exist in /etc/pam.d or /usr/lib/pam.d: {}", l.target, effect),
                      "restore " + l.target + " (its package: dpkg -S " + l.target + "), or remove the line",
                      "include:" + l.target);
          } else if (PamModel::outside_config_dirs(*target)) {
            found.add(Severity::info, f, l.line, l.text(),
                      fmt::format("{} is outside /etc/pam.d and /usr/lib/pam.d: its lines are not checked", *target),
                      "keep included stacks in /etc/pam.d", "include-outside:" + l.target);
          }
          break;
        case PamLine::Kind::module: {
          std::string path = model.module_path(l.target);
          auto it = loads.find(path);
          if (it == loads.end()) it = loads.emplace(path, load_failures(resolver, path)).first;
          for (const auto& failure : it->second) {
            // A missing "-type optional" module is what the '-' is for: libpam skips it quietly.
            // Without the '-' it logs an error and skips it: a package never installed (e.g.
            // libpam-systemd for systemd's own systemd-user stack) is a note, not a regression.
            if (failure.missing && l.silent && !l.hard) continue;
            Severity s = failure.missing && !l.hard ? Severity::info : sev;
            std::string detail = fmt::format("{}: {} (\"Module is unknown\")", failure.message, effect);
            // dpkg's file lists (read once, on the first question) only for what matters: a
            // note about a module never installed has no package to reinstall anyway.
            std::string install = "install the package that ships " + path;
            std::string hint = !failure.missing       ? failure.hint
                               : s == Severity::info ? install
                                                     : hints.for_path(path, install);
            found.add(s, f, l.line, l.text(), detail, hint + "; or remove the line",
                      "module:" + l.target + (failure.missing ? "" : ":" + failure.id));
          }
          break;
        }
      }
    }
  }
  for (const auto& p : include_problems(model, files)) {
    Severity sev = gating.count(p.file) != 0 ? Severity::block : Severity::warn;
    found.add(sev, p.file, p.line->line, p.line->text(), p.detail, "remove the include that closes the cycle",
              "include-cycle:" + p.line->target);
  }
  for (auto& f : found.take()) out.findings.push_back(std::move(f));
  return out;
}

std::vector<std::string> pam_named_objects(const base::Root& root, LibraryResolver& resolver) {
  PamModel model(root, resolver);
  std::vector<std::string> all;
  for (const auto& [name, file] : model.stacks()) all.push_back(file);
  std::set<std::string> paths;
  for (const auto& f : model.closure(all))
    for (const auto& l : model.file(f).lines)
      if (l.kind == PamLine::Kind::module) paths.insert(model.module_path(l.target));
  return {paths.begin(), paths.end()};
}

}  // namespace guard::checks
