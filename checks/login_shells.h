// The `login-shells` check: can the accounts that log in still start their shell?
#pragma once

#include "checks/check.h"

namespace guard::checks {

// Reads /etc/passwd, /etc/shadow, /etc/login.defs (UID_MIN, default 1000) and /etc/shells.
// An account can log in when its shell is set and not nologin/false, and it is root, has a
// uid >= UID_MIN, or has a usable password in /etc/shadow (not empty, `*` or `!`-prefixed).
// Its shell must be an executable file, a script's interpreter must exist, an ELF shell must
// load (its interpreter and libraries): else a blocking finding on /etc/passwd "line N: user
// alice: login shell /usr/bin/zsh is not installed", id "shell:alice". The same for a system
// account that cannot log in only warns; an /etc/shells entry that does not exist warns.
class LoginShellsCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "login-shells"; }
  [[nodiscard]] std::string_view summary() const override {
    return "the login shells of accounts that can log in exist and start; /etc/shells entries exist";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
