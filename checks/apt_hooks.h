// The `apt-hooks` check: does apt's configuration parse as apt parses it, and do the programs
// its hooks run exist?
#pragma once

#include <string>
#include <vector>

#include "checks/apt_hooks_conf.h"
#include "checks/check.h"

namespace guard::checks {

// One program an apt hook runs, e.g. {"/usr/sbin/dpkg-preconfigure", "/usr/sbin/dpkg-preconfigure",
// guarded=true, hook={"DPkg::Pre-Install-Pkgs", ..., "/etc/apt/apt.conf.d/70debconf", 2}}.
struct HookProgram {
  std::string word;      // as written in the command
  std::string path;      // where /bin/sh finds it in the root ("" when nowhere)
  bool guarded = false;  // its failure does not fail the hook (see ShellProgram)
  bool tested = false;   // the hook tests for it before running it: absence is expected
  AptHook hook;
};

// The programs every hook of `conf` runs, resolved in `root`, in hook order.
[[nodiscard]] std::vector<HookProgram> apt_hook_programs(const base::Root& root, const AptConfig& conf);

// Reads /etc/apt/apt.conf.d/* and /etc/apt/apt.conf as apt does (see read_apt_config). A
// syntax error apt refuses blocks (every apt-get fails: "E: Syntax error FILE:LINE"); a program
// a hook runs (APT::Update::Pre-Invoke, DPkg::Pre-Invoke, DPkg::Post-Invoke,
// DPkg::Pre-Install-Pkgs, … see apt_hook_keys()) that does not exist or is not executable
// blocks (apt-get update or every dpkg run fails), unless a test guards it or `||` follows
// it (info; nothing when the test names the program: `[ -x P ] && P`). The finding's path is the configuration file, its message "line N: …"; the
// interpreters check reads the `#!` line of the programs found.
class AptHooksCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "apt-hooks"; }
  [[nodiscard]] std::string_view summary() const override {
    return "apt's configuration parses as apt parses it; the programs its hooks run exist";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
