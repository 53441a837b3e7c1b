// The run's bookkeeping when the guard is killed, the store fails or a rollback fails: each
// defect found by killing the guard at every phase, reproduced on the fakes, no root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include "base/strings.h"
#include "guard/core/retention.h"
#include "guard/gate/gate_file.h"
#include "guard/run/pipeline.h"
#include "tests/unit/guard/faulty_vfs.h"
#include "tests/unit/guard/pipeline_fixture.h"

namespace guard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::GuardKilled;
using testing::PipelineWorld;
using testing::stanza;

const std::vector<std::string> kUpgrade{"apt-get", "-y", "dist-upgrade"};

std::string upgraded(bool broken) {
  return stanza("base-files", "12.4", "install ok installed") +
         stanza("ugdemo", "2.0", broken ? "install ok half-configured" : "install ok installed");
}

std::string said(const run::RunSummary& s) { return s.message + "\n" + base::join(s.notes, "\n"); }

// ---- killed after its rollback finished, before the run was closed ------------------------

TEST(Bookkeeping, KilledAfterTheRollbackRecoverSaysRolledBackNotPassed) {
  PipelineWorld w;
  const std::string before = w.dpkg_status();
  w.runner.edit = [&](const std::string&) { w.set_dpkg_status(upgraded(true)); };
  w.backend->after_rollback = [] { throw GuardKilled{}; };
  EXPECT_THROW((void)run::RunPipeline(w.context(testing::dead_pid())).run(kUpgrade), GuardKilled);
  w.backend->after_rollback = nullptr;
  ASSERT_EQ(w.dpkg_status(), before) << "the backend finished the rollback before the kill";

  auto recovered = run::RunPipeline(w.context(::getpid())).recover();
  ASSERT_EQ(recovered.size(), 1u);
  const run::RunSummary& s = recovered.front();
  EXPECT_EQ(s.exit_code, kExitRolledBack) << said(s);
  EXPECT_EQ(s.outcome, state::RunOutcome::rolled_back) << said(s);
  EXPECT_THAT(said(s), Not(HasSubstr("undo this upgrade")));
  auto run = w.run_record(1);
  ASSERT_TRUE(run && run->outcome);
  EXPECT_EQ(*run->outcome, state::RunOutcome::rolled_back);
  EXPECT_EQ(*run->exit_code, kExitRolledBack);
  EXPECT_FALSE(w.known_good(w.backend->created.front())) << "nothing is known-good after a rollback";
  // The broken root it kept is recorded (kept by its own count, snapshot.keep_broken).
  auto snaps = w.store->list_snapshots(w.root_dir);
  ASSERT_TRUE(snaps);
  bool broken = false;
  for (const auto& r : *snaps) broken |= r.location.find("broken") != std::string::npos;
  EXPECT_TRUE(broken);
  EXPECT_TRUE(run::RunPipeline(w.context(::getpid())).recover().empty()) << "nothing left to recover";
}

// ---- a manual rollback killed half-way ----------------------------------------------------

