// The copy backend, for roots not on btrfs (ext4, xfs): copies the configuration, the boot
// files and the package database. It restores those and nothing else: binaries and libraries
// changed by an upgrade stay changed, and it says so in every rollback result.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "snapshots/backend.h"

namespace guard::snapshots {

// Root-relative directories the copy backend captures (plus the ESP when it is separate).
[[nodiscard]] const std::vector<std::string>& copy_backend_dirs();

// Snapshots live in `<state_dir>/snapshots/<id>/` (the captured directories under their
// root-relative paths, e.g. `<id>/var/lib/dpkg`) with `<id>.json`; a snapshot is first written
// as `<id>.tmp` and renamed, so a failed one leaves nothing behind.
// Rollback moves each directory's current entries to `<dir>/.upgrade-guard-replaced-<ts>/`
// and copies the captured ones back; it is not atomic and has no journal.
class CopyBackend final : public SnapshotBackend {
 public:
  // e.g. CopyBackend(layout of "/mnt/root", policy, "/var/lib/upgrade-guard")
  CopyBackend(Layout layout, const policies::Policy& policy, const std::string& state_dir);

  [[nodiscard]] std::string name() const override { return "copy"; }
  [[nodiscard]] base::Result<SnapshotInfo> create(const std::string& label,
                                                  const std::map<std::string, std::string>& metadata) override;
  [[nodiscard]] base::Result<std::vector<SnapshotInfo>> list() override;
  [[nodiscard]] base::Result<SnapshotInfo> info(const std::string& id) override;
  [[nodiscard]] base::Result<void> remove(const std::string& id) override;
  [[nodiscard]] base::Result<base::Root> open(const std::string& id) override;
  [[nodiscard]] base::Result<RollbackResult> rollback(const std::string& id, const RollbackOptions& options) override;
  [[nodiscard]] base::Result<std::vector<PendingRollback>> pending_rollbacks() override {
    return std::vector<PendingRollback>{};
  }
  // The copy backend keeps no journal: a rollback is simply run again.
  [[nodiscard]] base::Result<std::optional<PendingRollback>> find_rollback(const std::string&) override {
    return std::optional<PendingRollback>{};
  }
  [[nodiscard]] base::Result<RollbackResult> resume_rollback(const std::string& journal, ResumeMode mode) override;

  // e.g. "/var/lib/upgrade-guard/snapshots"
  [[nodiscard]] const std::string& store() const { return store_; }

 private:
  Layout layout_;
  std::uint64_t min_free_ = 0;
  std::string store_;
};

}  // namespace guard::snapshots
