// package-files: every path an installed package lists is on disk.
#pragma once

#include "checks/check.h"

namespace guard::checks {

// Every path in /var/lib/dpkg/info/<pkg>[:arch].list of a package with files on disk exists,
// found through the root's merged-/usr links and at its divert-to path when diverted, skipping
// what dpkg.cfg path-exclude kept off the disk. A missing file blocks in a bin, sbin or lib
// dir and warns elsewhere; a missing directory warns; a missing conffile is reported at the
// conffiles severity (capped at warn: admins delete them on purpose). A listed symlink must
// resolve: dangling blocks in bin/sbin/lib dirs, warns elsewhere. Items = listed paths.
// Honours ctx.scope: only the scope's packages (and listed paths in scope.paths).
class PackageFilesCheck : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "package-files"; }
  [[nodiscard]] std::string_view summary() const override {
    return "files, directories and links listed by installed packages exist and resolve";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
