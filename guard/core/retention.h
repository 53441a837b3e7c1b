// Which snapshots must survive pruning and deletion, from what the state store knows.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "guard/state/store.h"
#include "snapshots/backend.h"

namespace guard {

// The snapshots of `root_key` nothing may delete: the last known-good, pinned ones (kept broken
// roots), a pending boot trial's rollback target, an unfinished run's pre-run snapshot (a hook
// run's, while apt's dpkg runs between its hooks) and an open rollback's target.
// e.g. {"20260122-101500-pre-run12", "rollback-20260122-101702-broken"}.
// With `pinned` false, pinned snapshots are left out (`snapshot delete --force` may remove them).
[[nodiscard]] base::Result<std::vector<std::string>> protected_snapshots(const state::StateStore& store,
                                                                        const std::string& root_key,
                                                                        bool pinned = true);

// The record of a snapshot the backend took, for the store: e.g. snapshot_record(info, "/", 12).
[[nodiscard]] state::SnapshotRecord snapshot_record(const snapshots::SnapshotInfo& info, const std::string& root_key,
                                                    std::optional<std::int64_t> run_id);

}  // namespace guard
