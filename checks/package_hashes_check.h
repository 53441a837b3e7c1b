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
// With ctx.hash_cache.file and a full scope (the audit), a file whose identity matches its
// entry in the verified-hash cache (checks/hash_cache.h) and whose expected md5 is the one
// verified is not read; the cache is rewritten after the run with every file verified (files
// changed less than a second before the run are left out). The run is deep (nothing trusted)
// with ctx.hash_cache.deep, without a usable cache, or when the policy's audit.deep_every has
// passed since the last deep run. CheckOutput::hashed/cached and the note give the counts.
// A status file dpkg would refuse is an error (dpkg-state reports it): nothing is checked.
class PackageHashesCheck : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "package-hashes"; }
  [[nodiscard]] std::string_view summary() const override {
    return "md5sums of installed package files and conffiles match the package database";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
