// The libraries check: every ELF program and shared object under the scan paths finds its
// interpreter, each DT_NEEDED library and each symbol version it needs, the way ld.so would,
// and the symbols it imports are defined where ld.so would look (checks/elf_symbols.h).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "checks/check.h"
#include "checks/elf_resolver.h"

namespace guard::checks {

class LibrariesCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "libraries"; }
  [[nodiscard]] std::string_view summary() const override {
    return "ELF programs and libraries find their interpreter, libraries and symbol versions";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// The default scan paths: /usr/bin /usr/sbin /usr/lib /usr/libexec /usr/local/bin /opt /usr/local/lib.
[[nodiscard]] const std::vector<std::string>& default_library_scan_paths();

// The scan paths that exist in the root, as canonical root-relative directories, without
// aliases of each other (/lib -> usr/lib) and without paths nested in another one.
// e.g. {"/bin", "/usr/bin", "/usr/lib"} on a merged-/usr root -> {"/usr/bin", "/usr/lib"}.
[[nodiscard]] std::vector<std::string> canonical_scan_paths(const base::Root& root, const std::vector<std::string>& paths);

// Every loadable ELF object (ET_EXEC/ET_DYN of any architecture) among the regular files
// under `paths` (canonical, see above), parsed through `resolver`'s cache. Kernel modules,
// firmware and separate debug info (/usr/lib/{modules,firmware,debug}) are not looked at:
// ld.so never loads them. `items` receives the number of regular files examined.
[[nodiscard]] std::vector<LoadedElf> scan_elf_objects(LibraryResolver& resolver, const std::vector<std::string>& paths,
                                                      std::uint64_t* items = nullptr);

// Findings for the problems of one object (check id "libraries" unless `check` says otherwise).
[[nodiscard]] std::vector<Finding> dependency_findings(const std::string& path, const std::vector<DependencyProblem>& problems,
                                                       Severity missing_severity, const std::string& check = "libraries");

// The reverse index for change-scoped checks: the ELF objects under `scan_paths` (the
// libraries defaults when empty) that need one of `changed`, each a soname ("libz.so.1",
// matched against DT_NEEDED) or a root-relative library path ("/usr/lib/x86_64-linux-gnu/libz.so.1.2.13",
// matched against what each DT_NEEDED resolves to, by inode). Sorted root-relative paths.
[[nodiscard]] base::Result<std::vector<std::string>> find_dependents(const base::Root& root,
                                                                     const std::set<std::string>& changed,
                                                                     const std::vector<std::string>& scan_paths = {});

}  // namespace guard::checks
