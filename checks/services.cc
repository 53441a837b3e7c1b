#include "checks/services.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "base/dir.h"
#include "base/input_limits.h"
#include "base/strings.h"
#include "checks/unit_file.h"

namespace guard::checks {
namespace {

constexpr const char* kEtc = "/etc/systemd/system";
// systemd's fixed search path for Exec*= commands without a '/' (systemd.service(5)).
constexpr const char* kExecPath[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"};
constexpr const char* kExecKeys[] = {"ExecStart", "ExecStartPre", "ExecStartPost"};

class ServicesRun {
 public:
  explicit ServicesRun(const CheckContext& ctx) : root_(ctx.root) {
    lookup_.push_back(kEtc);
    if (ctx.live) lookup_.push_back("/run/systemd/system");
    lookup_.push_back("/lib/systemd/system");
    lookup_.push_back("/usr/lib/systemd/system");
  }

  base::Result<CheckOutput> run() {
    auto services = enabled();
    if (!services) return base::fail(services.error());
    if (!out_.skipped.empty()) return std::move(out_);
    check_default_target();
    for (const auto& s : *services) check_service(s);
    return std::move(out_);
  }

  // The enabled services whose conditions hold (findings about the links go to out_).
  base::Result<std::vector<EnabledService>> enabled() {
    bool systemd = false;
    for (const char* p : {"/lib/systemd/systemd", "/usr/lib/systemd/systemd"}) {
      auto e = root_.exists(p);
      if (e && *e) systemd = true;
    }
    if (!systemd) {
      out_.skipped = "not a systemd root (no /lib/systemd/systemd)";
      return std::vector<EnabledService>{};
    }
    auto names = base::list_dir(root_, kEtc);
    if (!names) return base::fail(names.error());
    std::map<std::string, std::string> enabled;  // unit name -> the link that enables it
    for (const auto& n : *names) {
      std::string path = std::string(kEtc) + "/" + n;
      auto lst = root_.stat(path, base::Follow::no);
      if (!lst) continue;
      if (S_ISDIR(lst->st_mode) && (n.ends_with(".wants") || n.ends_with(".requires"))) {
        auto links = base::list_dir(root_, path);
        if (!links) return base::fail(links.error());
        for (const auto& l : *links)
          if (std::string link = base::join_path(path, l); check_link(link, Severity::block)) enabled.emplace(l, link);
      } else if (S_ISLNK(lst->st_mode) && n != "default.target") {
        check_link(path, Severity::warn);  // an alias, e.g. sshd.service -> ssh.service
      }
    }
    std::vector<EnabledService> out;
    for (const auto& [unit, link] : enabled)
      if (unit.ends_with(".service"))
        if (auto s = load_service(unit, link)) out.push_back(std::move(*s));
    return out;
  }

 private:
  void add(Severity s, std::string path, std::string message, std::string hint, std::string id = {}) {
    out_.findings.push_back(make_finding("services", s, std::move(path), std::move(message), std::move(hint), std::move(id)));
  }

  bool is_masked(const std::string& path) const {
    auto target = root_.readlink(path);
    return target && (*target == "/dev/null");
  }

  // Checks the unit link `path`; true when it names a usable (not masked) unit.
  bool check_link(const std::string& path, Severity severity) {
    ++out_.items;
    auto lst = root_.stat(path, base::Follow::no);
    if (!lst) return false;
    if (!S_ISLNK(lst->st_mode)) return S_ISREG(lst->st_mode);
    if (is_masked(path)) return false;
    auto st = root_.stat(path);
    if (st && S_ISREG(st->st_mode)) return true;
    auto target = root_.readlink(path);
    std::string unit(base::basename(path));
    add(severity, path,
        fmt::format("{} links to {}, which {}: systemd cannot load {}", path, target ? *target : "?",
                    st ? "is not a unit file" : "does not exist", unit),
        fmt::format("systemctl disable {} (or reinstall the package that ships it)", unit));
    return false;
  }

  void check_default_target() {
    std::string found;
    for (const char* dir : {kEtc, "/lib/systemd/system", "/usr/lib/systemd/system"}) {
      std::string p = std::string(dir) + "/default.target";
      auto lst = root_.stat(p, base::Follow::no);
      if (lst) {
        found = p;
        break;
      }
    }
    ++out_.items;
    if (found.empty()) {
      add(Severity::block, "/lib/systemd/system/default.target",
          "there is no default.target: systemd would not know what to start at boot",
          "systemctl set-default multi-user.target");
      return;
    }
    if (is_masked(found)) {
      add(Severity::block, found, "default.target is masked (links to /dev/null): the boot would start nothing",
          "systemctl set-default multi-user.target");
      return;
    }
    auto st = root_.stat(found);
    if (!st || !S_ISREG(st->st_mode)) {
      auto target = root_.readlink(found);
      add(Severity::block, found,
          fmt::format("default.target links to {}, which does not exist: the boot would not reach a target",
                      target ? *target : "?"),
          "systemctl set-default multi-user.target");
    }
  }

  // The unit file for `name` in the lookup paths ("" when none); `masked` when it is /dev/null.
  std::string find_fragment(const std::string& name, bool* masked) const {
    for (const auto& dir : lookup_) {
      std::string p = dir + "/" + name;
      auto lst = root_.stat(p, base::Follow::no);
      if (!lst) continue;
      if (S_ISLNK(lst->st_mode) && is_masked(p)) {
        *masked = true;
        return {};
      }
      auto st = root_.stat(p);
      if (st && S_ISREG(st->st_mode)) return p;
    }
    return {};
  }

  static std::string template_of(const std::string& unit) {
    std::size_t at = unit.find('@');
    std::size_t dot = unit.rfind('.');
    if (at == std::string::npos || dot == std::string::npos || dot < at || at + 1 == dot) return {};
    return unit.substr(0, at + 1) + unit.substr(dot);
  }

  std::vector<std::string> drop_ins(const std::string& unit, const std::string& templ) const {
    std::map<std::string, std::string> by_name;  // file name -> path; first (highest priority) wins
    std::vector<std::string> subdirs{unit + ".d"};
    if (!templ.empty()) subdirs.push_back(templ + ".d");
    subdirs.push_back(unit.substr(unit.rfind('.') + 1) + ".d");  // e.g. service.d
    for (const auto& dir : lookup_) {
      for (const auto& sub : subdirs) {
        std::string d = dir + "/" + sub;
        auto names = base::list_dir(root_, d);
        if (!names) continue;
        for (const auto& n : *names)
          if (n.ends_with(".conf")) by_name.emplace(n, d + "/" + n);
      }
    }
    std::vector<std::string> out;
    out.reserve(by_name.size());
    for (auto& [name, path] : by_name) out.push_back(path);
    return out;
  }

  // True when the path conditions of the unit hold in the root (or cannot be judged).
  bool conditions_hold(const std::vector<UnitFile>& files) const {
    static const char* keys[] = {"ConditionPathExists", "ConditionFileIsExecutable", "ConditionPathIsDirectory",
                                 "ConditionFileNotEmpty", "ConditionDirectoryNotEmpty"};
    bool any_trigger = false, trigger_ok = false;
    for (const char* key : keys) {
      for (std::string v : unit_values(files, "Unit", key)) {
        bool trigger = false, negate = false;
        if (!v.empty() && v.front() == '|') trigger = true, v.erase(0, 1);
        if (!v.empty() && v.front() == '!') negate = true, v.erase(0, 1);
        if (v.empty() || v.front() != '/' || v.find('%') != std::string::npos) continue;
        auto st = root_.stat(v);
        bool ok = st.has_value();
        std::string_view k = key;
        if (ok && k == "ConditionFileIsExecutable") ok = S_ISREG(st->st_mode) && (st->st_mode & 0111);
        if (ok && k == "ConditionPathIsDirectory") ok = S_ISDIR(st->st_mode);
        if (ok && k == "ConditionFileNotEmpty") ok = S_ISREG(st->st_mode) && st->st_size > 0;
        if (ok && k == "ConditionDirectoryNotEmpty") {
          auto names = base::list_dir(root_, v);
          ok = S_ISDIR(st->st_mode) && names && !names->empty();
        }
        if (negate) ok = !ok;
        if (trigger) {
          any_trigger = true;
          trigger_ok = trigger_ok || ok;
        } else if (!ok) {
          return false;
        }
      }
    }
    return !any_trigger || trigger_ok;
  }

  std::optional<EnabledService> load_service(const std::string& unit, const std::string& link) {
    bool masked = false;
    std::string templ = template_of(unit);
    std::string fragment = find_fragment(unit, &masked);
    if (fragment.empty() && !masked && !templ.empty()) fragment = find_fragment(templ, &masked);
    if (masked) return std::nullopt;
    // A unit enabled by a link whose name is in no lookup path (systemctl link): its target.
    if (fragment.empty()) fragment = link;
    ++out_.items;
    EnabledService s{unit, {fragment}, {}};
    auto bytes = root_.read_file(fragment, base::limits::kConfigFileBytes);
    if (!bytes) return std::nullopt;
    s.files.push_back(parse_unit_file(*bytes));
    for (const auto& d : drop_ins(unit, templ)) {
      auto b = root_.read_file(d, base::limits::kConfigFileBytes);
      if (b) s.paths.push_back(d), s.files.push_back(parse_unit_file(*b));
    }
    if (!conditions_hold(s.files)) return std::nullopt;
    return s;
  }

  void check_service(const EnabledService& s) {
    const std::string& unit = s.unit;
    const std::string& fragment = s.paths.front();
    const auto& files = s.files;
    std::set<std::string> reported;
    for (const char* key : kExecKeys) {
      for (const auto& value : unit_values(files, "Service", key)) {
        auto bin = exec_binary(value);
        if (!bin || reported.count(*bin)) continue;
        std::string problem = binary_problem(*bin);
        if (problem.empty()) continue;
        reported.insert(*bin);
        add(Severity::block, fragment,
            fmt::format("{}={} of the enabled unit {}: {} {}, so the unit would fail at boot", key, *bin, unit, *bin,
                        problem),
            fmt::format("reinstall the package that ships {}, or systemctl disable {}", *bin, unit), "exec:" + *bin);
      }
    }
  }

  // "" when `bin` is an executable file in the root, else what is wrong.
  std::string binary_problem(const std::string& bin) const {
    std::vector<std::string> candidates;
    if (bin.front() == '/') {
      candidates.push_back(bin);
    } else {
      for (const char* dir : kExecPath) candidates.push_back(std::string(dir) + "/" + bin);
    }
    std::string problem = "does not exist";
    for (const auto& c : candidates) {
      auto st = root_.stat(c);
      if (!st) continue;
      if (S_ISREG(st->st_mode) && (st->st_mode & 0111)) return {};
      problem = "is not an executable file";
    }
    return problem;
  }

  const base::Root& root_;
  std::vector<std::string> lookup_;
  CheckOutput out_;
};

}  // namespace

std::optional<std::string> exec_binary(std::string_view value) {
  value = base::trim(value);
  if (value.starts_with("!!")) value.remove_prefix(2);
  while (!value.empty() && std::string_view("-@:+!").find(value.front()) != std::string_view::npos)
    value.remove_prefix(1);
  if (value.empty() || value.front() == '$') return std::nullopt;
  std::string word;
  if (value.front() == '"' || value.front() == '\'') {
    std::size_t close = value.find(value.front(), 1);
    word = std::string(value.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  } else {
    word = std::string(value.substr(0, value.find_first_of(" \t")));
  }
  // %% is a literal '%'; any other specifier depends on the unit instance or host.
  std::string plain = word;
  for (std::size_t p = plain.find("%%"); p != std::string::npos; p = plain.find("%%", p)) plain.erase(p, 2);
  if (word.empty() || plain.find('%') != std::string::npos || word.find('$') != std::string::npos) return std::nullopt;
  for (std::size_t p = word.find("%%"); p != std::string::npos; p = word.find("%%", p + 1)) word.erase(p, 1);
  return word;
}

base::Result<CheckOutput> ServicesCheck::run(const CheckContext& ctx) const {
  return ServicesRun(ctx).run();
}

base::Result<std::vector<EnabledService>> enabled_services(const CheckContext& ctx) {
  return ServicesRun(ctx).enabled();
}

}  // namespace guard::checks
