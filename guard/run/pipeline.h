// The guarded upgrade: `upgrade-guard run -- apt-get dist-upgrade`, apt's hooks, `recover`
// and `rollback --to`, all as the same named steps over one injected RunContext
// (guard/core/run_context.h). Reading RunPipeline::run() top to bottom tells the whole story:
// lock → record → preflight → baseline → snapshot → command → changes → post-checks → verdict →
// keep, roll back or close the gate. Every phase is committed to the state store before its
// step runs; a phase or result that cannot be committed stops the run safely (before the
// command: nothing changed; after it: the reboot gate closed), so a guard killed anywhere
// leaves a run that `recover` finishes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "checks/dpkg_diff.h"
#include "checks/report.h"
#include "guard/core/exit_code.h"
#include "guard/core/run_context.h"
#include "guard/run/apt_session.h"
#include "guard/state/records.h"
#include "snapshots/backend.h"

namespace guard::run {

// Everything a run produced, for the report. e.g. after `run -- apt-get -y upgrade`:
// {run_id=12, outcome=passed, exit_code=0, changes={upgraded: libssl3 ...}}.
struct RunSummary {
  std::int64_t run_id = 0;
  state::RunOutcome outcome = state::RunOutcome::failed;
  int exit_code = kExitEnvironment;
  std::vector<std::string> command;
  std::string command_status;           // "exited with status 0"
  std::optional<std::string> snapshot;  // the pre-upgrade snapshot id
  std::string log_file;
  checks::StatusDiff changes;
  std::optional<checks::Report> post;      // post-checks, compared with the baseline
  std::optional<checks::Report> restored;  // checks of the rolled-back root
  std::optional<snapshots::RollbackResult> rollback;
  std::vector<std::string> notes;  // what was done and how to undo it
  std::string message;             // one line: why the run ended as it did
};

// How `recover` treats rollbacks it finds unfinished or failed.
enum class RecoverMode {
  finish,   // complete them (the default)
  abandon,  // give them up: revert what can be reverted, keep the root as it is
};

class RunPipeline {
 public:
  explicit RunPipeline(RunContext& ctx) : ctx_(ctx) {}

  // Runs `argv` guarded (chrooted when ctx.root is not the host's "/"). Never throws on the
  // system's account; the summary says what happened and the exit code.
  [[nodiscard]] RunSummary run(const std::vector<std::string>& argv);

  // apt hook mode (packaging/apt/80upgrade-guard). apt runs `upgrade-guard hook pre` before
  // and `hook post` after each dpkg invocation. One apt process is one run: its first pre
  // hook takes the baseline and the snapshot, its post hooks check what dpkg changed since,
  // and a later pre hook of the same apt process continues that run. exit_code is the hook's:
  // pre exits 1 (apt stops before dpkg changes anything) only when the policy requires a
  // snapshot that could not be taken, or a rollback is unfinished (what dpkg would install
  // could be thrown away by completing it); post exits 1 when the checks found a regression
  // (apt then fails, so `apt-get upgrade && reboot` does not reboot). Other trouble of the
  // guard's own never fails apt.
  [[nodiscard]] RunSummary hook_pre();
  [[nodiscard]] RunSummary hook_post();
  // The package's prerm on removal (`upgrade-guard hook release`): the run this apt process's
  // pre hook opened is ended as interrupted (its post hook will be gone with the package), the
  // session file removed, and the reboot gate's runtime drop-ins removed (nothing would be
  // left to open the gate). A closed gate is said in the message: removing the package does
  // not make a reboot safe. Never fails.
  [[nodiscard]] RunSummary hook_release();

  // Finishes the work of this root that a dead guard left: rollbacks recorded as running or
  // failed (completed, or with `abandon` given up), then runs whose process is gone (their
  // post-checks and the policy's action; a run killed before its command is marked
  // interrupted and a snapshot it left is recorded or, when incomplete, removed). One summary
  // per thing finished.
  [[nodiscard]] std::vector<RunSummary> recover(RecoverMode mode = RecoverMode::finish);

  // `upgrade-guard rollback [--to ID]`: recorded as a run of kind rollback, done by the same
  // rollback step as a run's, so an interrupted one blocks new runs and `recover` completes it.
  // exit_code 0 when rolled back.
  [[nodiscard]] RunSummary roll_back_to(const std::string& snapshot_id);

 private:
  RunSummary recover_run(const state::RunRecord& record);
  void recover_snapshot(const state::RunRecord& record, RunSummary& s);

  RunContext& ctx_;
};

// A line each about work a new run must not start on top of: unfinished runs whose process
// is gone, runs the store cannot read, rollbacks interrupted or failed. `blocks_hook` marks what
// must stop even apt's hook: an unfinished rollback could throw away what dpkg installs.
// e.g. {"run 12 was interrupted during the command phase: run `upgrade-guard recover`", false}.
struct OpenWork {
  std::string text;
  bool blocks_hook = false;
  // The root may hold a change no check has judged (a run interrupted once its command had
  // started, e.g. when a full disk stopped the state database and the gate file alike):
  // `gate status` reads closed.
  bool closes_gate = false;
};
[[nodiscard]] std::vector<OpenWork> open_work(const state::StateStore& store);

}  // namespace guard::run
