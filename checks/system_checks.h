// Small checks about the system around the packages: free space, a writable root, backup
// freshness, and the administrator's own commands.
#pragma once

#include "checks/check.h"

namespace guard::checks {

// space: free bytes and inodes on the root's filesystem and on /boot. Warns below the
// policy's preflight minimums (an upgrade would be refused); blocks when a filesystem has
// under 1 MiB or no inode left (nothing can be written, a boot may fail).
class SpaceCheck : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "space"; }
  [[nodiscard]] std::string_view summary() const override { return "free space and inodes on / and /boot"; }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// filesystem: the root is mounted writable; on the live system, ext4 reports no errors
// (/sys/fs/ext4/<dev>/errors_count).
class FilesystemCheck : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "filesystem"; }
  [[nodiscard]] std::string_view summary() const override { return "root filesystem writable and error-free"; }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// backup: the last backup is no older than policy backup.max_age, by the mtime of the
// marker file (a path inside the root) or a command's exit status. Skipped when max_age is unset.
class BackupCheck : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "backup"; }
  [[nodiscard]] std::string_view summary() const override { return "the last backup is recent enough"; }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// custom: each [[custom]] command of the policy, run in the root (chrooted unless it is the
// live system) with its timeout; a non-zero exit or a timeout is a finding at its severity.
class CustomCheck : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "custom"; }
  [[nodiscard]] std::string_view summary() const override { return "the administrator's own check commands"; }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
