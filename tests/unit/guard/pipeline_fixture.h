// The run pipeline without a system: a fake root in a temp dir (a dpkg status, merged /usr),
// a command runner that edits that root the way apt would, a snapshot backend that copies the
// root and records what it is asked, a bus that records reloads, and a real state store in a
// temp dir. In the manner of ninja's FakeCommandRunner and VirtualFileSystem.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/process.h"
#include "guard/core/run_context.h"
#include "guard/gate/gate_bus.h"
#include "guard/run/pipeline.h"
#include "guard/state/store.h"
#include "policies/policy.h"
#include "snapshots/backend.h"
#include "tests/common/test_env.h"

namespace guard::testing {

// Thrown by a FakeRunner told to die: what kill -9 of the guard during its command leaves
// behind is exactly what the steps committed before it.
struct GuardKilled {};

// Runs nothing: applies `edit` to the root (as the command would have changed it) and returns
// `result`. Records every command it was given.
class FakeRunner final : public base::CommandRunner {
 public:
  FakeRunner() { result.exit_code = 0; }
  std::function<void(const std::string& root)> edit;  // e.g. make a package half-configured
  base::ProcessResult result;                          // exit 0 unless told otherwise
  bool die_after_edit = false;                         // throw GuardKilled after the edit
  std::vector<base::Command> commands;
  std::string root_dir;  // the fake root the edits apply to

  base::Result<base::ProcessResult> run(const base::Command& command) override;
};

// Snapshots by copying the root's directory; a rollback swaps the root's directory with a
// fresh copy of the snapshot (like btrfs's RENAME_EXCHANGE: the path shows the restored tree,
// the old tree is kept). Journals live in memory, so they outlive a pipeline, as the btrfs
// backend's files outlive a killed guard.
class FakeBackend final : public snapshots::SnapshotBackend {
 public:
  FakeBackend(std::string root_dir, std::string store_dir) : root_(std::move(root_dir)), store_(std::move(store_dir)) {}

  // A live root's rollback takes effect at the next boot; a --root one at once.
  bool takes_effect_now = true;
  // pinned_root_path(): set when the "system" runs from a snapshot (the GRUB fallback boot).
  std::optional<std::string> pinned;
  // Faults to inject.
  std::optional<base::Error> create_fails;
  // The rollback fails before anything changed (no journal), e.g. no space for the restore copy.
  std::optional<base::Error> rollback_fails;
  // The rollback fails after its journal was written (in progress); completing it works.
  std::optional<base::Error> rollback_fails_mid_way;

  // Called at those moments; a test makes one throw GuardKilled to kill the guard right there.
  std::function<void()> after_create;   // the snapshot exists, nothing recorded it yet
  std::function<void()> after_journal;  // a rollback's journal is written, nothing changed yet
  std::function<void()> after_rollback; // the rollback is complete, nothing recorded it yet

  // What it was asked.
  std::vector<std::string> created;
  std::vector<std::pair<std::string, snapshots::RollbackOptions>> rollbacks;
  std::vector<std::string> removed;

  std::string name() const override { return "fake"; }
  base::Result<snapshots::SnapshotInfo> create(const std::string& label,
                                               const std::map<std::string, std::string>& metadata) override;
  base::Result<std::vector<snapshots::SnapshotInfo>> list() override;
  base::Result<snapshots::SnapshotInfo> info(const std::string& id) override;
  base::Result<void> remove(const std::string& id) override;
  base::Result<base::Root> open(const std::string& id) override;
  base::Result<snapshots::RollbackResult> rollback(const std::string& id,
                                                   const snapshots::RollbackOptions& options) override;
  base::Result<std::vector<snapshots::PendingRollback>> pending_rollbacks() override;
  base::Result<std::optional<snapshots::PendingRollback>> find_rollback(const std::string& owner) override;
  base::Result<snapshots::RollbackResult> resume_rollback(const std::string& journal,
                                                          snapshots::ResumeMode mode) override;
  base::Result<std::optional<std::string>> pinned_root_path() override { return pinned; }

 private:
  struct Journal {
    std::string id;
    std::string snapshot_id;
    std::string owner;
    std::string state;  // in-progress, complete, reverted
    std::string broken;
    std::vector<std::string> preserve;  // carried from the old tree into the restored one
  };
  base::Result<snapshots::RollbackResult> swap_in(Journal& j);
  snapshots::RollbackResult result_of(const Journal& j) const;

  std::string root_;
  std::string store_;
  std::map<std::string, snapshots::SnapshotInfo> snapshots_;
  std::vector<Journal> journals_;
  int counter_ = 0;
};

class FakeGateBus final : public gate::GateBus {
 public:
  int reloads = 0;
  base::Result<void> reload_systemd() override {
    ++reloads;
    return {};
  }
  base::Result<base::UniqueFd> inhibit(const gate::InhibitRequest&) override {
    return base::fail("inhibit", "", "not in unit tests");
  }
};

// A pid that is certainly not running: a child that has exited and been reaped.
std::int64_t dead_pid();

// A dpkg status stanza, e.g. stanza("ugdemo", "1.0", "install ok installed").
std::string stanza(const std::string& package, const std::string& version, const std::string& status);

// One pipeline world: the fake root, its store, the fakes and the policy, and a RunContext
// over them (rebuilt for each "process": a killed guard's context is dropped, recover gets a new one).
class PipelineWorld {
 public:
  PipelineWorld();

  TempDir dir{"ug-pipeline"};
  std::string root_dir;   // the fake root
  std::string state_dir;  // state.db, runs/, the gate file
  policies::Policy policy;
  FakeRunner runner;
  std::unique_ptr<FakeBackend> backend;
  FakeGateBus bus;
  std::optional<base::Root> root;
  std::optional<state::StateStore> store;
  std::unique_ptr<SnapshotSource> snapshots;
  std::unique_ptr<RunContext> ctx;
  std::vector<std::string> said;  // progress lines

  // A new "process": the root and the store opened again, a fresh context. `pid` is the
  // owner recorded for runs it begins (dead_pid() for a guard that will be "killed").
  RunContext& context(std::int64_t pid, bool live = false);
  // Snapshots off: the backend source fails like snapshot.backend = "none" would.
  bool snapshots_off = false;

  // The dpkg status text of the root now.
  [[nodiscard]] std::string dpkg_status() const;
  // Writes the root's dpkg status.
  void set_dpkg_status(const std::string& text) const;
  // The gate as `gate status` sees it (database row, or the gate file when closed).
  [[nodiscard]] bool gate_closed();
  [[nodiscard]] std::optional<state::RunRecord> run_record(std::int64_t id);
  [[nodiscard]] bool known_good(const std::string& snapshot_id);
};

}  // namespace guard::testing