TEST(Bookkeeping, ManualRollbackKilledHalfWayBlocksRunsAndHooksUntilRecoverCompletesIt) {
  PipelineWorld w;
  auto snap = w.backend->create("manual", {});
  ASSERT_TRUE(snap);
  const std::string before = w.dpkg_status();
  w.set_dpkg_status(upgraded(false));  // an upgrade since the snapshot
  w.backend->after_journal = [] { throw GuardKilled{}; };
  EXPECT_THROW((void)run::RunPipeline(w.context(testing::dead_pid())).roll_back_to(snap->id), GuardKilled);
  w.backend->after_journal = nullptr;

  // Every command hears of it; a new run is refused; apt's hook stops apt.
  auto work = run::open_work(*w.store);
  ASSERT_EQ(work.size(), 1u);
  EXPECT_THAT(work.front().text, HasSubstr("rollback"));
  EXPECT_THAT(work.front().text, HasSubstr("upgrade-guard recover"));
  EXPECT_TRUE(work.front().blocks_hook);
  auto refused = run::RunPipeline(w.context(::getpid())).run(kUpgrade);
  EXPECT_EQ(refused.exit_code, kExitEnvironment);
  EXPECT_THAT(refused.message, HasSubstr("rollback"));
  EXPECT_TRUE(w.runner.commands.empty()) << "the command never ran";
  auto hook = run::RunPipeline(w.context(::getpid())).hook_pre();
  EXPECT_EQ(hook.exit_code, kExitChecksFailed) << hook.message;
  EXPECT_THAT(hook.message, HasSubstr("refusing to let dpkg run"));
  // The snapshot it rolls back to is protected.
  auto prot = protected_snapshots(*w.store, w.root_dir);
  ASSERT_TRUE(prot);
  EXPECT_THAT(*prot, ::testing::Contains(snap->id));

  auto recovered = run::RunPipeline(w.context(::getpid())).recover();
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered.front().exit_code, kExitOk) << said(recovered.front());
  EXPECT_EQ(recovered.front().outcome, state::RunOutcome::rolled_back);
  EXPECT_EQ(w.dpkg_status(), before);
  auto run = w.run_record(1);
  ASSERT_TRUE(run && run->outcome);
  EXPECT_EQ(run->kind, state::RunKind::rollback);
  EXPECT_EQ(*run->outcome, state::RunOutcome::rolled_back);
  EXPECT_TRUE(run::open_work(*w.store).empty());
}

TEST(Bookkeeping, RecoverAbandonRevertsAnUnswappedRollbackAndKeepsTheRoot) {
  PipelineWorld w;
  auto snap = w.backend->create("manual", {});
  ASSERT_TRUE(snap);
  w.set_dpkg_status(upgraded(false));
  w.backend->after_journal = [] { throw GuardKilled{}; };
  EXPECT_THROW((void)run::RunPipeline(w.context(testing::dead_pid())).roll_back_to(snap->id), GuardKilled);
  w.backend->after_journal = nullptr;
  auto gave_up = run::RunPipeline(w.context(::getpid())).recover(run::RecoverMode::abandon);
  ASSERT_EQ(gave_up.size(), 1u);
  EXPECT_EQ(gave_up.front().exit_code, kExitOk) << said(gave_up.front());
  EXPECT_THAT(gave_up.front().message, HasSubstr("abandoned"));
  EXPECT_EQ(w.dpkg_status(), upgraded(false)) << "the root stays as it is";
  EXPECT_TRUE(run::open_work(*w.store).empty());
}

// ---- killed during the snapshot phase ------------------------------------------------------

TEST(Bookkeeping, SnapshotTakenButNotRecordedIsRecordedByRecoverAndPrunable) {
  PipelineWorld w;
  w.backend->after_create = [] { throw GuardKilled{}; };
  EXPECT_THROW((void)run::RunPipeline(w.context(testing::dead_pid())).run(kUpgrade), GuardKilled);
  w.backend->after_create = nullptr;
  ASSERT_EQ(w.backend->created.size(), 1u);
  auto recovered = run::RunPipeline(w.context(::getpid())).recover();
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered.front().outcome, state::RunOutcome::interrupted);
  EXPECT_THAT(said(recovered.front()), HasSubstr("recorded the snapshot " + w.backend->created.front()));
  auto rec = w.store->get_snapshot(w.backend->created.front());
  ASSERT_TRUE(rec && *rec);
  EXPECT_FALSE((*rec)->pinned_reason);
  auto prot = protected_snapshots(*w.store, w.root_dir);
  ASSERT_TRUE(prot);
  EXPECT_THAT(*prot, Not(::testing::Contains(w.backend->created.front()))) << "retention may prune it";
}

// ---- a run row this program cannot read ---------------------------------------------------

