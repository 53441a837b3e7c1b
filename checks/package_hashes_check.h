// package-hashes: installed files still have the content their package shipped.
#pragma once

#include "checks/check.h"

namespace guard::checks {

// The MD5 (OpenSSL EVP) of every file in info/<pkg>.md5sums matches. A changed file blocks
// when it is an ELF object or lives in a bin, sbin or lib dir (a changed byte in a library
// must fail the check), and warns elsewhere (docs, data). Conffiles are compared with the
// status file's Conffiles md5 and reported at Policy::conffiles (default warn); entries
// marked obsolete or remove-on-upgrade, and "newconffile" ones (not yet configured), are not
// compared. Missing files are left to package-files. Files are hashed in parallel across
// cores, largest first, with 1 MiB reads; nothing is forked. Items = files hashed.
// Honours ctx.scope: only the scope's packages (and listed paths in scope.paths).
class PackageHashesCheck : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "package-hashes"; }
  [[nodiscard]] std::string_view summary() const override {
    return "md5sums of installed package files and conffiles match the package database";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
