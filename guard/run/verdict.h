// The verdict of a guarded run and what is done about it, as a pure function of plain facts:
// how the command ended, how many regressions the post-checks found, the policy's on_fail and
// whether a snapshot can be restored. The pipeline gathers the facts and carries the decision
// out; this file only decides, so the whole matrix is unit tested without a system.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/process.h"
#include "guard/state/records.h"
#include "policies/policy.h"

namespace guard::run {

// How the guarded command ended, as the verdict weighs it. unknown: apt's hooks (dpkg's own
// status is apt's to report) or a run whose guard died before it recorded the status.
enum class CommandEnd { ok, failed, killed, unknown };
[[nodiscard]] const char* to_string(CommandEnd end);  // CommandEnd::killed -> "killed"

// e.g. exit 0 -> ok, exit 100 -> failed, a signal or the timeout -> killed.
[[nodiscard]] CommandEnd command_end(const base::ProcessResult& result);
// The same from the status recorded for the run (base::ProcessResult::describe() text, or
// "could not start: ..."), for a run `recover` finishes. e.g. "exited with status 100" -> failed;
// "hook: dpkg finished under apt pid 4242" -> unknown.
[[nodiscard]] CommandEnd command_end(std::string_view recorded_status);

struct VerdictFacts {
  CommandEnd command = CommandEnd::ok;
  std::string command_text;    // for messages, e.g. "`apt-get -y upgrade` (exited with status 100)"
  std::size_t regressions = 0;  // blocking findings of the post-checks absent from the baseline
  policies::OnFail on_fail = policies::OnFail::rollback;
  std::string snapshot;        // the pre-run snapshot; "" when none was taken
  bool can_roll_back = false;  // the snapshot exists and a backend can restore it
};

enum class RunAction {
  keep,        // nothing to undo: the run passed, or its command failed without a regression
  roll_back,   // restore the pre-run snapshot
  close_gate,  // keep the root as it is and refuse the reboot
  warn,        // report only (policy on_fail = warn)
};
[[nodiscard]] const char* to_string(RunAction action);  // RunAction::close_gate -> "close-gate"

struct RunDecision {
  RunAction action = RunAction::close_gate;
  state::RunOutcome outcome = state::RunOutcome::gated;
  int exit_code = 1;
  // Only a run whose command succeeded and whose checks passed vouches for anything: its
  // snapshot becomes known-good, its findings the accepted baseline, old snapshots are pruned.
  bool known_good = false;
  std::string message;             // the one line the operator reads first
  std::vector<std::string> notes;  // why the action differs from what the policy asked, if it does
};

// e.g. {command=ok, regressions=0} -> keep, passed, 0, known_good;
//      {command=failed, regressions=0} -> keep, command-failed, 5, nothing known-good;
//      {regressions=2, on_fail=rollback, can_roll_back} -> roll_back, rolled-back, 3;
//      {regressions=2, on_fail=rollback, !can_roll_back} -> close_gate, gated, 1, with a note.
[[nodiscard]] RunDecision decide_run(const VerdictFacts& facts);

// What is done when the rollback `decide_run` chose failed: the gate closes instead.
// e.g. rollback_failed(facts, "no space left on device") -> close_gate, gated, 1.
[[nodiscard]] RunDecision rollback_failed(const VerdictFacts& facts, const std::string& why);

}  // namespace guard::run