TEST(Bookkeeping, AnUnreadableRunRowStopsRunAndRecoverSaysWhy) {
  PipelineWorld w;
  w.runner.edit = [&](const std::string&) { w.set_dpkg_status(upgraded(false)); };
  w.runner.die_after_edit = true;
  EXPECT_THROW((void)run::RunPipeline(w.context(testing::dead_pid())).run(kUpgrade), GuardKilled);
  w.store.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((w.state_dir + "/state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE runs SET phase = 'from-a-newer-version'", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  w.runner.die_after_edit = false;
  w.runner.commands.clear();
  auto refused = run::RunPipeline(w.context(::getpid())).run(kUpgrade);
  EXPECT_EQ(refused.exit_code, kExitEnvironment);
  EXPECT_THAT(refused.message, HasSubstr("cannot read"));
  EXPECT_THAT(refused.message, HasSubstr("from-a-newer-version"));
  EXPECT_TRUE(w.runner.commands.empty());
  auto recovered = run::RunPipeline(w.context(::getpid())).recover();
  ASSERT_FALSE(recovered.empty());
  EXPECT_EQ(recovered.back().exit_code, kExitEnvironment);
  EXPECT_THAT(recovered.back().message, HasSubstr("run 1"));
}

// ---- a failed command with nothing changed -------------------------------------------------

TEST(Bookkeeping, AFailedCommandThatChangedNothingIsNotAPass) {
  PipelineWorld w;
  w.runner.result.exit_code = 100;  // apt-get: E: ... No space left on device, nothing unpacked
  auto s = run::RunPipeline(w.context(::getpid())).run(kUpgrade);
  EXPECT_EQ(s.exit_code, kExitCommandFailed) << said(s);
  EXPECT_EQ(s.outcome, state::RunOutcome::command_failed);
  EXPECT_THAT(s.message, HasSubstr("exited with status 100"));
  EXPECT_FALSE(w.known_good(w.backend->created.front()));
  auto baseline = w.store->load_baseline(w.root_dir);
  ASSERT_TRUE(baseline);
  EXPECT_FALSE(*baseline) << "a failed command's findings are not accepted";
  EXPECT_FALSE(w.gate_closed());
}

// ---- a rollback that failed for lack of space ---------------------------------------------

TEST(Bookkeeping, ARollbackThatFailedForLackOfSpaceIsRetriedByRecover) {
  PipelineWorld w;
  const std::string before = w.dpkg_status();
  w.runner.edit = [&](const std::string&) { w.set_dpkg_status(upgraded(true)); };
  w.backend->rollback_fails_mid_way = base::Error{"copy_file_range", "/var/log/journal", ENOSPC, "no space left"};
  auto s = run::RunPipeline(w.context(::getpid())).run(kUpgrade);
  EXPECT_EQ(s.exit_code, kExitChecksFailed) << said(s);
  EXPECT_EQ(s.outcome, state::RunOutcome::gated);
  EXPECT_THAT(said(s), HasSubstr("recover"));
  EXPECT_TRUE(w.gate_closed());
  auto work = run::open_work(*w.store);
  ASSERT_EQ(work.size(), 1u);
  EXPECT_THAT(work.front().text, HasSubstr("failed"));

  w.backend->rollback_fails_mid_way.reset();  // space freed
  auto recovered = run::RunPipeline(w.context(::getpid())).recover();
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered.front().exit_code, kExitRolledBack) << said(recovered.front());
  EXPECT_EQ(w.dpkg_status(), before);
  auto run = w.run_record(1);
  ASSERT_TRUE(run && run->outcome);
  EXPECT_EQ(*run->outcome, state::RunOutcome::rolled_back);
  EXPECT_FALSE(w.gate_closed()) << "the gate the failed rollback closed opens once the root is restored";
  EXPECT_TRUE(run::open_work(*w.store).empty());
}

// ---- the state store failing --------------------------------------------------------------

// Every commit of a run, failing in turn: the run stops safely (never a success it could not
// record, the gate closed once the command ran, nothing known-good unless the run is recorded
// passed), and once the store works again `recover` brings it to a consistent end.
void fail_every_commit(bool regression, bool disk_full) {
  testing::FaultyVfs vfs;
  int total = 0;
  {
    PipelineWorld w;
    w.runner.edit = [&](const std::string&) { w.set_dpkg_status(upgraded(regression)); };
    RunContext& ctx = w.context(::getpid());
    vfs.heal();
    auto s = run::RunPipeline(ctx).run(kUpgrade);
    ASSERT_EQ(s.exit_code, regression ? kExitRolledBack : kExitOk) << said(s);
    total = vfs.commits();
  }
  ASSERT_GT(total, 5);
  for (int n = 1; n <= total; ++n) {
    SCOPED_TRACE("commit " + std::to_string(n) + " of " + std::to_string(total) + (disk_full ? ", disk full" : ""));
    PipelineWorld w;
    const std::string before = w.dpkg_status();
    w.runner.edit = [&](const std::string&) { w.set_dpkg_status(upgraded(regression)); };
    RunContext& ctx = w.context(testing::dead_pid());  // the process is gone once it stopped
    vfs.fail_commit(n, disk_full);
    auto s = run::RunPipeline(ctx).run(kUpgrade);
    ASSERT_TRUE(vfs.fired());
    vfs.heal();
    const bool ran = !w.runner.commands.empty();
    if (regression) {
      EXPECT_TRUE(s.exit_code == kExitRolledBack || s.exit_code == kExitEnvironment) << said(s);
    } else {
      EXPECT_EQ(s.exit_code, kExitEnvironment) << said(s);
    }
    if (s.exit_code == kExitEnvironment) {
      EXPECT_THAT(said(s), HasSubstr("state database")) << said(s);
      if (ran) {
        EXPECT_TRUE(w.gate_closed()) << said(s);
      }
    }
    auto record = w.run_record(1);
    if (!w.backend->created.empty() && w.known_good(w.backend->created.front())) {
      ASSERT_TRUE(record && record->outcome);
      EXPECT_EQ(*record->outcome, state::RunOutcome::passed);
    }
    // The store works again: recover finishes what is left, consistently.
    auto recovered = run::RunPipeline(w.context(::getpid())).recover();
    record = w.run_record(1);
    if (!record) continue;  // the run was never recorded: nothing happened
    ASSERT_TRUE(record->outcome) << "recover leaves no unfinished run";
    if (regression) {
      EXPECT_EQ(w.dpkg_status(), before) << "the broken upgrade is gone";
      if (ran) {
        EXPECT_EQ(*record->outcome, state::RunOutcome::rolled_back);
      }
    } else if (ran) {
      EXPECT_EQ(*record->outcome, state::RunOutcome::passed);
      EXPECT_TRUE(w.known_good(w.backend->created.front()));
    }
    if (ran && *record->outcome != state::RunOutcome::gated) {
      EXPECT_FALSE(w.gate_closed());
    }
    EXPECT_TRUE(run::open_work(*w.store).empty());
  }
}

TEST(StateFaults, EveryCommitOfAPassingRunFailingOnce) { fail_every_commit(false, false); }
TEST(StateFaults, EveryCommitOfAPassingRunFailingWithTheDiskFull) { fail_every_commit(false, true); }
TEST(StateFaults, EveryCommitOfARolledBackRunFailingOnce) { fail_every_commit(true, false); }
TEST(StateFaults, EveryCommitOfARolledBackRunFailingWithTheDiskFull) { fail_every_commit(true, true); }

TEST(StateFaults, AFailedWriteAfterTheCommandClosesTheGateWithAClearMessage) {
  testing::FaultyVfs vfs;
  PipelineWorld w;
  w.runner.edit = [&](const std::string&) {
    w.set_dpkg_status(upgraded(false));
    vfs.fail_commit(1, true);  // the disk fills up while the command runs
  };
  auto s = run::RunPipeline(w.context(::getpid())).run(kUpgrade);
  vfs.heal();
  EXPECT_EQ(s.exit_code, kExitEnvironment);
  EXPECT_EQ(s.outcome, state::RunOutcome::failed);
  EXPECT_THAT(s.message, HasSubstr("the state database failed"));
  EXPECT_THAT(s.message, HasSubstr("the reboot gate is closed"));
  EXPECT_THAT(s.message, HasSubstr("upgrade-guard recover"));
  auto file = gate::read_gate_file(gate::gate_file_path(w.state_dir));
  ASSERT_TRUE(file);
  EXPECT_TRUE(file->closed) << "the gate file is written first";
  EXPECT_TRUE(w.gate_closed());
}

}  // namespace
}  // namespace guard
