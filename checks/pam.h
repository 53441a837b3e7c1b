// The pam check: every PAM stack (/etc/pam.d, and /usr/lib/pam.d for the names /etc/pam.d does
// not override) names modules that load — each module file exists in libpam's security
// directory (or at its absolute path) and loads with its whole dependency tree — and includes
// stacks that exist, without cycles. A module a login stack requires that does not load
// ("Module is unknown") blocks.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "checks/check.h"
#include "checks/elf_resolver.h"

namespace guard::checks {

// One logical line of a PAM stack file (backslash continuations joined, comments removed).
// e.g. "-session optional pam_systemd.so" at line 25 -> {line=25, kind=module, silent=true,
// type="session", control="optional", target="pam_systemd.so"}.
struct PamLine {
  enum class Kind { module, include, at_include, malformed };
  std::size_t line = 0;  // first physical line, from 1
  Kind kind = Kind::module;
  bool silent = false;   // a leading '-' on the type: libpam does not log a module it cannot load
  bool hard = false;     // a failure of the module fails the stack: required, requisite, or
                         // brackets with an action other than ignore/ok (a jump, bad, die, done...)
  std::string type;      // "auth", "account", "session", "password" as written, without '-'
  std::string control;   // "required", "include", "[success=1 default=ignore]"...
  std::string target;    // the module ("pam_unix.so", "/opt/x/pam_x.so") or the included stack
  std::string problem;   // for malformed lines: what libpam would reject, e.g. "unknown type \"auht\""
  [[nodiscard]] std::string text() const;  // "auth required pam_unix.so", "@include common-auth"
};

// Parses a stack file's bytes as libpam does (Linux-PAM's _pam_parse_conf_file, with Debian's
// "@include NAME"); never fails: a line libpam would install as an always-failing handler is
// Kind::malformed.
[[nodiscard]] std::vector<PamLine> parse_pam_stack(std::string_view text);

// The stacks whose failure locks people out: login, sshd, su, sudo, passwd, cron, the
// "other" fallback, Debian's common-* files... (and whatever they include).
[[nodiscard]] bool pam_gates_logins(std::string_view stack_name);

class PamCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "pam"; }
  [[nodiscard]] std::string_view summary() const override {
    return "PAM stacks name modules that load with all their libraries, and stacks that exist";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// The root-relative paths of the modules every stack names (resolved, not necessarily existing),
// e.g. {"/usr/lib/x86_64-linux-gnu/security/pam_unix.so", ...}.
[[nodiscard]] std::vector<std::string> pam_named_objects(const base::Root& root, LibraryResolver& resolver);

}  // namespace guard::checks
