// Every rollback goes through here: `run` and the apt hook after a regression, `recover`,
// `rollback --to` and boot-check. A rollback is recorded before the snapshot backend starts
// it, its journal is tagged with the record, and the record says how it ended, so a rollback
// that was interrupted (kill -9, power loss) or failed (no space) is found and finished by
// `recover` instead of being forgotten or mistaken for a passed upgrade.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "guard/core/run_context.h"
#include "guard/state/records.h"
#include "snapshots/backend.h"

namespace guard {

// `Error::what` of a rollback that never started because its record could not be written (the
// state store failed): nothing was changed, and the caller stops as for any failed state write.
inline constexpr const char* kRollbackUnrecorded = "rollback-unrecorded";

struct RollbackOutcome {
  state::RollbackRecord record;           // as last recorded
  snapshots::RollbackResult result;       // what the backend did
  std::optional<std::int64_t> trial_id;   // the restored root's first boot (live root)
  std::vector<std::string> notes;         // what the operator must know besides the result's notes
};

// The options every rollback of `ctx.root` uses: the policy's preserve paths, plus the state
// directory when it lies inside the live root (so the restored root boots with this record),
// and the record's tag. e.g. {preserve={"/home", ..., "/var/lib/upgrade-guard"}, owner="upgrade-guard rollback 3"}.
// journalctl MESSAGE_ID=4e1b7c29a0d34f5e8b6a9c2d1e0f3a57 lists every rollback.
inline constexpr const char* kRollbackMessageId = "4e1b7c29a0d34f5e8b6a9c2d1e0f3a57";

// In the run directory while the unit that completes prepared rollbacks at shutdown is active
// (written by `recover --at-boot`, its ExecStart): live rollbacks are then prepared and
// completed at shutdown; without it they complete at once.
inline constexpr const char* kShutdownCompletionFile = "complete-at-shutdown";

// The start of RollbackOutcome's note when the backend finished but its record could not be
// written (recover records it later); a caller that records the end elsewhere drops that note.
inline constexpr std::string_view kRollbackUnrecordedNote = "the rollback is done, but recording it failed";

[[nodiscard]] snapshots::RollbackOptions rollback_options(const RunContext& ctx, const state::RollbackRecord& record);

// Rolls ctx.root back to `snapshot_id`:
//  1. records the rollback (running); when that fails nothing else happens;
//  2. on the live root, records the restored root's first boot as a trial;
//  3. asks the backend, its journal tagged with the record;
//  4. records the end: done, with the journal and the kept broken root (also recorded as a
//     snapshot, kept by policy snapshot.keep_broken), or failed with the backend's error (the
//     trial too).
// An error when the backend failed: the record says failed and `recover` tries again. When only
// the last record could not be written, the rollback is done and a note says so (recover finds
// its journal complete and records it).
[[nodiscard]] base::Result<RollbackOutcome> roll_back(RunContext& ctx, snapshots::SnapshotBackend& backend,
                                                      std::optional<std::int64_t> run_id,
                                                      const std::string& snapshot_id);

// Finishes a recorded rollback that is still running (its process died) or failed: a journal
// that says complete is only recorded; one in progress is completed; with no journal (the
// backend never started, or failed before writing one) or a failed one the rollback runs again.
// A journal someone reverted makes the record abandoned (an error says so).
[[nodiscard]] base::Result<RollbackOutcome> finish_rollback(RunContext& ctx, snapshots::SnapshotBackend& backend,
                                                            const state::RollbackRecord& record);

// Gives a recorded rollback up: reverts its journal when the root was not swapped yet (the root
// stays as it is) and records it abandoned. An error when the swap has happened (only
// completing makes sense then). Returns what was done.
[[nodiscard]] base::Result<std::string> abandon_rollback(RunContext& ctx, snapshots::SnapshotBackend& backend,
                                                         const state::RollbackRecord& record);

}  // namespace guard
