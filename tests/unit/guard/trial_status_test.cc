// `boot-check --status`: the trial's state derived from plain records and boot facts, the /proc
// parsers, and the records read from a real state database in a temp dir (nothing written by
// reading).
#include "guard/boot/trial_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>

#include "tests/common/test_env.h"

namespace guard::boot {
namespace {

using namespace guard::state;
using guard::testing::read_file;
using guard::testing::TempDir;
using guard::testing::write_file;
using ::testing::HasSubstr;

constexpr std::int64_t kBootStart = 1767225600;  // this boot's PID 1 started then
const std::string kThisBoot = "11111111-1111-1111-1111-111111111111";
const std::string kEarlierBoot = "22222222-2222-2222-2222-222222222222";

BootFacts this_boot() { return BootFacts{.boot_id = kThisBoot, .started_unix = kBootStart, .fallback_trial = {}, .settled_here = {}}; }

BootTrialRecord trial(std::int64_t id, BootTrialState s, std::int64_t created, std::int64_t updated,
                      std::optional<std::int64_t> run = 12) {
  BootTrialRecord t;
  t.id = id;
  t.run_id = run;
  t.snapshot_id = "20260101-000000-pre-run12";
  t.created_unix = created;
  t.updated_unix = updated;
  t.state = s;
  return t;
}

RunRecord run_in(const std::string& boot_id, std::int64_t started, std::optional<RunOutcome> outcome = RunOutcome::passed,
                 RunPhase phase = RunPhase::done) {
  RunRecord r;
  r.id = 12;
  r.boot_id = boot_id;
  r.started_unix = started;
  r.outcome = outcome;
  r.phase = phase;
  return r;
}

RollbackRecord rollback_in(const std::string& boot_id, RollbackState s) {
  RollbackRecord rb;
  rb.id = 1;
  rb.run_id = 12;
  rb.snapshot_id = "20260101-000000-pre-run12";
  rb.started_unix = kBootStart + 30;
  rb.state = s;
  rb.boot_id = boot_id;
  return rb;
}

// One trial of run 12, with the run.
TrialRecords records(BootTrialRecord t, std::optional<RunRecord> run) {
  TrialRecords r;
  r.run_trials = {t};
  r.trial = std::move(t);
  r.run = std::move(run);
  r.packages = 3;
  return r;
}

TEST(TrialStatusWords, StableWordsExitCodesAndSettledStates) {
  const struct {
    TrialStatus s;
    const char* word;
    int exit;
    bool settled;
  } cases[] = {{TrialStatus::none, "none", 0, true},          {TrialStatus::armed, "armed", 4, false},
               {TrialStatus::pending, "pending", 4, false},   {TrialStatus::blessed, "blessed", 0, true},
               {TrialStatus::rolled_back, "rolled-back", 3, true}, {TrialStatus::failed, "failed", 1, true}};
  for (const auto& c : cases) {
    EXPECT_STREQ(to_string(c.s), c.word);
    EXPECT_EQ(exit_code(c.s), c.exit) << c.word;
    EXPECT_EQ(settled(c.s), c.settled) << c.word;
  }
}

TEST(TrialStatusDerive, NoTrialEverIsNone) {
  EXPECT_EQ(derive_trial_status({}, this_boot()).state, TrialStatus::none);
}

TEST(TrialStatusDerive, APendingTrialOfARunOfThisBootIsArmed) {
  auto r = records(trial(3, BootTrialState::pending, kBootStart + 100, kBootStart + 100),
                   run_in(kThisBoot, kBootStart + 60));
  auto s = derive_trial_status(r, this_boot());
  EXPECT_EQ(s.state, TrialStatus::armed);
  EXPECT_THAT(s.why, HasSubstr("next boot"));
}

TEST(TrialStatusDerive, APendingTrialOfAnEarlierBootsRunIsPendingUntilChecked) {
  auto r = records(trial(3, BootTrialState::pending, kBootStart - 600, kBootStart - 600),
                   run_in(kEarlierBoot, kBootStart - 700));
  auto s = derive_trial_status(r, this_boot());
  EXPECT_EQ(s.state, TrialStatus::pending);
  EXPECT_THAT(s.why, HasSubstr("has not checked it yet"));
  // boot-check began (the attempt is counted first) but has not decided.
  r.trial->attempts = 1;
  s = derive_trial_status(r, this_boot());
  EXPECT_EQ(s.state, TrialStatus::pending);
  EXPECT_THAT(s.why, HasSubstr("not settled it yet"));
}

TEST(TrialStatusDerive, TheRunsBootIdWinsOverTheClock) {
  // The clock was stepped back after the run: its boot id still says it was this boot.
  auto r = records(trial(3, BootTrialState::pending, kBootStart - 3600, kBootStart - 3600),
                   run_in(kThisBoot, kBootStart - 3700));
  EXPECT_EQ(derive_trial_status(r, this_boot()).state, TrialStatus::armed);
  // And a run of an earlier boot stays one whatever its clock said.
  r = records(trial(3, BootTrialState::pending, kBootStart + 5, kBootStart + 5), run_in(kEarlierBoot, kBootStart + 1));
  EXPECT_EQ(derive_trial_status(r, this_boot()).state, TrialStatus::pending);
}

TEST(TrialStatusDerive, ATrialWithoutARunIsPlacedByItsTime) {
  auto before = records(trial(1, BootTrialState::pending, kBootStart - 10, kBootStart - 10, std::nullopt), std::nullopt);
  EXPECT_EQ(derive_trial_status(before, this_boot()).state, TrialStatus::pending);
  auto after = records(trial(1, BootTrialState::pending, kBootStart + 10, kBootStart + 10, std::nullopt), std::nullopt);
  EXPECT_EQ(derive_trial_status(after, this_boot()).state, TrialStatus::armed);
  // Armed in the second this boot began: a container rebooted at once (the boot test's trial
  // did), not an upgrade in the boot's first second.
  auto same = records(trial(1, BootTrialState::pending, kBootStart, kBootStart, std::nullopt), std::nullopt);
  EXPECT_EQ(derive_trial_status(same, this_boot()).state, TrialStatus::pending);
  // Blessed in that second: by the boot before, unless this boot's boot-check left its marker
  // for that trial (a container's boot-check blesses within the boot's first second).
  auto blessed = records(trial(1, BootTrialState::blessed, kBootStart - 9, kBootStart, std::nullopt), std::nullopt);
  EXPECT_EQ(derive_trial_status(blessed, this_boot()).state, TrialStatus::none);
  BootFacts marked = this_boot();
  marked.settled_here = 1;
  EXPECT_EQ(derive_trial_status(blessed, marked).state, TrialStatus::blessed);
  marked.settled_here = 2;  // another trial's marker says nothing of this one
  EXPECT_EQ(derive_trial_status(blessed, marked).state, TrialStatus::none);
}

TEST(TrialStatusMarker, WrittenAndReadBackFromTheRunDirectory) {
  TempDir dir("ug-marker");
  EXPECT_EQ(read_settled_marker(dir.path()), std::nullopt);
  write_settled_marker(dir.path(), 42);
  EXPECT_EQ(read_settled_marker(dir.path()), 42);
  guard::testing::write_file(dir / "trial-settled", "4x2\n", 0644);
  EXPECT_EQ(read_settled_marker(dir.path()), std::nullopt);
}

TEST(TrialStatusDerive, ARollbackMadeInThisBootWaitsForTheReboot) {
  // boot-check rolled trial 3 back and recorded the restored root's first boot as trial 4
  // (its run is from an earlier boot); or a run's own live rollback was prepared.
  auto r = records(trial(4, BootTrialState::pending, kBootStart + 40, kBootStart + 40),
                   run_in(kEarlierBoot, kBootStart - 700));
  r.run_trials.push_back(trial(3, BootTrialState::rolled_back, kBootStart - 600, kBootStart + 40));
  r.run_rollbacks = {rollback_in(kThisBoot, RollbackState::done)};
  auto s = derive_trial_status(r, this_boot());
  EXPECT_EQ(s.state, TrialStatus::rolled_back);
  EXPECT_THAT(s.why, HasSubstr("restored root starts at the next boot"));
  // Still running (prepared, completed at the shutdown): the same.
  r.run_rollbacks = {rollback_in(kThisBoot, RollbackState::running)};
  EXPECT_EQ(derive_trial_status(r, this_boot()).state, TrialStatus::rolled_back);
  // A rollback that failed or was abandoned restores nothing.
  r.run_rollbacks = {rollback_in(kThisBoot, RollbackState::failed)};
  EXPECT_EQ(derive_trial_status(r, this_boot()).state, TrialStatus::pending);
  // In the restored root's next boot, the same records mean: this boot is the trial.
  r.run_rollbacks = {rollback_in(kEarlierBoot, RollbackState::running)};
  EXPECT_EQ(derive_trial_status(r, this_boot()).state, TrialStatus::pending);
}

TEST(TrialStatusDerive, ATrialSettledInThisBootIsWhatBootCheckRecorded) {
  auto blessed = records(trial(3, BootTrialState::blessed, kBootStart - 600, kBootStart + 45),
                         run_in(kEarlierBoot, kBootStart - 700));
  EXPECT_EQ(derive_trial_status(blessed, this_boot()).state, TrialStatus::blessed);
  auto rolled = records(trial(3, BootTrialState::rolled_back, kBootStart - 600, kBootStart + 45),
                        run_in(kEarlierBoot, kBootStart - 700));
  EXPECT_EQ(derive_trial_status(rolled, this_boot()).state, TrialStatus::rolled_back);
  auto failed = records(trial(3, BootTrialState::failed, kBootStart - 600, kBootStart + 45),
                        run_in(kEarlierBoot, kBootStart - 700));
  auto s = derive_trial_status(failed, this_boot());
  EXPECT_EQ(s.state, TrialStatus::failed);
  EXPECT_THAT(s.why, HasSubstr("gate is closed"));
}

TEST(TrialStatusDerive, TheRestoredRootPassingIsStillARollback) {
  // Trial 4, the restored root's first boot, blessed; trial 3 of the same run was rolled back.
  auto r = records(trial(4, BootTrialState::blessed, kBootStart - 100, kBootStart + 45),
                   run_in(kEarlierBoot, kBootStart - 700));
  r.run_trials.push_back(trial(3, BootTrialState::rolled_back, kBootStart - 600, kBootStart - 100));
  auto s = derive_trial_status(r, this_boot());
  EXPECT_EQ(s.state, TrialStatus::rolled_back);
  EXPECT_THAT(s.why, HasSubstr("restored root"));
  // The run rolled back by itself (its post-checks failed), the restored root blessed.
  auto run_rolled = records(trial(1, BootTrialState::blessed, kBootStart - 100, kBootStart + 45),
                            run_in(kEarlierBoot, kBootStart - 700, RunOutcome::rolled_back));
  EXPECT_EQ(derive_trial_status(run_rolled, this_boot()).state, TrialStatus::rolled_back);
  // Its record still in the rollback phase (the copy carried into the restored root).
  auto in_phase = records(trial(1, BootTrialState::blessed, kBootStart - 100, kBootStart + 45),
                          run_in(kEarlierBoot, kBootStart - 700, std::nullopt, RunPhase::rollback));
  EXPECT_EQ(derive_trial_status(in_phase, this_boot()).state, TrialStatus::rolled_back);
}

TEST(TrialStatusDerive, ATrialSettledInAnEarlierBootMakesThisBootOrdinary) {
  for (auto st : {BootTrialState::blessed, BootTrialState::rolled_back, BootTrialState::failed}) {
    auto r = records(trial(3, st, kBootStart - 6000, kBootStart - 5000), run_in(kEarlierBoot, kBootStart - 7000));
    auto s = derive_trial_status(r, this_boot());
    EXPECT_EQ(s.state, TrialStatus::none) << to_string(st);
    EXPECT_THAT(s.why, HasSubstr(std::string("trial 3 was ") + to_string(st))) << s.why;
  }
}

TEST(TrialStatusDerive, GrubsFallbackBootIsPending) {
  BootFacts boot = this_boot();
  boot.fallback_trial = 3;
  // The running snapshot's database knows nothing of the trial.
  auto s = derive_trial_status({}, boot);
  EXPECT_EQ(s.state, TrialStatus::pending);
  EXPECT_THAT(s.why, HasSubstr("fallback boot"));
}

// ---- /proc ----------------------------------------------------------------------------------

TEST(TrialStatusProc, BootTimeAndStartTicks) {
  EXPECT_EQ(parse_boot_time("cpu  1 2 3\nintr 5\nctxt 9\nbtime 1767225600\nprocesses 99\n"), 1767225600);
  EXPECT_EQ(parse_boot_time("cpu  1 2 3\n"), std::nullopt);
  EXPECT_EQ(parse_boot_time("btime x\n"), std::nullopt);
  const std::string tail = " S 0 1 1 0 -1 4194560 4520 1 80 0 34 21 0 0 20 0 1 0 52 170000000 3000\n";
  EXPECT_EQ(parse_start_ticks("1 (systemd)" + tail), 52);
  // The command may hold spaces and parentheses.
  EXPECT_EQ(parse_start_ticks("1 (a) b (c)" + tail), 52);
  EXPECT_EQ(parse_start_ticks("1 (systemd) S 0 1"), std::nullopt);
  EXPECT_EQ(parse_start_ticks("no parenthesis"), std::nullopt);
}

TEST(TrialStatusProc, FactsFromAProcDirectory) {
  TempDir proc("ug-proc");
  write_file(proc / "stat", "cpu  1 2 3\nbtime 1767225600\n");
  write_file(proc / "1/stat", "1 (systemd) S 0 1 1 0 -1 4194560 4520 1 80 0 34 21 0 0 20 0 1 0 " +
                                  std::to_string(7 * ::sysconf(_SC_CLK_TCK)) + " 170000000 3000\n");
  write_file(proc / "sys/kernel/random/boot_id", kThisBoot + "\n");
  write_file(proc / "cmdline", "BOOT_IMAGE=/@upgrade-guard/S/boot/vmlinuz ro upgrade-guard.fallback=12\n");
  auto facts = read_boot_facts(proc.path());
  ASSERT_TRUE(facts) << facts.error().to_string();
  EXPECT_EQ(facts->started_unix, 1767225607);
  EXPECT_EQ(facts->boot_id, kThisBoot);
  EXPECT_EQ(facts->fallback_trial, 12);
  // Without PID 1's start the boot's start is unknown: an error, not a guess.
  std::filesystem::remove(proc / "1/stat");
  auto unknown = read_boot_facts(proc.path());
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().to_string(), HasSubstr("1/stat"));
}

TEST(TrialStatusProc, ThisMachinesFactsAreReadable) {
  auto facts = read_boot_facts("/proc");
  ASSERT_TRUE(facts) << facts.error().to_string();
  EXPECT_GT(facts->started_unix, 1500000000);
  EXPECT_LE(facts->started_unix, static_cast<std::int64_t>(::time(nullptr)));
  EXPECT_EQ(facts->boot_id.size(), 36U);
}

// ---- Reading a real database ------------------------------------------------------------------

TEST(TrialStatusRecords, AFailedTrialRolledBackAndItsRestoredRoot) {
  TempDir tmp("ug-trial-status");
  const std::string dir = tmp / "state";
  {
    auto store = StateStore::open(dir);
    ASSERT_TRUE(store) << store.error().to_string();
    auto run = store->begin_run(RunStart{"/", {"apt-get", "dist-upgrade"}, 4242, RunKind::run, "web1", kEarlierBoot});
    ASSERT_TRUE(run);
    ASSERT_TRUE(store->save_package_changes(*run, {{"libc6", "2.36-9", "2.36-10"}, {"curl", "7.88", "7.89"}}));
    auto first = store->create_boot_trial(*run, "20260101-000000-pre-run1");
    ASSERT_TRUE(first);
    ASSERT_TRUE(store->set_boot_trial_state(*first, BootTrialState::rolled_back, "failed: rolled back"));
    ASSERT_TRUE(store->begin_rollback(*run, "/", "20260101-000000-pre-run1", 99, kEarlierBoot));
    ASSERT_TRUE(store->create_boot_trial(*run, "20260101-000000-pre-run1"));
  }
  const std::string before = read_file(StateStore::database_path(dir));
  auto store = StateStore::open_read_only(dir);
  ASSERT_TRUE(store) << store.error().to_string();
  auto r = read_trial_records(*store);
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r->trial);
  EXPECT_EQ(r->trial->id, 2);  // the pending one
  ASSERT_TRUE(r->run);
  EXPECT_EQ(r->run_trials.size(), 2U);
  EXPECT_EQ(r->run_rollbacks.size(), 1U);
  EXPECT_EQ(r->packages, 2U);
  // The restored root's boot, before boot-check: pending (the rollback was an earlier boot's).
  BootFacts boot{.boot_id = kThisBoot, .started_unix = r->trial->created_unix + 5, .fallback_trial = {}, .settled_here = {}};
  EXPECT_EQ(derive_trial_status(*r, boot).state, TrialStatus::pending);
  // In the boot that rolled back: the rollback waits for the reboot.
  boot.boot_id = kEarlierBoot;
  boot.started_unix = r->trial->created_unix - 60;
  EXPECT_EQ(derive_trial_status(*r, boot).state, TrialStatus::rolled_back);
  EXPECT_EQ(read_file(StateStore::database_path(dir)), before);
}

TEST(TrialStatusRecords, WithoutAnyTrialTheNewestIsNone) {
  TempDir tmp("ug-trial-status");
  auto store = StateStore::open(tmp / "state");
  ASSERT_TRUE(store) << store.error().to_string();
  auto r = read_trial_records(*store);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_FALSE(r->trial);
  EXPECT_EQ(derive_trial_status(*r, this_boot()).state, TrialStatus::none);
  // A settled trial without a pending one: the newest is reported.
  ASSERT_TRUE(store->create_boot_trial(std::nullopt, "s1"));
  ASSERT_TRUE(store->set_boot_trial_state(1, BootTrialState::blessed));
  r = read_trial_records(*store);
  ASSERT_TRUE(r && r->trial);
  EXPECT_EQ(r->trial->state, BootTrialState::blessed);
  EXPECT_FALSE(r->run);
}

}  // namespace
}  // namespace guard::boot
