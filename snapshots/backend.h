// Snapshot backends: the seam where upgrade-guard copies and restores whole roots.
//
// The CLI maps the API one to one:
//   snapshot list    -> make_backend(...)->list()          (and render_layout_text for the layout)
//   snapshot create  -> create(label, {})
//   snapshot delete  -> remove(id)
//   snapshot prune   -> prune(policy.snapshot.keep, protected ids from the state DB)
//   rollback --to ID -> rollback(id, {})    recover -> pending_rollbacks() + resume_rollback(...)
// An Error whose `what` is kRefused (see is_refusal) is a refusal, exit 4; others are failures.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "policies/policy.h"
#include "snapshots/layout.h"

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
  bool complete = true;        // false: a snapshot whose creation was interrupted; never a rollback target
  std::string kind = "snapshot";  // "snapshot", or "broken": a root a rollback replaced and kept
  bool boot_captured = false;  // /boot (a separate filesystem) was copied beside it
  std::string boot_location;   // e.g. ".../@upgrade-guard/<id>.boot"
  std::string esp_path;        // root-relative ESP captured beside it, e.g. "/boot/efi"; "" = none
  std::string esp_location;    // e.g. ".../@upgrade-guard/<id>.esp"
};

// `Error::what` of a refusal (not enough free space, a layout the backend cannot roll back):
// the CLI exits 4 and says the message.
inline constexpr const char* kRefused = "refused";
[[nodiscard]] inline bool is_refusal(const base::Error& e) {
  return e.what == kRefused;
}

// The steps of a rollback, in order. The journal records the last one finished.
enum class RollbackStep {
  planned = 0,          // journal written, nothing changed yet
  restore_created = 1,  // writable snapshot of the chosen snapshot at @upgrade-guard/<id>.restore-<ts>
  preserved = 2,        // policy preserve paths copied (reflink) from the current root into it
  nested_moved = 3,     // nested subvolumes moved from the current root into it
  boot_restored = 4,    // captured /boot files put back, the current ones moved aside
  swapped = 5,          // RENAME_EXCHANGE: the root's path now names the restored tree
  default_set = 6,      // set-default layouts: the default subvolume is the restored tree
  broken_kept = 7,      // the old tree renamed to @upgrade-guard/rollback-<ts>-broken, read-only
  done = 8,
};
[[nodiscard]] const char* to_string(RollbackStep step);

struct RollbackOptions {
  // Paths carried from the current root into the restored one; unset = the policy's preserve.
  std::optional<std::vector<std::string>> preserve;
  // Who asked, stored in the journal so that a journal found after a crash is matched to the
  // record of whoever started it (find_rollback). e.g. "upgrade-guard rollback 3".
  std::string owner;
  // The live root, with a unit that runs `recover --at-shutdown` when the system goes down:
  // make the restored subvolume now, and carry the preserve paths, move the nested subvolumes,
  // restore /boot and exchange the roots only then (complete_prepared()), after the services
  // that write them have stopped. Without it all of that happens at once.
  bool prepare_only = false;
  // This boot's id (/proc/sys/kernel/random/boot_id), kept in the journal of a prepared
  // rollback: one prepared in an earlier boot was never completed by its shutdown.
  std::string boot_id;
  // Test hook (not a build flag): return an "interrupted" error right after this step is
  // recorded, leaving everything as a crash at that point would.
  std::optional<RollbackStep> stop_after;
};

struct RollbackResult {
  std::string snapshot_id;
  std::string method;             // "exchange", "exchange+set-default", "set-default", "copy"
  bool takes_effect_now = false;  // --root: the root's path shows the restored tree now; live: next boot
  // Where the restored tree can be read now, while the backend lives (the btrfs top level's
  // path to the root subvolume), e.g. "/run/upgrade-guard/top/@rootfs"; "" when not known.
  std::string restored_path;
  std::string broken;             // where the old root is kept, e.g. "@upgrade-guard/rollback-20261122-200102-broken"
  std::vector<std::string> preserved;  // root-relative paths carried over, e.g. "/var/log"
  std::vector<std::string> nested;     // nested subvolumes moved, e.g. "/var/lib/docker"
  std::string replaced_dir;            // where the snapshot's own versions of preserved paths were put aside
  bool boot_restored = false;
  std::string journal;             // the journal file, e.g. ".../@upgrade-guard/rollback-20261122-200102.journal"
  std::vector<std::string> notes;  // what the operator must know, e.g. "binaries were not restored"
};

// A rollback's journal: one that did not finish (pending_rollbacks()) or any one found by its
// owner (find_rollback()).
struct PendingRollback {
  std::string journal;
  std::string snapshot_id;
  RollbackStep last_step = RollbackStep::planned;
  bool can_revert = false;  // true until the swap: reverting leaves the old root untouched
  std::string owner;        // RollbackOptions::owner, "" for a journal written without one
  std::string state;        // "in-progress", "complete" or "reverted"
  bool prepared = false;    // a live rollback waiting for complete_prepared() (shutdown)
};

