// The verdict and what is done about it, end to end through the pipeline with fakes and no
// root: command ok / failed / killed × regression none / blocking × on_fail rollback /
// block-reboot / warn × snapshot present / absent × rollback ok / failed × run / hook /
// recover. Each case asserts the exit code, the recorded outcome, what is marked known-good,
// the gate, the root afterwards and the words the operator reads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/strings.h"
#include "guard/run/pipeline.h"
#include "tests/unit/guard/pipeline_fixture.h"

namespace guard {
namespace {

using policies::OnFail;
using testing::GuardKilled;
using testing::PipelineWorld;
using testing::stanza;

enum class Mode { run, hook, recover };
enum class Cmd { ok, failed, killed };

struct Case {
  Mode mode = Mode::run;
  Cmd cmd = Cmd::ok;
  bool regression = false;
  OnFail on_fail = OnFail::rollback;
  bool snapshot = true;
  bool rollback_ok = true;
};

std::string describe(const Case& c) {
  std::string n = c.mode == Mode::run ? "Run" : c.mode == Mode::hook ? "Hook" : "Recover";
  n += c.cmd == Cmd::ok ? "_CmdOk" : c.cmd == Cmd::failed ? "_CmdFailed" : "_CmdKilled";
  n += c.regression ? "_Regression" : "_Clean";
  n += c.on_fail == OnFail::rollback ? "_Rollback" : c.on_fail == OnFail::block_reboot ? "_BlockReboot" : "_Warn";
  n += c.snapshot ? "_Snapshot" : "_NoSnapshot";
  if (c.regression && c.on_fail == OnFail::rollback && c.snapshot) n += c.rollback_ok ? "_RollbackOk" : "_RollbackFails";
  return n;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) { return describe(info.param); }

// gtest prints a parameter with this instead of its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << describe(c); }

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (Mode mode : {Mode::run, Mode::hook, Mode::recover}) {
    // apt's hooks never see dpkg's exit status: their command is neither ok nor failed to us.
    std::vector<Cmd> cmds = mode == Mode::hook ? std::vector<Cmd>{Cmd::ok} : std::vector<Cmd>{Cmd::ok, Cmd::failed, Cmd::killed};
    for (Cmd cmd : cmds) {
      for (bool regression : {false, true}) {
        for (OnFail on_fail : {OnFail::rollback, OnFail::block_reboot, OnFail::warn}) {
          for (bool snapshot : {true, false}) {
            bool rollback_matters = regression && on_fail == OnFail::rollback && snapshot;
            for (bool rollback_ok : rollback_matters ? std::vector<bool>{true, false} : std::vector<bool>{true})
              out.push_back(Case{mode, cmd, regression, on_fail, snapshot, rollback_ok});
          }
        }
      }
    }
  }
  return out;
}

// What the operator must get, from the contract (not from the code under test).
struct Expect {
  int exit_code = 0;
  std::string outcome;
  bool known_good = false;  // the pre-run snapshot marked known-good
  bool gate_closed = false;
  std::string words;        // in the message or the notes
  bool restored = false;    // the root's dpkg status is the one from before the run
};

Expect expect(const Case& c) {
  const bool command_bad = c.mode != Mode::hook && c.cmd != Cmd::ok;
  if (!c.regression) {
    if (command_bad) return {5, "command-failed", false, false, "nothing is marked known-good", false};
    return {0, "passed", c.snapshot, false, "the upgrade passed its checks", false};
  }
  // Every regression fails apt's hook with 1; `run` and `recover` say what was done.
  auto code = [&](int run_code) { return c.mode == Mode::hook ? 1 : run_code; };
  switch (c.on_fail) {
    case OnFail::rollback:
      if (!c.snapshot) return {code(1), "gated", false, true, "no snapshot was taken: closing the gate instead", false};
      if (!c.rollback_ok) return {code(1), "gated", false, true, "the rollback to", false};
      return {code(3), "rolled-back", false, false, "rolled back to", true};
    case OnFail::block_reboot:
      return {code(1), "gated", false, true, "reboot gate closed", false};
    case OnFail::warn:
      return {code(1), "warned", false, false, "nothing was done", false};
  }
  return {};
}

class VerdictMatrix : public ::testing::TestWithParam<Case> {};

TEST_P(VerdictMatrix, ExitOutcomeKnownGoodGateRootAndWords) {
  const Case c = GetParam();
  PipelineWorld w;
  w.policy.on_fail = c.on_fail;
  w.policy.hook.on_fail = c.on_fail;
  w.snapshots_off = !c.snapshot;
  if (!c.rollback_ok)
    w.backend->rollback_fails = base::Error{"btrfs_util_create_snapshot", "/top/@upgrade-guard", ENOSPC,
                                            "cannot create the restore subvolume"};
  const std::string before = w.dpkg_status();
  // The "upgrade": ugdemo 1.0 -> 2.0; with a regression dpkg stops half-way through it.
  const std::string after = stanza("base-files", "12.4", "install ok installed") +
                            stanza("ugdemo", "2.0", c.regression ? "install ok half-configured" : "install ok installed");
  w.runner.edit = [&](const std::string&) { w.set_dpkg_status(after); };
  if (c.cmd == Cmd::failed) w.runner.result.exit_code = 100;
  if (c.cmd == Cmd::killed) {
    w.runner.result.exit_code = -1;
    w.runner.result.signal = 9;
  }
  const std::vector<std::string> argv{"apt-get", "-y", "dist-upgrade"};

  run::RunSummary s;
  switch (c.mode) {
    case Mode::run:
      s = run::RunPipeline(w.context(::getpid())).run(argv);
      break;
    case Mode::hook: {
      auto pre = run::RunPipeline(w.context(::getpid())).hook_pre();
      ASSERT_EQ(pre.exit_code, 0) << pre.message;
      ASSERT_EQ(pre.snapshot.has_value(), c.snapshot) << pre.message;
      w.runner.edit(w.root_dir);  // dpkg's work, between the hooks
      s = run::RunPipeline(w.context(::getpid())).hook_post();
      break;
    }
    case Mode::recover: {
      // The guard dies right after it recorded how the command ended.
      w.runner.die_after_edit = true;
      RunContext& dying = w.context(testing::dead_pid());
      EXPECT_THROW((void)run::RunPipeline(dying).run(argv), GuardKilled);
      ASSERT_TRUE(w.store->set_command_status(1, w.runner.result.describe()));
      auto recovered = run::RunPipeline(w.context(::getpid())).recover();
      ASSERT_EQ(recovered.size(), 1u);
      s = recovered.front();
      break;
    }
  }

  const Expect e = expect(c);
  std::string said = s.message + "\n" + base::join(s.notes, "\n");
  EXPECT_EQ(s.exit_code, e.exit_code) << said;
  auto record = w.run_record(s.run_id);
  ASSERT_TRUE(record) << said;
  ASSERT_TRUE(record->outcome) << said;
  EXPECT_EQ(state::to_string(*record->outcome), e.outcome) << said;
  EXPECT_EQ(state::to_string(s.outcome), e.outcome) << said;
  EXPECT_NE(said.find(e.words), std::string::npos) << "expected \"" << e.words << "\" in:\n" << said;
  EXPECT_EQ(w.gate_closed(), e.gate_closed) << said;
  if (c.snapshot) {
    ASSERT_EQ(w.backend->created.size(), 1u);
    EXPECT_EQ(w.known_good(w.backend->created.front()), e.known_good) << said;
  } else {
    EXPECT_TRUE(w.backend->created.empty());
  }
  EXPECT_EQ(w.dpkg_status(), e.restored ? before : after) << said;
  // Nothing is vouched for by a run that did not pass: no "undo this upgrade" advice either.
  EXPECT_EQ(said.find("to undo this upgrade") != std::string::npos, e.known_good) << said;
}

INSTANTIATE_TEST_SUITE_P(Pipeline, VerdictMatrix, ::testing::ValuesIn(all_cases()), case_name);

}  // namespace
}  // namespace guard
