// One guarded run in progress: its steps, each a member function over the RunContext, and
// the step runner that commits every phase before its step. Internal to guard/run: the
// pipeline (pipeline.cc) puts the steps in order for `run`, the apt hooks and `recover`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "guard/core/run_context.h"
#include "guard/run/pipeline.h"
#include "guard/run/verdict.h"

namespace guard::run {

enum class Mode {
  command,  // `upgrade-guard run -- CMD` and `recover`: preflight problems refuse the run
  hook,     // apt's hooks: apt has decided to run dpkg; preflight problems are warnings
};

class Run {
 public:
  Run(RunContext& ctx, RunSummary& summary, Mode mode) : ctx_(ctx), s_(summary), mode_(mode) {}

  // ---- the record ----
  // Records a new run owned by `owner_pid` (the guard, or apt in hook mode) in phase preflight.
  [[nodiscard]] bool begin(state::RunKind kind, std::int64_t owner_pid);
  // Takes up run `record` again (the post hook, recover): what it recorded before the command.
  [[nodiscard]] bool resume(const state::RunRecord& record);

  // Commits `phase`, then runs `step`. A phase that cannot be committed stops the run safely.
  template <typename Step>
  [[nodiscard]] bool step(state::RunPhase phase, Step&& step) {
    if (auto r = ctx_.store.set_phase(s_.run_id, phase); !r) return stop_unrecorded(r.error());
    return step();
  }

  // ---- the steps, in order ----
  [[nodiscard]] bool preflight();
  [[nodiscard]] bool take_baseline();
  [[nodiscard]] bool take_snapshot();
  [[nodiscard]] bool run_command(const std::vector<std::string>& argv);
  // Hook mode: dpkg runs under apt, not under us; `status` says so in the record.
  [[nodiscard]] bool record_hook_command(const std::string& status);
  // What changed, the post-checks, the verdict and what the policy's `on_fail` makes of it.
  void judge(policies::OnFail on_fail);

  // ---- endings ----
  // Ends the run: outcome, exit code and message recorded, logged to the journal. False when
  // the end could not be recorded (the run was then stopped safely).
  bool finish(state::RunOutcome outcome, int exit_code, const std::string& message);
  // Ends the run before anything changed. e.g. refuse("only 200 MiB free on the root", 4).
  bool refuse(const std::string& why, int exit_code);
  // A state write failed: the run stops here. Before the command nothing was changed; after
  // it the reboot gate closes (gate file and reboot block first, the database if it can) and
  // the run stays unfinished for `recover`. Always false.
  bool stop_unrecorded(const base::Error& error);
  // Opens the gate when this run closed it (it was rolled back, or passed after all).
  void reopen_own_gate(const std::string& why);
  // Closes the reboot gate for `decision.message` and ends the run with `outcome`.
  void close_gate(const RunDecision& decision, state::RunOutcome outcome, int exit_code);

  // The snapshot backend, made on first use; null (with a note) when there is none.
  snapshots::SnapshotBackend* backend();

  // The host file keeping the dpkg status from before the command, for recover and the post
  // hook. e.g. "/var/lib/upgrade-guard/runs/run-12.status".
  [[nodiscard]] std::string status_file() const;

 private:
  struct PostChecks {
    checks::Report report;
    std::vector<std::string> baseline_keys;
  };
  [[nodiscard]] bool record_changes();
  [[nodiscard]] std::optional<PostChecks> post_checks();
  void act(const RunDecision& decision, const VerdictFacts& facts, const std::vector<std::string>& baseline_keys);
  void keep(const RunDecision& decision);
  void prune_snapshots();
  void roll_back(const RunDecision& decision, const VerdictFacts& facts, const std::vector<std::string>& keys);

  RunContext& ctx_;
  RunSummary& s_;
  Mode mode_;
  bool command_started_ = false;
  CommandEnd command_end_ = CommandEnd::unknown;
  std::string status_before_;  // dpkg's status file from before the command, read once
  bool diff_known_ = false;    // s_.changes is the diff of the dpkg status (else the post-checks run in full)
  std::optional<std::vector<std::string>> baseline_keys_;  // the baseline's finding keys, once taken or loaded
  bool backend_tried_ = false;
  snapshots::SnapshotBackend* backend_ = nullptr;
};

}  // namespace guard::run
