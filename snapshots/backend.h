// Snapshot backends: the seam where upgrade-guard copies and restores whole roots.
// Built out by the snapshots issue; declared here so the guard layer can be written against it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/error.h"

namespace guard::snapshots {

// One snapshot as a backend knows it. e.g. {id="20261122-193012-pre-run12", backend="btrfs",
// location="/run/upgrade-guard/top/@upgrade-guard/20261122-193012-pre-run12"}.
struct SnapshotInfo {
  std::string id;
  std::string backend;
  std::string label;
  std::string location;
  std::int64_t created_unix = 0;
  std::map<std::string, std::string> metadata;
};

}  // namespace guard::snapshots
