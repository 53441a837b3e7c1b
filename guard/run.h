// The guarded upgrade: upgrade-guard run -- apt-get dist-upgrade, and its recovery.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/process.h"
#include "base/root.h"
#include "checks/dpkg_diff.h"
#include "checks/report.h"
#include "guard/cli.h"
#include "guard/state.h"
#include "policies/policy.h"
#include "snapshots/backend.h"

namespace guard {

// Where a run keeps what is not in the database: the dpkg status from before the command
// (<state_dir>/runs/run-<id>.status) and the command's output (<log_dir>/run-<id>.log).
struct RunPaths {
  std::string state_dir = "/var/lib/upgrade-guard";
  std::string log_dir = "/var/log/upgrade-guard";
  std::string run_dir = "/run/upgrade-guard";
};

// Everything a run produced, for the report. e.g. after `run -- apt-get -y upgrade`:
// {run_id=12, outcome=passed, exit_code=0, changes={upgraded: libssl3 ...}}.
struct RunSummary {
  std::int64_t run_id = 0;
  RunOutcome outcome = RunOutcome::failed;
  int exit_code = kExitEnvironment;
  std::vector<std::string> command;
  std::string command_status;          // "exited with status 0"
  std::optional<std::string> snapshot; // the pre-upgrade snapshot id
  std::string log_file;
  checks::StatusDiff changes;
  std::optional<checks::Report> post;     // post-checks, compared with the baseline
  std::optional<checks::Report> restored; // checks of the rolled-back root
  std::optional<snapshots::RollbackResult> rollback;
  std::vector<std::string> notes;         // what was done and how to undo it
  std::string message;                    // one line: why the run ended as it did
};

// The run pipeline over one root. Reading run() top to bottom tells the whole story:
// lock → preflight → baseline → snapshot → command → changes → post-checks → verdict.
class RunPipeline {
 public:
  RunPipeline(const GlobalOptions& options, policies::Policy policy, RunPaths paths, base::CommandRunner& runner);

  // Runs `argv` guarded. Never throws; the summary says what happened (and exit_code).
  [[nodiscard]] RunSummary run(const std::vector<std::string>& argv);
  // Finishes runs whose guard died (no live pid): post-checks and the policy's action, or a
  // pending rollback completed. Returns one summary per run recovered.
  [[nodiscard]] std::vector<RunSummary> recover();

  // apt hook mode (packaging/apt/80upgrade-guard). apt runs `upgrade-guard hook pre` before
  // and `hook post` after each dpkg invocation. One apt process is one run: its first pre
  // hook takes the baseline and the snapshot, its post hooks check what dpkg changed since,
  // and a later pre hook of the same apt process continues that run (the CLI skips both
  // inside `upgrade-guard run`, where UPGRADE_GUARD_RUN is set). exit_code is the hook's: pre exits 1
  // (apt stops before dpkg changes anything) only when the policy requires a snapshot that
  // could not be taken; post exits 1 when the checks found a regression (apt then fails, so
  // `apt-get upgrade && reboot` does not reboot). Errors of the guard itself never fail apt.
  [[nodiscard]] RunSummary hook_pre();
  [[nodiscard]] RunSummary hook_post();

 private:
  enum class Mode { command, hook };
  struct Context;
  RunSummary& refuse(Context& ctx, const std::string& why, int code = kExitEnvironment);
  bool begin(Context& ctx, std::int64_t owner_pid, Mode mode);
  std::optional<std::string> preflight(Context& ctx, Mode mode);
  std::optional<std::string> prepare_backend(Context& ctx);
  RunSummary finish_after_command(Context& ctx, policies::OnFail on_fail);

  const GlobalOptions& options_;
  policies::Policy policy_;
  RunPaths paths_;
  base::CommandRunner& runner_;
};

// "run 12 was interrupted during the command: run `upgrade-guard recover`" for each
// unfinished run whose guard is gone; empty when there is none (or no state yet).
[[nodiscard]] std::vector<std::string> interrupted_run_notices(const std::string& state_dir);

// The human report of a run: what changed, what broke, what was done, how to undo it.
[[nodiscard]] std::string render_run_summary(const RunSummary& summary, bool color);
// The same as JSON ("schema": 1).
[[nodiscard]] std::string render_run_json(const RunSummary& summary);

}  // namespace guard
