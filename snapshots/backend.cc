#include "snapshots/backend.h"

#include <algorithm>
#include <ctime>

#include "snapshots/btrfs.h"
#include "snapshots/btrfs_backend.h"
#include "snapshots/copy_backend.h"
#include "snapshots/top_level.h"

namespace guard::snapshots {

base::Result<std::vector<std::string>> SnapshotBackend::prune(int keep, int keep_broken,
                                                              const std::vector<std::string>& protected_ids) {
  auto all = list();
  if (!all) return base::fail(all.error());
  auto is_protected = [&](const std::string& id) {
    return std::find(protected_ids.begin(), protected_ids.end(), id) != protected_ids.end();
  };
  std::vector<std::string> removed;
  // Removes the oldest of `ids` beyond the newest `keep` (ids are oldest first).
  auto thin = [&](const std::vector<std::string>& ids, int keep_n) -> base::Result<void> {
    if (keep_n < 0) keep_n = 0;
    if (ids.size() <= static_cast<std::size_t>(keep_n)) return {};
    std::size_t excess = ids.size() - static_cast<std::size_t>(keep_n);
    std::size_t pruned = 0;
    for (std::size_t i = 0; i < ids.size() && pruned < excess; ++i) {
      if (is_protected(ids[i])) continue;
      if (auto r = remove(ids[i]); !r) {
        if (is_refusal(r.error())) continue;
        return base::fail(r.error());
      }
      removed.push_back(ids[i]);
      ++pruned;
    }
    return {};
  };
  // Incomplete snapshots first: they hold nothing a rollback can use.
  std::vector<std::string> incomplete, snapshots, broken;
  for (const auto& s : *all) {
    (!s.complete ? incomplete : s.kind == "broken" ? broken : snapshots).push_back(s.id);
  }
  if (auto r = thin(incomplete, 0); !r) return base::fail(r.error());
  if (auto r = thin(snapshots, keep); !r) return base::fail(r.error());
  if (auto r = thin(broken, keep_broken); !r) return base::fail(r.error());
  return removed;
}

std::string make_snapshot_id(std::int64_t unix_time, const std::string& label) {
  std::time_t t = static_cast<std::time_t>(unix_time);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  (void)std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);  // 15 characters: always fits
  std::string clean;
  for (char c : label) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (ok)
      clean += c;
    else if (!clean.empty() && clean.back() != '-')
      clean += '-';
  }
  while (!clean.empty() && clean.back() == '-') clean.pop_back();
  if (clean.size() > 64) clean.resize(64);
  return clean.empty() ? std::string(buf) : std::string(buf) + "-" + clean;
}

base::Result<std::unique_ptr<SnapshotBackend>> make_backend(const Layout& layout, const policies::Policy& policy,
                                                            const std::string& state_dir) {
  using Kind = policies::SnapshotBackendKind;
  Kind kind = policy.snapshot.backend;
  if (kind == Kind::none) return base::fail(kRefused, layout.root_dir, "snapshots are off (snapshot.backend = none)");
  if (kind == Kind::automatic) kind = layout.btrfs() && layout.is_subvolume ? Kind::btrfs : Kind::copy;
  if (kind == Kind::copy) return std::unique_ptr<SnapshotBackend>(new CopyBackend(layout, policy, state_dir));
  if (!layout.btrfs())
    return base::fail(kRefused, layout.root_dir,
                      "snapshot.backend = btrfs but the root is on " + layout.fstype + "; use copy or automatic");
  // The root's own mount already shows the top level (a test or an admin mounted subvolid=5):
  // use it; otherwise mount the top level privately.
  base::Result<TopLevelMount> top =
      layout.mount_fs_root == "/" ? TopLevelMount::borrow(layout.mount_point) : TopLevelMount::mount(layout.device);
  if (!top) return base::fail(top.error());
  auto b = BtrfsBackend::create(layout, policy, std::move(*top));
  if (!b) return base::fail(b.error());
  return std::unique_ptr<SnapshotBackend>(std::move(*b));
}

}  // namespace guard::snapshots
