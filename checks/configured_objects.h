// Shared objects that configuration names by a string (PAM modules, NSS modules, ld.so.preload
// entries): reading such configuration safely, and judging whether a named object loads the way
// its loader (dlopen, ld.so) would load it — the object itself and its whole dependency tree.
// Used by the pam, nss and preload checks, and by the libraries check, which rates a named
// object like a linked library instead of an optional plugin.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "checks/report.h"

#include "base/error.h"
#include "base/root.h"
#include "checks/dpkg_db.h"
#include "checks/elf_resolver.h"

namespace guard::checks {

// One reason a named object does not load, as the tail of a finding's message, with a stable
// id suffix and a repair hint. e.g. {"needs libldap-2.5.so.0, which is not found in the library
// search path", "needed:libldap-2.5.so.0", "find the package that ships ..."}; `missing` is true
// when the object itself is not installed (rather than installed and broken).
struct LoadFailure {
  std::string message;
  std::string id;
  std::string hint;
  bool missing = false;
};

// Why the shared object at `path` (root-relative, links followed) would not load as dlopen()
// loads it in a program of the root's native class and machine: missing, not ELF, malformed,
// of another class or machine, not a shared object, or a problem anywhere in its dependency
// tree (interpreter, DT_NEEDED, symbol versions; loaded breadth-first like ld.so). Empty when
// it loads. e.g. "/usr/lib/x86_64-linux-gnu/security/pam_ldap.so" -> {needs libldap-2.5.so.0...}.
[[nodiscard]] std::vector<LoadFailure> load_failures(LibraryResolver& resolver, const std::string& path);

// The object that plain library names (no '/') are looked up for: dlopen("libnss_ldap.so.2")
// from libc, an ld.so.preload entry without a '/'. /bin/sh of the root (no RUNPATH, native
// class), or its dynamic linker; nullopt when the root has neither.
[[nodiscard]] std::optional<LoadedElf> search_anchor(LibraryResolver& resolver);

// Repair hints for missing objects, reading dpkg's file lists once, on the first question.
class ReinstallHints {
 public:
  explicit ReinstallHints(const base::Root& root) : root_(root) {}
  // "apt-get install --reinstall libpam-modules" when a package lists `path` (either /usr
  // spelling, or its directory's canonical path), else `fallback`.
  [[nodiscard]] std::string for_path(const std::string& path, const std::string& fallback);

 private:
  const base::Root& root_;
  std::optional<base::Result<PackageOwners>> owners_;
};

// Findings about lines of configuration files, e.g. path "/etc/pam.d/common-auth", message
// "line 17: auth required pam_foo.so: /usr/lib/.../pam_foo.so is not installed". The same
// problem (same file and id) on several lines is one finding: the first line's, with
// "(also on lines 20, 31)" and the highest severity, so a baseline keeps matching when
// other lines of the file move.
class LineFindings {
 public:
  explicit LineFindings(std::string check) : check_(std::move(check)) {}
  void add(Severity severity, const std::string& file, std::size_t line, const std::string& text,
           const std::string& detail, const std::string& hint, const std::string& id);
  [[nodiscard]] std::vector<Finding> take();

 private:
  std::string check_;
  std::vector<Finding> findings_;
  std::vector<std::vector<std::size_t>> also_;
};

// The canonical root-relative paths of every shared object that the root's configuration
// names and that exists: PAM modules of every stack, NSS modules of nsswitch.conf and the
// entries of /etc/ld.so.preload. e.g. {"/usr/lib/x86_64-linux-gnu/security/pam_unix.so",
// "/usr/lib/x86_64-linux-gnu/libnss_systemd.so.2"}.
[[nodiscard]] std::set<std::string> objects_named_by_configuration(const base::Root& root);

}  // namespace guard::checks
