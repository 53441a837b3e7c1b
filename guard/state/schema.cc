// The schema history of state.db, one migration per version.
#include <array>

#include "guard/state/db.h"

namespace guard::state {
namespace {

// Each migration runs in its own transaction with its user_version.
constexpr std::array kMigrations = {
    Migration{1, R"sql(
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started_unix INTEGER NOT NULL,
  finished_unix INTEGER,
  root TEXT NOT NULL,
  command TEXT NOT NULL,
  phase TEXT NOT NULL,
  phase_changed_unix INTEGER NOT NULL,
  outcome TEXT,
  exit_code INTEGER,
  command_status TEXT,
  snapshot_id TEXT,
  pid INTEGER NOT NULL,
  hostname TEXT NOT NULL DEFAULT '',
  boot_id TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_unfinished ON runs(id) WHERE finished_unix IS NULL;
CREATE TABLE run_phases (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  phase TEXT NOT NULL,
  at_unix_ms INTEGER NOT NULL
);
CREATE INDEX run_phases_run ON run_phases(run_id);
CREATE TABLE reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
  stage TEXT NOT NULL,
  root TEXT NOT NULL,
  created_unix INTEGER NOT NULL,
  verdict TEXT NOT NULL,
  json TEXT NOT NULL
);
CREATE INDEX reports_run ON reports(run_id, stage);
CREATE INDEX reports_root ON reports(root, stage);
CREATE TABLE findings (
  id INTEGER PRIMARY KEY,
  report_id INTEGER NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
  stage TEXT NOT NULL,
  check_id TEXT NOT NULL,
  severity TEXT NOT NULL,
  path TEXT NOT NULL DEFAULT '',
  package TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  hint TEXT NOT NULL DEFAULT '',
  finding_key TEXT NOT NULL,
  known INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX findings_run ON findings(run_id);
CREATE INDEX findings_report ON findings(report_id);
CREATE TABLE baselines (
  root TEXT PRIMARY KEY,
  created_unix INTEGER NOT NULL,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL
);
CREATE TABLE baseline_keys (
  root TEXT NOT NULL REFERENCES baselines(root) ON DELETE CASCADE,
  finding_key TEXT NOT NULL,
  PRIMARY KEY (root, finding_key)
) WITHOUT ROWID;
CREATE TABLE snapshots (
  id TEXT PRIMARY KEY,
  backend TEXT NOT NULL,
  label TEXT NOT NULL DEFAULT '',
  location TEXT NOT NULL DEFAULT '',
  root TEXT NOT NULL DEFAULT '',
  created_unix INTEGER NOT NULL,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  state TEXT NOT NULL,
  known_good INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE gate (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  closed INTEGER NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  changed_unix INTEGER NOT NULL,
  changed_by TEXT NOT NULL DEFAULT ''
);
)sql"},
    // Version 2: what the guarded upgrade, the reboot gate and the post-boot health check
    // need: the packages a run changed, the history of gate changes, boot trials with their
    // attempt counter, pinned snapshots.
    Migration{2, R"sql(
CREATE TABLE gate_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  closed INTEGER NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  at_unix INTEGER NOT NULL,
  changed_by TEXT NOT NULL DEFAULT ''
);
INSERT INTO gate_events (closed, reason, run_id, at_unix, changed_by)
  SELECT closed, reason, run_id, changed_unix, changed_by FROM gate;
CREATE TABLE boot_trials (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  snapshot_id TEXT NOT NULL,
  created_unix INTEGER NOT NULL,
  updated_unix INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX boot_trials_pending ON boot_trials(id) WHERE state = 'pending';
CREATE TABLE run_packages (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  package TEXT NOT NULL,
  old_version TEXT NOT NULL DEFAULT '',
  new_version TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, package)
) WITHOUT ROWID;
ALTER TABLE snapshots ADD COLUMN pinned_reason TEXT;
)sql"},
    // Version 3: runs say what made them (a guarded command, apt's hooks, a manual rollback;
    // hook runs were told apart by their command status before), and every rollback is recorded
    // before the snapshot backend starts it, so an interrupted or failed one is found again.
    Migration{3, R"sql(
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'run';
UPDATE runs SET kind = 'hook' WHERE command_status LIKE 'hook: %';
CREATE TABLE rollbacks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  root TEXT NOT NULL,
  snapshot_id TEXT NOT NULL,
  started_unix INTEGER NOT NULL,
  updated_unix INTEGER NOT NULL,
  state TEXT NOT NULL,
  journal TEXT NOT NULL DEFAULT '',
  broken TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  pid INTEGER NOT NULL DEFAULT 0,
  boot_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rollbacks_open ON rollbacks(id) WHERE state IN ('running', 'failed');
CREATE INDEX rollbacks_run ON rollbacks(run_id);
)sql"},
};

static_assert(kMigrations.back().version == StateStore::kSchemaVersion);

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

}  // namespace guard::state
