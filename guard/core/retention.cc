#include "guard/core/retention.h"

namespace guard {

base::Result<std::vector<std::string>> protected_snapshots(const state::StateStore& store, const std::string& root_key,
                                                          bool pinned) {
  std::vector<std::string> ids;
  auto good = store.last_known_good(root_key);
  if (!good) return base::fail(good.error());
  if (*good) ids.push_back((*good)->id);
  auto all = store.list_snapshots(root_key);
  if (!all) return base::fail(all.error());
  for (const auto& s : *all) {
    if (s.pinned_reason && pinned) ids.push_back(s.id);
  }
  auto trial = store.pending_boot_trial();
  if (!trial) return base::fail(trial.error());
  if (*trial) ids.push_back((*trial)->snapshot_id);
  auto runs = store.unfinished_runs();
  if (!runs) return base::fail(runs.error());
  for (const auto& r : *runs) {
    if (r.snapshot_id) ids.push_back(*r.snapshot_id);
  }
  auto rollbacks = store.open_rollbacks(root_key);
  if (!rollbacks) return base::fail(rollbacks.error());
  for (const auto& r : *rollbacks) ids.push_back(r.snapshot_id);
  return ids;
}

state::SnapshotRecord snapshot_record(const snapshots::SnapshotInfo& info, const std::string& root_key,
                                      std::optional<std::int64_t> run_id) {
  state::SnapshotRecord rec;
  rec.id = info.id;
  rec.backend = info.backend;
  rec.label = info.label;
  rec.location = info.location;
  rec.root = root_key;
  rec.created_unix = info.created_unix;
  rec.run_id = run_id;
  return rec;
}

}  // namespace guard
