// Read access to a root's dpkg database (/var/lib/dpkg): status, info files, diversions and
// path filters, all through base::Root, plus the path -> package index other checks use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "checks/check.h"
#include "checks/dpkg_status.h"

namespace guard::checks {

// The merged-/usr spelling of a path: "/bin/ls" -> "/usr/bin/ls", "/lib64" -> "/usr/lib64";
// other paths unchanged. Aliased top dirs: bin, sbin, lib, lib32, lib64, libx32.
[[nodiscard]] std::string usr_canonical(std::string_view path);
// The other spelling of an aliased path: "/usr/bin/ls" <-> "/bin/ls"; empty when none.
[[nodiscard]] std::string usr_alias(std::string_view path);
// True for paths in a bin, sbin or lib dir (either spelling), where a missing, changed or
// dangling file breaks programs: "/lib/x86_64-linux-gnu/libc.so.6" yes, "/usr/share/doc/x" no.
[[nodiscard]] bool is_system_path(std::string_view path);

// The diversions of a root, looked up by path in either merged-/usr spelling.
class Diversions {
 public:
  Diversions() = default;
  explicit Diversions(std::vector<Diversion> list);
  // The diversion of `path`, or nullptr. e.g. find("/usr/bin/sh") finds "/bin/sh".
  [[nodiscard]] const Diversion* find(std::string_view path) const;
  // Where the file that package `package` (its name, no arch) lists at `path` lives on disk:
  // the divert-to path when another package (or a local diversion) diverted it, else `path`.
  // e.g. location("/bin/sh", "bash") == "/bin/sh.distrib" with dash's diversion.
  [[nodiscard]] std::string location(std::string_view path, std::string_view package) const;
  [[nodiscard]] const std::vector<Diversion>& all() const { return list_; }

 private:
  std::vector<Diversion> list_;
  std::vector<std::pair<std::string, std::size_t>> index_;  // canonical from -> list_ index, sorted
};

// A root's dpkg database, loaded once: the status file's packages, diversions and the
// path-exclude/path-include filters of /etc/dpkg/dpkg.cfg and dpkg.cfg.d/*.
class DpkgDb {
 public:
  // Loads from `root`, which must outlive the DpkgDb. Fails when the status file is missing or malformed (the error names
  // the line); a missing diversions file or dpkg.cfg.d is fine.
  [[nodiscard]] static base::Result<DpkgDb> load(const base::Root& root);

  [[nodiscard]] const std::vector<PackageRecord>& packages() const { return packages_; }
  [[nodiscard]] const Diversions& diversions() const { return diversions_; }
  [[nodiscard]] const PathFilter& filter() const { return filter_; }

  // The root-relative path of a package's info file, e.g. ("libc6:amd64", ".list") ->
  // "/var/lib/dpkg/info/libc6:amd64.list"; for Multi-Arch: same packages whose database still
  // uses the old name, "/var/lib/dpkg/info/libc6.list".
  [[nodiscard]] std::string info_path(const PackageRecord& pkg, std::string_view suffix) const;
  // The paths of info/<pkg>.list; an error (ENOENT) when the file is missing.
  [[nodiscard]] base::Result<std::vector<std::string>> list(const PackageRecord& pkg) const;
  // The entries of info/<pkg>.md5sums; nullopt when the package has none.
  [[nodiscard]] base::Result<std::optional<std::vector<Md5Entry>>> md5sums(const PackageRecord& pkg) const;

 private:
  explicit DpkgDb(const base::Root& root) : root_(&root) {}
  const base::Root* root_;
  std::vector<PackageRecord> packages_;
  Diversions diversions_;
  PathFilter filter_;
};

// True when `e` is a parse error of a dpkg database file (the file is damaged), not a failure
// to read it.
[[nodiscard]] bool is_dpkg_parse_error(const base::Error& e);

// The root's dpkg database, or nullopt when the root has none (no /var/lib/dpkg/status: a
// check then says it was skipped, with kNoDpkgDatabase as the reason). A status file that dpkg
// would refuse is an error naming its line: the checks of package files cannot run on it (the
// check errors, so the verdict fails even when dpkg-state is set to warn).
[[nodiscard]] base::Result<std::optional<DpkgDb>> load_dpkg_db_if_present(const base::Root& root);
inline constexpr const char* kNoDpkgDatabase = "no dpkg database (/var/lib/dpkg/status)";

// True when the file checks should look at `pkg` under `scope`: a full scope, or the package
// named by its key ("libc6:amd64"), its bare name ("libc6") or name:arch.
[[nodiscard]] bool in_scope(const Scope& scope, const PackageRecord& pkg);

// The command an administrator runs to repair the root: as is for the live system,
// prefixed with "chroot DIR " for another root. e.g. "chroot /mnt/x dpkg --configure -a".
[[nodiscard]] std::string repair_command(const base::Root& root, std::string_view command);

// Which installed package owns a path, from the .list files of every package with files on
// disk. Both merged-/usr spellings find the same owner; a diverted file is owned at its
// divert-to path by the package it came from, and at the original path by the diverter.
// Memory: one byte arena plus 12 bytes per path (about 12 MB for 150k paths).
class PackageOwners {
 public:
  [[nodiscard]] static base::Result<PackageOwners> load(const base::Root& root);
  [[nodiscard]] static PackageOwners build(const DpkgDb& db);
  // The owning package's key ("libc6:amd64", "bash"), or "" when no package lists the path.
  // A path several packages list (a directory) gives the first in name order.
  // e.g. owner("/bin/bash") == owner("/usr/bin/bash") == "bash".
  [[nodiscard]] std::string owner(std::string_view root_relative_path) const;
  // The owner when exactly one package lists the path, else "" (a shared directory such as
  // /usr/sbin belongs to no single package). e.g. sole_owner("/usr/sbin") == "".
  [[nodiscard]] std::string sole_owner(std::string_view root_relative_path) const;
  [[nodiscard]] std::size_t size() const { return entries_.size(); }

 private:
  static constexpr std::uint32_t kShared = 0x80000000U;  // in Entry::package: several packages list it
  struct Entry {
    std::uint32_t offset;
    std::uint32_t length;
    std::uint32_t package;
  };
  std::string arena_;
  std::vector<Entry> entries_;  // sorted by path, then package name
  std::vector<std::string> packages_;

  // The entry for `path` (either /usr spelling), or nullptr.
  [[nodiscard]] const Entry* find(std::string_view root_relative_path) const;
};

}  // namespace guard::checks
