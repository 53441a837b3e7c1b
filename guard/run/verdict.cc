#include "guard/run/verdict.h"

#include <fmt/format.h>

#include "base/string_table.h"
#include "guard/core/exit_code.h"

namespace guard::run {

namespace {

constexpr base::StringTable<CommandEnd, 4> kCommandEnds{{{
    {CommandEnd::ok, "ok"},
    {CommandEnd::failed, "failed"},
    {CommandEnd::killed, "killed"},
    {CommandEnd::unknown, "unknown"},
}}};

constexpr base::StringTable<RunAction, 4> kActions{{{
    {RunAction::keep, "keep"},
    {RunAction::roll_back, "roll-back"},
    {RunAction::close_gate, "close-gate"},
    {RunAction::warn, "warn"},
}}};

}  // namespace

const char* to_string(CommandEnd end) { return kCommandEnds.name(end); }
const char* to_string(RunAction action) { return kActions.name(action); }

CommandEnd command_end(const base::ProcessResult& result) {
  if (result.timed_out || result.signal != 0) return CommandEnd::killed;
  return result.exit_code == 0 ? CommandEnd::ok : CommandEnd::failed;
}

CommandEnd command_end(std::string_view status) {
  auto starts = [&](std::string_view prefix) { return status.substr(0, prefix.size()) == prefix; };
  if (status == "exited with status 0") return CommandEnd::ok;
  if (starts("exited with status ") || starts("could not start")) return CommandEnd::failed;
  if (starts("killed by signal ") || starts("timed out after ")) return CommandEnd::killed;
  return CommandEnd::unknown;
}

RunDecision decide_run(const VerdictFacts& f) {
  RunDecision d;
  if (f.regressions == 0) {
    d.action = RunAction::keep;
    if (f.command == CommandEnd::failed || f.command == CommandEnd::killed) {
      d.outcome = state::RunOutcome::command_failed;
      d.exit_code = kExitCommandFailed;
      d.message = fmt::format(
          "{} {}; the checks found no regression: nothing was rolled back and nothing is marked known-good",
          f.command_text, f.command == CommandEnd::killed ? "was killed" : "failed");
      return d;
    }
    d.outcome = state::RunOutcome::passed;
    d.exit_code = kExitOk;
    d.known_good = true;
    d.message = "the upgrade passed its checks";
    return d;
  }

  std::string broke = fmt::format("{} new blocking finding{} after {}", f.regressions, f.regressions == 1 ? "" : "s",
                                  f.command_text);
  policies::OnFail action = f.on_fail;
  if (action == policies::OnFail::rollback && !f.can_roll_back) {
    d.notes.push_back(f.snapshot.empty()
                          ? "the policy says rollback, but no snapshot was taken: closing the gate instead"
                          : "the policy says rollback, but snapshot " + f.snapshot +
                                " cannot be restored: closing the gate instead");
    action = policies::OnFail::block_reboot;
  }
  switch (action) {
    case policies::OnFail::rollback:
      d.action = RunAction::roll_back;
      d.outcome = state::RunOutcome::rolled_back;
      d.exit_code = kExitRolledBack;
      d.message = broke + "; rolled back to " + f.snapshot;
      return d;
    case policies::OnFail::block_reboot:
      d.action = RunAction::close_gate;
      d.outcome = state::RunOutcome::gated;
      d.exit_code = kExitChecksFailed;
      d.message = broke + "; reboot gate closed";
      return d;
    case policies::OnFail::warn:
      d.action = RunAction::warn;
      d.outcome = state::RunOutcome::warned;
      d.exit_code = kExitChecksFailed;
      d.message = broke + " (policy on_fail = warn: nothing was done)";
      return d;
  }
  return d;
}

RunDecision rollback_failed(const VerdictFacts& f, const std::string& why) {
  VerdictFacts gate = f;
  gate.on_fail = policies::OnFail::block_reboot;
  RunDecision d = decide_run(gate);
  d.notes.insert(d.notes.begin(), "the rollback to " + f.snapshot + " failed: " + why +
                                      "; `upgrade-guard recover` tries it again once the cause is fixed");
  return d;
}

}  // namespace guard::run
