// Which snapshots must survive pruning and deletion, from what the state store knows.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "guard/state/store.h"

namespace guard {

// The snapshots of `root_key` nothing may delete: the last known-good, pinned ones (kept broken
// roots), a pending boot trial's rollback target, an unfinished run's pre-run snapshot (a hook
// run's, while apt's dpkg runs between its hooks) and an open rollback's target.
// e.g. {"20260122-101500-pre-run12", "rollback-20260122-101702-broken"}.
[[nodiscard]] base::Result<std::vector<std::string>> protected_snapshots(const state::StateStore& store,
                                                                        const std::string& root_key);

}  // namespace guard
