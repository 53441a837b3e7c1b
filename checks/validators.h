// The `validators` check: the checked root's own configuration validators (`sshd -t`,
// `nginx -t`, ...), the one place the checks run the root's code. Only a daemon's own parser
// knows whether the upgraded daemon accepts the configuration the old one did (sshd dropping an
// algorithm): without this the next restart, or the reboot, is the test, and a refused sshd
// locks the administrator out. Contained by base::Sandbox (read-only root, no network, private
// namespaces, argv only, a timeout, bounded output).
#pragma once

#include <string>
#include <string_view>

#include "base/process.h"
#include "checks/check.h"

namespace guard::checks {

// validators: each enabled [[validator]] of the policy whose program is installed in the root
// (a regular, executable file at `program`, resolved inside the root) runs sandboxed, chrooted
// into the root. A non-zero exit is a finding at the validator's severity with id
// "validator:NAME" and path `program`, so a validator that failed before the upgrade (the
// baseline) is known after it and does not block. A failure whose output names something only a
// boot provides (`warn_output`), a timeout, or a sandbox that cannot be built is a warning:
// unknown, never a pass, never a false block.
class ValidatorsCheck : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "validators"; }
  [[nodiscard]] std::string_view summary() const override {
    return "the root's own configuration validators (sshd -t, nginx -t...), sandboxed";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// The first `max_lines` non-empty lines of a validator's output joined with " | ", each cut at
// 200 bytes, control characters and bytes >= 0x7f as \xNN, e.g.
// "/etc/ssh/sshd_config line 3: Bad SSH2 cipher spec 'no-such-cipher'."
[[nodiscard]] std::string output_excerpt(std::string_view out, std::size_t max_lines = 4);

}  // namespace guard::checks