enum class ResumeMode { complete, revert };

// The interface the guard layer uses; a fake implementing it records calls in unit tests.
class SnapshotBackend {
 public:
  virtual ~SnapshotBackend() = default;
  // "btrfs" or "copy".
  [[nodiscard]] virtual std::string name() const = 0;
  // Takes a snapshot labelled `label` (e.g. "pre-run12"; sanitised into the id) with free-form
  // metadata. Refuses (kRefused) under policy.snapshot.min_free_bytes; nothing half-written
  // stays behind on failure. e.g. id "20261122-193012-pre-run12".
  [[nodiscard]] virtual base::Result<SnapshotInfo> create(const std::string& label,
                                                          const std::map<std::string, std::string>& metadata) = 0;
  // Every snapshot of this backend, oldest first.
  [[nodiscard]] virtual base::Result<std::vector<SnapshotInfo>> list() = 0;
  [[nodiscard]] virtual base::Result<SnapshotInfo> info(const std::string& id) = 0;
  // Deletes a snapshot and what was stored beside it. btrfs: no sync is waited for.
  [[nodiscard]] virtual base::Result<void> remove(const std::string& id) = 0;
  // A read-only root on the snapshot, for checks. e.g. open(id)->read_file("/var/lib/dpkg/status").
  // Copy backend: a root holding only the captured directories.
  [[nodiscard]] virtual base::Result<base::Root> open(const std::string& id) = 0;
  // Restores snapshot `id` into the root (see RollbackStep for the btrfs steps).
  [[nodiscard]] virtual base::Result<RollbackResult> rollback(const std::string& id,
                                                              const RollbackOptions& options) = 0;
  // Where the root that the boot configuration pins can be read and written now, when the
  // system runs from another subvolume (the GRUB fallback boot runs from a snapshot, and the
  // pinned root is mounted nowhere), e.g. "/run/upgrade-guard/top/@rootfs"; nullopt when the
  // root is the pinned one or the backend has no such notion.
  [[nodiscard]] virtual base::Result<std::optional<std::string>> pinned_root_path() { return std::nullopt; }
  // Journals of rollbacks that did not reach `done` (after a crash).
  [[nodiscard]] virtual base::Result<std::vector<PendingRollback>> pending_rollbacks() = 0;
  // The newest journal written for `owner` (RollbackOptions::owner), finished or not; nullopt
  // when the backend never wrote one (it keeps none, or failed before writing it).
  [[nodiscard]] virtual base::Result<std::optional<PendingRollback>> find_rollback(const std::string& owner) = 0;
  // Finishes (complete) or undoes (revert; only before the swap) an interrupted rollback. A
  // journal that already says complete or reverted gives its result again.
  [[nodiscard]] virtual base::Result<RollbackResult> resume_rollback(const std::string& journal, ResumeMode mode) = 0;
  // Completes every rollback made with prepare_only: what the system shutting down (or, after a
  // power loss, booting before local services start) calls. Empty when there is none.
  // `except_boot`: leave the rollbacks prepared during that boot (its own shutdown completes
  // them), e.g. the current boot's id early in a boot.
  [[nodiscard]] virtual base::Result<std::vector<RollbackResult>> complete_prepared(const std::string& except_boot = "") {
    (void)except_boot;
    return std::vector<RollbackResult>{};
  }

  // Removes incomplete snapshots, then keeps the newest `keep` snapshots and the newest
  // `keep_broken` broken roots (roots rollbacks replaced, counted apart) and every id in
  // `protected_ids` (a pending rollback's, the last known-good), and removes the rest, oldest
  // first. A snapshot the backend refuses to remove (a pending rollback's target, the running
  // system's root) is skipped. Returns the ids removed.
  [[nodiscard]] base::Result<std::vector<std::string>> prune(int keep, int keep_broken,
                                                             const std::vector<std::string>& protected_ids);
};

// Picks the backend: the policy's snapshot.backend when forced, else btrfs when the root is a
// btrfs subvolume, else copy. `state_dir` is where the copy backend stores its copies, e.g.
// "/var/lib/upgrade-guard". For btrfs the top level is mounted at kTopMountPoint (or the
// root's own mount is used when it already is the top level). Kind `none` is a refusal.
[[nodiscard]] base::Result<std::unique_ptr<SnapshotBackend>> make_backend(const Layout& layout,
                                                                          const policies::Policy& policy,
                                                                          const std::string& state_dir);

// "20261122-193012-pre-run-12" from a UTC time and a label: only letters, digits and _ are
// kept, every other run becomes one "-" ("pre run#12" -> "pre-run-12", "../etc" -> "etc").
[[nodiscard]] std::string make_snapshot_id(std::int64_t unix_time, const std::string& label);

}  // namespace guard::snapshots
