// The btrfs backend: read-only snapshots of the root subvolume at the top level, an atomic
// journaled rollback that carries preserve paths and nested subvolumes into the restored root.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "snapshots/backend.h"
#include "snapshots/top_level.h"

namespace guard::snapshots {


// Rollback of a root at `<top>/<root>` (e.g. "@") to snapshot <id>, each step journaled in
// `@upgrade-guard/rollback-<ts>.journal` (atomically rewritten after each step):
//  1 restore_created  writable snapshot `@upgrade-guard/<id>.restore-<ts>`
//  2 preserved        each preserve path of the current root reflink-copied into it (via a
//                     `.upgrade-guard-tmp` name, then renamed into place); the snapshot's own
//                     version is moved to `/.upgrade-guard-replaced-<ts>/<path>` inside it
//  3 nested_moved     each topmost nested subvolume renamed from the current root into it
//  4 boot_restored    captured /boot files copied back, the current ones moved to
//                     `/boot/.upgrade-guard-replaced-<ts>/` (the ESP likewise)
//  5 swapped          renameat2(RENAME_EXCHANGE) of `<root>` and the restore name: one atomic
//                     step after which the path `<root>` names the restored tree
//  6 default_set      only when nothing pins subvol=: set-default to the restored tree's id
//  7 broken_kept      the old tree (now at the restore name) renamed to
//                     `@upgrade-guard/rollback-<ts>-broken` and made read-only; never deleted
// Before step 5 the current root is untouched except for moved nested subvolumes, so a revert
// moves those back and deletes the restore subvolume. From step 5 on, only completing makes
// sense. At every point `<root>` is a whole, bootable tree.
//
// For `--root <top>/@` (the caller mounted the top level and passes the path of the root
// subvolume inside it) the same path shows the restored tree as soon as the rollback returns.
// A caller that mounted the root subvolume itself (subvol=@ at DIR) must unmount DIR and mount
// it again to see the restored tree. The live root changes at the next boot.
class BtrfsBackend final : public SnapshotBackend {
 public:
  // `layout` must be a btrfs root that is a subvolume; `top` the filesystem's top level.
  [[nodiscard]] static base::Result<std::unique_ptr<BtrfsBackend>> create(const Layout& layout,
                                                                          const policies::Policy& policy,
                                                                          TopLevelMount top);

  [[nodiscard]] std::string name() const override { return "btrfs"; }
  [[nodiscard]] base::Result<SnapshotInfo> create(const std::string& label,
                                                  const std::map<std::string, std::string>& metadata) override;
  [[nodiscard]] base::Result<std::vector<SnapshotInfo>> list() override;
  [[nodiscard]] base::Result<SnapshotInfo> info(const std::string& id) override;
  [[nodiscard]] base::Result<void> remove(const std::string& id) override;
  [[nodiscard]] base::Result<base::Root> open(const std::string& id) override;
  [[nodiscard]] base::Result<RollbackResult> rollback(const std::string& id, const RollbackOptions& options) override;
  [[nodiscard]] base::Result<std::optional<std::string>> pinned_root_path() override;
  [[nodiscard]] base::Result<std::vector<PendingRollback>> pending_rollbacks() override;
  [[nodiscard]] base::Result<std::optional<PendingRollback>> find_rollback(const std::string& owner) override;
  [[nodiscard]] base::Result<std::vector<RollbackResult>> complete_prepared(const std::string& except_boot) override;
  [[nodiscard]] base::Result<RollbackResult> resume_rollback(const std::string& journal, ResumeMode mode) override;

  // e.g. "/run/upgrade-guard/top"
  [[nodiscard]] const std::string& top() const { return top_.path(); }
  // e.g. "/run/upgrade-guard/top/@upgrade-guard"
  [[nodiscard]] std::string store() const { return top_.path() + "/" + kStoreName; }

 private:
  BtrfsBackend(Layout layout, const policies::Policy& policy, TopLevelMount top)
      : layout_(std::move(layout)),
        min_free_(policy.snapshot.min_free_bytes),
        preserve_(policy.preserve),
        top_(std::move(top)) {}

  Layout layout_;
  std::uint64_t min_free_ = 0;
  std::vector<std::string> preserve_;
  TopLevelMount top_;

  [[nodiscard]] base::Result<SnapshotInfo> describe(const std::string& id);
};

}  // namespace guard::snapshots
