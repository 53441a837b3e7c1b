#include "checks/apt_hooks.h"

#include <set>

#include <fmt/format.h>

#include "checks/interpreters.h"

namespace guard::checks {

std::vector<HookProgram> apt_hook_programs(const base::Root& root, const AptConfig& conf) {
  std::vector<HookProgram> out;
  for (auto& hook : apt_hooks(conf))
    for (auto& p : shell_programs(hook.command)) out.push_back({p.word, resolve_command(root, p.word), p.guarded, p.tested, hook});
  return out;
}

base::Result<CheckOutput> AptHooksCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  auto exists = ctx.root.exists("/etc/apt");
  if (!exists || !*exists) {
    out.skipped = "no /etc/apt (apt is not installed)";
    return out;
  }
  AptConfigRead read = read_apt_config(ctx.root);
  out.items = read.files;
  std::set<std::string> reported;
  for (const auto& e : read.errors) {
    if (!reported.insert(fmt::format("{}:{}", e.file, e.line)).second) continue;  // an include chain's "Included from here"
    std::string where = e.line > 0 ? fmt::format("line {}: ", e.line) : std::string();
    out.findings.push_back(make_finding(
        "apt-hooks", Severity::block, e.file,
        fmt::format("{}apt refuses its configuration: {} (every apt-get run fails with \"E: Syntax error {}:{}\")",
                    where, e.what, e.file, e.line),
        fmt::format("fix or remove {} (apt-config dump shows what apt reads)", e.file),
        fmt::format("syntax:{}", e.line)));
  }
  for (const auto& p : apt_hook_programs(ctx.root, read.conf)) {
    ++out.items;
    std::string target = p.path.empty() ? p.word : p.path;
    std::string problem = p.path.empty() ? "is not installed" : executable_problem(ctx.root, p.path);
    if (problem.empty() || p.tested) continue;  // a hook that tests for its program expects it may be gone
    std::string id = fmt::format("{}:{}", p.hook.key, p.word);
    if (!reported.insert(p.hook.file + "\n" + id).second) continue;
    bool update = p.hook.key.starts_with("APT::Update");
    std::string effect = p.guarded ? "the hook tolerates its failure"
                         : update  ? "every apt-get update would fail: security updates stop"
                                   : "every apt run that calls dpkg would fail";
    out.findings.push_back(make_finding(
        "apt-hooks", p.guarded ? Severity::info : Severity::block, p.hook.file,
        fmt::format("line {}: {} runs {}, which {}: {}", p.hook.line, p.hook.key, target, problem, effect),
        fmt::format("reinstall the package that ships {}, or remove the hook from {}", target, p.hook.file), id));
  }
  return out;
}

}  // namespace guard::checks
