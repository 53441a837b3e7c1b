#include "checks/validators.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include "base/strings.h"

namespace guard::checks {
namespace {

constexpr std::size_t kMaxLineBytes = 200;

// The program is installed: a regular file with an execute bit, resolved inside the root.
bool installed(const base::Root& root, const std::string& program) {
  auto st = root.stat(program);
  return st && S_ISREG(st->st_mode) && (st->st_mode & 0111) != 0;
}

bool mentions_any(const std::string& out, const std::vector<std::string>& needles) {
  for (const auto& n : needles) {
    if (!n.empty() && out.find(n) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::string output_excerpt(std::string_view out, std::size_t max_lines) {
  std::string excerpt;
  std::size_t lines = 0;
  for (std::string_view line : base::split(out, '\n')) {
    line = base::trim(line);
    if (line.empty()) continue;
    if (lines == max_lines) {
      excerpt += " | ...";
      break;
    }
    if (lines++) excerpt += " | ";
    std::size_t shown = 0;
    for (char c : line.substr(0, kMaxLineBytes)) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u >= 0x7f)
        excerpt += fmt::format("\\x{:02x}", u);
      else
        excerpt += c;
      ++shown;
    }
    if (line.size() > shown) excerpt += "...";
  }
  return excerpt;
}

base::Result<CheckOutput> ValidatorsCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  for (const auto& v : ctx.policy.validators) {
    if (!v.enabled || v.severity == Severity::off || v.argv.empty() || !installed(ctx.root, v.program)) continue;
    ++out.items;
    if (ctx.runner == nullptr) return base::fail("run", v.program, "no command runner available");
    base::Command cmd;
    cmd.argv = v.argv;
    cmd.timeout = v.timeout;
    cmd.chroot = ctx.root.host_path("/");
    cmd.sandbox = base::Sandbox{v.runtime_dirs};
    auto r = ctx.runner->run(cmd);
    if (r && r->ok()) continue;

    const std::string shown = base::join(v.argv, " ");
    const std::string id = "validator:" + v.name;
    if (!r) {
      out.findings.push_back(make_finding(
          "validators", std::min(v.severity, Severity::warn), v.program,
          fmt::format("validator '{}' ({}) could not run in its sandbox: {}", v.name, shown, r.error().to_string()),
          "the sandbox needs root (mount, network and IPC namespaces)", id));
      continue;
    }
    std::string excerpt = output_excerpt(r->out);
    bool environmental = r->timed_out || mentions_any(r->out, v.warn_output);
    std::string message = fmt::format("validator '{}' ({}) {}{}{}", v.name, shown, r->describe(),
                                      excerpt.empty() ? "" : ": ", excerpt);
    std::string hint = r->timed_out
                           ? fmt::format("it did not finish in {}s; raise the [[validator]] timeout if it is slow",
                                         v.timeout.count())
                           : fmt::format("the daemon would refuse this configuration at its next start: fix it and "
                                         "run `{}` again",
                                         shown);
    if (environmental && !r->timed_out) hint = "it failed on something a booted system provides; verify after boot";
    out.findings.push_back(make_finding("validators", environmental ? std::min(v.severity, Severity::warn) : v.severity,
                                        v.program, std::move(message), std::move(hint), id));
  }
  if (out.items == 0) out.skipped = "no validator's program is installed in the root";
  return out;
}

}  // namespace guard::checks
