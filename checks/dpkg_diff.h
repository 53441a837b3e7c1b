// What an upgrade changed in the package database: the diff of two dpkg status files, and
// the check scope it implies.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "checks/check.h"
#include "checks/dpkg_status.h"

namespace guard::checks {

// One package that differs. Versions and states are empty/not_installed on the side where
// the package had no files. e.g. {package="curl", before_version="7.88.1-10+deb12u5",
// after_version="7.88.1-10+deb12u8", ...}.
struct PackageChange {
  std::string package;  // key as dpkg names it: "libc6:amd64", "curl"
  std::string before_version;
  std::string after_version;
  DpkgState before_state = DpkgState::not_installed;
  DpkgState after_state = DpkgState::not_installed;
};

// Packages installed, removed, upgraded, downgraded (by Debian version order), and those
// whose version stayed but whose state or reinst-required flag changed. Each list is sorted
// by package. A package counts as present when its state is unpacked or later (half-installed
// too: its files may be partly there); config-files counts as removed.
struct StatusDiff {
  std::vector<PackageChange> installed;
  std::vector<PackageChange> removed;
  std::vector<PackageChange> upgraded;
  std::vector<PackageChange> downgraded;
  std::vector<PackageChange> state_changed;

  [[nodiscard]] bool empty() const {
    return installed.empty() && removed.empty() && upgraded.empty() && downgraded.empty() && state_changed.empty();
  }
};

// Diffs two parsed status files. e.g. before = status of the snapshot, after = the live one.
[[nodiscard]] StatusDiff diff_status(const std::vector<PackageRecord>& before,
                                     const std::vector<PackageRecord>& after);
// The same from the raw bytes of both files; an error names the file ("before"/"after") and line.
[[nodiscard]] base::Result<StatusDiff> diff_status(std::string_view before_bytes, std::string_view after_bytes);

// Diffs the dpkg status files of two roots, e.g. a snapshot mounted at
// /run/upgrade-guard/snap/@ (before) and the live "/" (after).
[[nodiscard]] base::Result<StatusDiff> diff_roots(const base::Root& before, const base::Root& after);

// The scope for post-upgrade file checks: every package installed, upgraded, downgraded or
// state-changed (removed packages have no files left to check). full=false even when empty.
[[nodiscard]] Scope scope_from_diff(const StatusDiff& diff);

}  // namespace guard::checks
