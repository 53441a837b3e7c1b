// dpkg-state: the package database is consistent, so apt and dpkg can work.
#pragma once

#include "checks/check.h"

namespace guard::checks {

// Blocks on a package that is half-installed, unpacked, half-configured, triggers-awaited or
// triggers-pending, or flagged reinst-required; on an updates journal file
// (/var/lib/dpkg/updates/0001: an interrupted dpkg run), and on a status file or journal entry
// that dpkg would refuse (parse_status: truncated, a field without a value it requires, a bad
// Status...), naming FILE:LINE: a damaged database is never read as a shorter valid one. The
// package-files and package-hashes checks then error out (no package's files are checked). Warns on leftover *.dpkg-new / *.dpkg-tmp files in the packages' directories.
// config-files packages and holds are fine. Items = packages. Always looks at every package.
class DpkgStateCheck : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "dpkg-state"; }
  [[nodiscard]] std::string_view summary() const override {
    return "dpkg database consistent: no unconfigured, half-installed or trigger-pending package";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
