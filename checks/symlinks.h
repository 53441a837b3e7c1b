// The symlinks check: dangling links and link loops in system directories, the merged-/usr
// aliases (/bin -> usr/bin ...), and /etc/alternatives.
#pragma once

#include <string>
#include <vector>

#include "checks/check.h"

namespace guard::checks {

class SymlinksCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "symlinks"; }
  [[nodiscard]] std::string_view summary() const override {
    return "dangling links and link loops in system dirs; merged-/usr aliases; /etc/alternatives";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// The default scan paths: /usr/bin /usr/sbin /usr/lib /usr/libexec /etc /boot /usr/local/bin /opt.
[[nodiscard]] const std::vector<std::string>& default_symlink_scan_paths();

// Findings about the merged-/usr aliases of `root` (none on an unmerged root, where /bin is a
// directory): each of /bin /sbin /lib (/lib64 when /usr/lib64 exists, /lib32 /libx32 when
// present) must be a link resolving to /usr/<same>, itself a directory.
[[nodiscard]] std::vector<Finding> check_usrmerge(const base::Root& root);

}  // namespace guard::checks
