// The verdict as a pure function: no pipeline, no store, just the facts and the decision.
#include "guard/run/verdict.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "guard/core/exit_code.h"

namespace guard::run {
namespace {

using ::testing::HasSubstr;
using policies::OnFail;
using state::RunOutcome;

VerdictFacts facts(CommandEnd command, std::size_t regressions, OnFail on_fail, bool snapshot) {
  VerdictFacts f;
  f.command = command;
  f.command_text = "`apt-get -y upgrade` (exited with status 0)";
  f.regressions = regressions;
  f.on_fail = on_fail;
  f.snapshot = snapshot ? "20261202-101500-pre-run7" : "";
  f.can_roll_back = snapshot;
  return f;
}

TEST(Verdict, APassingRunIsTheOnlyOneThatVouchesForAnything) {
  for (CommandEnd end : {CommandEnd::ok, CommandEnd::unknown}) {
    auto d = decide_run(facts(end, 0, OnFail::rollback, true));
    EXPECT_EQ(d.action, RunAction::keep);
    EXPECT_EQ(d.outcome, RunOutcome::passed);
    EXPECT_EQ(d.exit_code, kExitOk);
    EXPECT_TRUE(d.known_good);
  }
  for (CommandEnd end : {CommandEnd::failed, CommandEnd::killed}) {
    auto d = decide_run(facts(end, 0, OnFail::rollback, true));
    EXPECT_EQ(d.action, RunAction::keep) << to_string(end);
    EXPECT_EQ(d.outcome, RunOutcome::command_failed);
    EXPECT_EQ(d.exit_code, kExitCommandFailed);
    EXPECT_FALSE(d.known_good);
    EXPECT_THAT(d.message, HasSubstr("nothing is marked known-good"));
  }
}

TEST(Verdict, ARegressionDoesWhatThePolicySaysAndSaysSo) {
  auto rb = decide_run(facts(CommandEnd::ok, 2, OnFail::rollback, true));
  EXPECT_EQ(rb.action, RunAction::roll_back);
  EXPECT_EQ(rb.exit_code, kExitRolledBack);
  EXPECT_THAT(rb.message, HasSubstr("2 new blocking findings after `apt-get -y upgrade`"));
  EXPECT_THAT(rb.message, HasSubstr("rolled back to 20261202-101500-pre-run7"));
  auto gate = decide_run(facts(CommandEnd::failed, 1, OnFail::block_reboot, true));
  EXPECT_EQ(gate.action, RunAction::close_gate);
  EXPECT_EQ(gate.outcome, RunOutcome::gated);
  EXPECT_EQ(gate.exit_code, kExitChecksFailed);
  EXPECT_THAT(gate.message, HasSubstr("1 new blocking finding after"));
  auto warn = decide_run(facts(CommandEnd::ok, 1, OnFail::warn, true));
  EXPECT_EQ(warn.action, RunAction::warn);
  EXPECT_EQ(warn.outcome, RunOutcome::warned);
  EXPECT_EQ(warn.exit_code, kExitChecksFailed);
  EXPECT_THAT(warn.message, HasSubstr("nothing was done"));
}

TEST(Verdict, RollbackWithoutASnapshotOrAfterAFailedOneClosesTheGate) {
  auto none = decide_run(facts(CommandEnd::ok, 1, OnFail::rollback, false));
  EXPECT_EQ(none.action, RunAction::close_gate);
  ASSERT_EQ(none.notes.size(), 1u);
  EXPECT_THAT(none.notes[0], HasSubstr("no snapshot was taken"));
  auto failed = rollback_failed(facts(CommandEnd::ok, 1, OnFail::rollback, true), "No space left on device");
  EXPECT_EQ(failed.action, RunAction::close_gate);
  EXPECT_EQ(failed.outcome, RunOutcome::gated);
  ASSERT_FALSE(failed.notes.empty());
  EXPECT_THAT(failed.notes[0], HasSubstr("the rollback to 20261202-101500-pre-run7 failed: No space left on device"));
  EXPECT_THAT(failed.notes[0], HasSubstr("upgrade-guard recover"));
}

TEST(Verdict, TheRecordedCommandStatusReadsBackAsHowTheCommandEnded) {
  base::ProcessResult ok;
  ok.exit_code = 0;
  base::ProcessResult failed;
  failed.exit_code = 100;
  base::ProcessResult killed;
  killed.signal = 9;
  base::ProcessResult timed_out;
  timed_out.timed_out = true;
  for (const auto& [result, end] : std::vector<std::pair<base::ProcessResult, CommandEnd>>{
           {ok, CommandEnd::ok}, {failed, CommandEnd::failed}, {killed, CommandEnd::killed},
           {timed_out, CommandEnd::killed}}) {
    EXPECT_EQ(command_end(result), end) << result.describe();
    EXPECT_EQ(command_end(result.describe()), end) << result.describe();  // what recover reads back
  }
  EXPECT_EQ(command_end("could not start: /usr/bin/apt-get: exec: No such file"), CommandEnd::failed);
  EXPECT_EQ(command_end("hook: dpkg finished under apt pid 4242"), CommandEnd::unknown);
  EXPECT_EQ(command_end("interrupted"), CommandEnd::unknown);
}

}  // namespace
}  // namespace guard::run
