#include "guard/state/store.h"

#include "guard/core/liveness.h"

#include <sqlite3.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include "tests/common/test_env.h"

namespace guard {
namespace {

using guard::testing::read_file;
using guard::testing::TempDir;
using guard::testing::write_file;
using ::testing::HasSubstr;
using namespace guard::state;

// A run as the pipeline begins one: this host's name and boot.
base::Result<std::int64_t> begin(StateStore& store, const std::string& root, const std::vector<std::string>& argv,
                                 std::int64_t pid) {
  return store.begin_run(RunStart{root, argv, pid, RunKind::run, host_name(), current_boot_id()});
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Opens or fails the test.
StateStore must_open(const std::string& dir) {
  auto store = StateStore::open(dir);
  if (!store) {
    ADD_FAILURE() << store.error().to_string();
    std::abort();
  }
  return std::move(*store);
}

checks::Report sample_report(const std::string& root) {
  checks::Report r;
  r.root = root;
  r.started = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  r.duration = std::chrono::milliseconds(1234);
  r.checks.push_back({"libraries", checks::CheckStatus::failed, 812, std::chrono::milliseconds(900), ""});
  r.checks.push_back({"symlinks", checks::CheckStatus::passed, 40, std::chrono::milliseconds(3), ""});
  checks::Finding f;
  f.check = "libraries";
  f.severity = policies::Severity::block;
  f.path = "/usr/bin/curl";
  f.message = "needs libcurl.so.4, which is not found";
  f.package = "curl";
  f.hint = "apt-get install --reinstall libcurl4";
  r.findings.push_back(f);
  checks::Finding known;
  known.check = "symlinks";
  known.severity = policies::Severity::warn;
  known.path = "/etc/alternatives/x";
  known.message = "dangling link";
  known.known = true;
  r.findings.push_back(known);
  r.finalize();
  return r;
}

class StateStoreTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  std::string dir_ = tmp_ / "state";
  std::string db_ = tmp_ / "state/state.db";
};

TEST_F(StateStoreTest, OpenCreatesPrivateDirAndFileWithTheCurrentSchema) {
  auto store = must_open(dir_);
  EXPECT_EQ(store.path(), db_);
  EXPECT_EQ(mode_of(dir_), 0700u);
  EXPECT_EQ(mode_of(db_), 0600u);
  auto settings = store.settings();
  ASSERT_TRUE(settings) << settings.error().to_string();
  EXPECT_EQ(settings->journal_mode, "truncate");  // a rollback journal: nothing memory-mapped
  EXPECT_EQ(settings->synchronous, 2);  // FULL
  EXPECT_TRUE(settings->foreign_keys);
  EXPECT_EQ(settings->busy_timeout_ms, 5000);
  EXPECT_EQ(settings->schema_version, StateStore::kSchemaVersion);
  // The journal carries the database's mode, not the umask's; there is no -wal or -shm.
  ASSERT_TRUE(begin(store, "/", {"true"}, 1));
  EXPECT_EQ(mode_of(db_ + "-journal"), 0600u);
  EXPECT_FALSE(std::filesystem::exists(db_ + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(db_ + "-shm"));
  EXPECT_TRUE(store.quick_check());
}

TEST_F(StateStoreTest, ReopeningKeepsDataAndSchema) {
  {
    auto store = must_open(dir_);
    ASSERT_TRUE(begin(store, "/", {"apt-get", "dist-upgrade"}, 42));
  }
  auto store = must_open(dir_);
  auto runs = store.list_runs(0);
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(runs->front().command, (std::vector<std::string>{"apt-get", "dist-upgrade"}));
}

TEST_F(StateStoreTest, StateDirThatIsAFileIsAnError) {
  write_file(dir_, "not a directory");
  auto store = StateStore::open(dir_);
  ASSERT_FALSE(store);
  EXPECT_THAT(store.error().to_string(), HasSubstr(dir_));
  EXPECT_THAT(store.error().to_string(), HasSubstr("not a directory"));
}

TEST_F(StateStoreTest, RunLifecycleRoundTrip) {
  auto store = must_open(dir_);
  std::vector<std::string> argv{"apt-get", "-y", "install", "./with \"quotes\" and spaces.deb"};
  auto id = begin(store, "/srv/chroot", argv, 4242);
  ASSERT_TRUE(id) << id.error().to_string();

  auto run = store.get_run(*id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->root, "/srv/chroot");
  EXPECT_EQ((*run)->command, argv);
  EXPECT_EQ((*run)->pid, 4242);
  EXPECT_EQ((*run)->phase, RunPhase::preflight);
  EXPECT_FALSE((*run)->finished_unix);
  EXPECT_FALSE((*run)->outcome);
  EXPECT_FALSE((*run)->exit_code);
  EXPECT_FALSE((*run)->hostname.empty());
  EXPECT_EQ((*run)->boot_id.size(), 36u);  // a UUID from /proc/sys/kernel/random/boot_id
  EXPECT_GT((*run)->started_unix, 1600000000);

  for (auto phase : {RunPhase::baseline, RunPhase::snapshot, RunPhase::command, RunPhase::changes,
                     RunPhase::post_checks, RunPhase::verdict}) {
    ASSERT_TRUE(store.set_phase(*id, phase));
  }
  ASSERT_TRUE(store.set_run_snapshot(*id, "20260122-101500-run1"));
  ASSERT_TRUE(store.set_command_status(*id, "exited 100"));
  auto unfinished = store.unfinished_runs();
  ASSERT_TRUE(unfinished);
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ(unfinished->front().phase, RunPhase::verdict);

  ASSERT_TRUE(store.finish_run(*id, RunOutcome::rolled_back, 3, "libfoo.so.1 missing; rolled back"));
  run = store.get_run(*id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->phase, RunPhase::done);
  EXPECT_EQ((*run)->outcome, RunOutcome::rolled_back);
  EXPECT_EQ((*run)->exit_code, 3);
  EXPECT_EQ((*run)->command_status, "exited 100");
  EXPECT_EQ((*run)->snapshot_id, "20260122-101500-run1");
  EXPECT_EQ((*run)->message, "libfoo.so.1 missing; rolled back");
  EXPECT_TRUE((*run)->finished_unix);
  unfinished = store.unfinished_runs();
  ASSERT_TRUE(unfinished);
  EXPECT_TRUE(unfinished->empty());

  auto phases = store.run_phases(*id);
  ASSERT_TRUE(phases);
  std::vector<std::string> names;
  for (const auto& p : *phases) names.push_back(to_string(p.phase));
  EXPECT_EQ(names, (std::vector<std::string>{"preflight", "baseline", "snapshot", "command", "changes", "post-checks",
                                             "verdict", "done"}));
  for (std::size_t i = 1; i < phases->size(); ++i) EXPECT_GE((*phases)[i].at_unix_ms, (*phases)[i - 1].at_unix_ms);

  // A finished run takes no more phases or endings.
  auto again = store.set_phase(*id, RunPhase::command);
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().to_string(), HasSubstr("no unfinished run"));
  EXPECT_FALSE(store.finish_run(*id, RunOutcome::passed, 0, ""));
  auto missing = store.get_run(9999);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
  EXPECT_FALSE(store.set_phase(9999, RunPhase::command));
  EXPECT_FALSE(store.set_run_snapshot(9999, "x"));
}

TEST_F(StateStoreTest, PackageChangesRoundTrip) {
  auto store = must_open(dir_);
  auto id = begin(store, "/", {"apt-get", "upgrade"}, 1);
  ASSERT_TRUE(id);
  ASSERT_TRUE(store.save_package_changes(*id, {{"openssl", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2"},
                                               {"libc6:amd64", "2.36-9+deb12u3", "2.36-9+deb12u4"},
                                               {"newpkg", "", "1.0"}}));
  auto changes = store.package_changes(*id);
  ASSERT_TRUE(changes) << changes.error().to_string();
  ASSERT_EQ(changes->size(), 3u);
  EXPECT_EQ((*changes)[0].package, "libc6:amd64");
  EXPECT_EQ((*changes)[0].new_version, "2.36-9+deb12u4");
  EXPECT_EQ((*changes)[1].package, "newpkg");
  EXPECT_EQ((*changes)[1].old_version, "");
  // Recording again replaces (recover re-runs the diff).
  ASSERT_TRUE(store.save_package_changes(*id, {{"gone", "1.0", ""}}));
  changes = store.package_changes(*id);
  ASSERT_TRUE(changes);
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ(changes->front().new_version, "");
  EXPECT_FALSE(store.save_package_changes(9999, {{"x", "1", "2"}}));  // no such run
}

TEST_F(StateStoreTest, ListRunsIsNewestFirstWithLimit) {
  auto store = must_open(dir_);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(begin(store, "/r" + std::to_string(i), {"true"}, i));
  auto all = store.list_runs(0);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ(all->front().root, "/r4");
  EXPECT_EQ(all->back().root, "/r0");
  auto two = store.list_runs(2);
  ASSERT_TRUE(two);
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].root, "/r3");
  auto unfinished = store.unfinished_runs();
  ASSERT_TRUE(unfinished);
  ASSERT_EQ(unfinished->size(), 5u);
  EXPECT_EQ(unfinished->front().root, "/r0");  // oldest first
}

// A live rollback that ended before the reboot is recorded by the next boot's check: the run
// ends when the rollback did, not when it was recorded.
TEST_F(StateStoreTest, ARunEndedEarlierIsRecordedAtItsEnd) {
  auto store = must_open(dir_);
  auto id = begin(store, "/", {"apt-get", "dist-upgrade"}, 1);
  ASSERT_TRUE(id);
  ASSERT_TRUE(store.set_phase(*id, RunPhase::rollback));
  auto phases = store.run_phases(*id);
  ASSERT_TRUE(phases);
  const std::int64_t rollback_at = phases->back().at_unix_ms;
  ASSERT_TRUE(store.finish_run(*id, RunOutcome::rolled_back, 3, "rolled back", rollback_at + 2000));
  phases = store.run_phases(*id);
  ASSERT_TRUE(phases);
  EXPECT_EQ(phases->back().phase, RunPhase::done);
  EXPECT_EQ(phases->back().at_unix_ms - rollback_at, 2000);  // the rollback took 2 s
  EXPECT_EQ((*store.get_run(*id))->finished_unix, (rollback_at + 2000) / 1000);
}

TEST_F(StateStoreTest, MarkInterruptedKeepsThePhaseItDiedIn) {
  auto store = must_open(dir_);
  auto id = begin(store, "/", {"apt-get", "upgrade"}, 7);
  ASSERT_TRUE(id);
  ASSERT_TRUE(store.set_phase(*id, RunPhase::command));
  ASSERT_TRUE(store.mark_interrupted(*id));
  auto run = store.get_run(*id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->outcome, RunOutcome::interrupted);
  EXPECT_EQ((*run)->phase, RunPhase::command);
  EXPECT_FALSE((*run)->exit_code);
  EXPECT_EQ((*run)->message, "interrupted during command");
  EXPECT_TRUE((*run)->finished_unix);
  EXPECT_FALSE(store.mark_interrupted(*id));  // already finished
}

TEST_F(StateStoreTest, ReportsAndFindingsRoundTrip) {
  auto store = must_open(dir_);
  auto id = begin(store, "/", {"apt-get", "upgrade"}, 1);
  ASSERT_TRUE(id);
  auto baseline = sample_report("/");
  baseline.findings.pop_back();
  baseline.findings.pop_back();
  baseline.finalize();
  ASSERT_TRUE(store.save_report(*id, ReportStage::baseline, baseline));
  auto post = sample_report("/");
  auto report_id = store.save_report(*id, ReportStage::post, post);
  ASSERT_TRUE(report_id) << report_id.error().to_string();
  ASSERT_TRUE(store.save_report(std::nullopt, ReportStage::audit, sample_report("/")));

  auto loaded = store.load_report(*id, ReportStage::post);
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  ASSERT_TRUE(*loaded);
  EXPECT_EQ((*loaded)->id, *report_id);
  EXPECT_EQ((*loaded)->run_id, *id);
  EXPECT_EQ((*loaded)->stage, ReportStage::post);
  EXPECT_EQ((*loaded)->root, "/");
  const auto& r = (*loaded)->report;
  EXPECT_EQ(r.verdict, checks::Verdict::fail);
  EXPECT_EQ(r.duration, std::chrono::milliseconds(1234));
  ASSERT_EQ(r.checks.size(), 2u);
  EXPECT_EQ(r.checks[0].items, 812u);
  ASSERT_EQ(r.findings.size(), 2u);
  EXPECT_EQ(r.findings[0].package, "curl");
  EXPECT_EQ(r.findings[0].hint, "apt-get install --reinstall libcurl4");
  EXPECT_TRUE(r.findings[1].known);

  auto base = store.load_report(*id, ReportStage::baseline);
  ASSERT_TRUE(base && *base);
  EXPECT_TRUE((*base)->report.findings.empty());
  auto none = store.load_report(*id, ReportStage::restored);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  auto audit = store.latest_report("/", ReportStage::audit);
  ASSERT_TRUE(audit && *audit);
  EXPECT_FALSE((*audit)->run_id);
  auto other_root = store.latest_report("/srv/other", ReportStage::audit);
  ASSERT_TRUE(other_root);
  EXPECT_FALSE(*other_root);

  auto findings = store.findings_for_run(*id);
  ASSERT_TRUE(findings) << findings.error().to_string();
  ASSERT_EQ(findings->size(), 2u);  // the baseline had none; the audit belongs to no run
  EXPECT_EQ((*findings)[0].check, "libraries");
  EXPECT_EQ((*findings)[0].severity, "block");
  EXPECT_EQ((*findings)[0].path, "/usr/bin/curl");
  EXPECT_EQ((*findings)[0].package, "curl");
  EXPECT_EQ((*findings)[0].stage, ReportStage::post);
  EXPECT_EQ((*findings)[0].key, post.findings[0].key());
  EXPECT_FALSE((*findings)[0].known);
  EXPECT_EQ((*findings)[1].severity, "warn");
  EXPECT_TRUE((*findings)[1].known);
}

TEST_F(StateStoreTest, ReportForAnUnknownRunIsRefused) {
  auto store = must_open(dir_);
  // foreign_keys=ON: a report cannot point at a run that does not exist.
  auto saved = store.save_report(77, ReportStage::post, sample_report("/"));
  ASSERT_FALSE(saved);
  EXPECT_THAT(saved.error().to_string(), HasSubstr("FOREIGN KEY"));
  EXPECT_THAT(saved.error().to_string(), HasSubstr(db_));
  auto findings = store.findings_for_run(77);
  ASSERT_TRUE(findings);
  EXPECT_TRUE(findings->empty());  // the whole report was rolled back
}

TEST_F(StateStoreTest, BaselineRoundTrip) {
  auto store = must_open(dir_);
  auto none = store.load_baseline("/");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);

  ASSERT_TRUE(store.save_baseline("/", {"b\x1fkey", "a\x1fkey", "b\x1fkey"}));
  ASSERT_TRUE(store.save_baseline("/srv/chroot", {"other"}));
  auto keys = store.load_baseline("/");
  ASSERT_TRUE(keys && *keys);
  EXPECT_EQ(**keys, (std::vector<std::string>{"a\x1fkey", "b\x1fkey"}));

  // Replaced as a whole; an empty baseline is not the same as none.
  ASSERT_TRUE(store.save_baseline("/", {}));
  keys = store.load_baseline("/");
  ASSERT_TRUE(keys && *keys);
  EXPECT_TRUE((*keys)->empty());
  auto other = store.load_baseline("/srv/chroot");
  ASSERT_TRUE(other && *other);
  EXPECT_EQ(**other, (std::vector<std::string>{"other"}));
}

TEST_F(StateStoreTest, SnapshotsRoundTrip) {
  auto store = must_open(dir_);
  auto run = begin(store, "/", {"apt-get", "upgrade"}, 1);
  ASSERT_TRUE(run);
  SnapshotRecord a{"snap-a", "btrfs",     "pre run 1", "/.snapshots/ug/snap-a", "/", 1000, *run, SnapshotState::present,
                   false,    std::nullopt};
  SnapshotRecord b{"snap-b", "btrfs",     "manual",     "/.snapshots/ug/snap-b",
                   "/",      2000,        std::nullopt, SnapshotState::present,
                   false,    std::nullopt};
  SnapshotRecord c{"snap-c",      "btrfs",     "chroot",     "/srv/.snap/c",
                   "/srv/chroot", 3000,        std::nullopt, SnapshotState::present,
                   true,          std::nullopt};
  ASSERT_TRUE(store.record_snapshot(a));
  ASSERT_TRUE(store.record_snapshot(b));
  ASSERT_TRUE(store.record_snapshot(c));
  auto dup = store.record_snapshot(a);
  ASSERT_FALSE(dup);  // an id recorded twice is a bug worth hearing of
  EXPECT_THAT(dup.error().to_string(), HasSubstr("snap-a"));

  auto got = store.get_snapshot("snap-a");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->backend, "btrfs");
  EXPECT_EQ((*got)->label, "pre run 1");
  EXPECT_EQ((*got)->location, "/.snapshots/ug/snap-a");
  EXPECT_EQ((*got)->created_unix, 1000);
  EXPECT_EQ((*got)->run_id, *run);
  EXPECT_EQ((*got)->state, SnapshotState::present);
  EXPECT_FALSE((*got)->pinned_reason);

  auto all = store.list_snapshots();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ(all->front().id, "snap-c");
  auto of_root = store.list_snapshots("/");
  ASSERT_TRUE(of_root);
  ASSERT_EQ(of_root->size(), 2u);
  EXPECT_EQ(of_root->front().id, "snap-b");

  auto lkg = store.last_known_good("/");
  ASSERT_TRUE(lkg);
  EXPECT_FALSE(*lkg);
  ASSERT_TRUE(store.set_snapshot_known_good("snap-a", true));
  lkg = store.last_known_good("/");
  ASSERT_TRUE(lkg && *lkg);
  EXPECT_EQ((*lkg)->id, "snap-a");

  ASSERT_TRUE(store.set_snapshot_pinned("snap-b", "broken root of run 1"));
  ASSERT_TRUE(store.set_snapshot_state("snap-a", SnapshotState::deleting));
  got = store.get_snapshot("snap-b");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->pinned_reason, "broken root of run 1");
  ASSERT_TRUE(store.set_snapshot_pinned("snap-b", std::nullopt));
  got = store.get_snapshot("snap-b");
  ASSERT_TRUE(got && *got);
  EXPECT_FALSE((*got)->pinned_reason);
  lkg = store.last_known_good("/");  // snap-a is being deleted: no longer a target
  ASSERT_TRUE(lkg);
  EXPECT_FALSE(*lkg);
  ASSERT_TRUE(store.set_snapshot_state("snap-a", SnapshotState::deleted));
  got = store.get_snapshot("snap-a");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->state, SnapshotState::deleted);

  auto missing = store.set_snapshot_state("nope", SnapshotState::deleted);
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().to_string(), HasSubstr("nope"));
  auto none = store.get_snapshot("nope");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
}

TEST_F(StateStoreTest, GateRoundTripAndHistory) {
  {
    auto store = must_open(dir_);
    auto gate = store.get_gate();
    ASSERT_TRUE(gate);
    EXPECT_FALSE(gate->closed);
    auto id = begin(store, "/", {"apt-get", "upgrade"}, 1);
    ASSERT_TRUE(id);
    ASSERT_TRUE(store.set_gate(GateState{true, "post-checks failed", *id, 0, "run 1"}));
  }
  auto store = must_open(dir_);  // persisted across processes' opens
  auto gate = store.get_gate();
  ASSERT_TRUE(gate);
  EXPECT_TRUE(gate->closed);
  EXPECT_EQ(gate->reason, "post-checks failed");
  EXPECT_EQ(gate->run_id, 1);
  EXPECT_EQ(gate->changed_by, "run 1");
  EXPECT_GT(gate->changed_unix, 1600000000);

  ASSERT_TRUE(store.set_gate(GateState{false, "fixed by hand", std::nullopt, 1234, "root via gate open --force"}));
  gate = store.get_gate();
  ASSERT_TRUE(gate);
  EXPECT_FALSE(gate->closed);
  EXPECT_FALSE(gate->run_id);
  EXPECT_EQ(gate->changed_unix, 1234);

  auto events = store.gate_events(0);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_FALSE((*events)[0].closed);
  EXPECT_EQ((*events)[0].changed_by, "root via gate open --force");
  EXPECT_TRUE((*events)[1].closed);
  EXPECT_EQ((*events)[1].run_id, 1);
  auto one = store.gate_events(1);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->size(), 1u);
}

TEST_F(StateStoreTest, BootTrialCountsAttempts) {
  auto store = must_open(dir_);
  auto none = store.pending_boot_trial();
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  auto run = begin(store, "/", {"apt-get", "upgrade"}, 1);
  ASSERT_TRUE(run);
  auto id = store.create_boot_trial(*run, "snap-a");
  ASSERT_TRUE(id) << id.error().to_string();
  auto pending = store.pending_boot_trial();
  ASSERT_TRUE(pending && *pending);
  EXPECT_EQ((*pending)->id, *id);
  EXPECT_EQ((*pending)->run_id, *run);
  EXPECT_EQ((*pending)->snapshot_id, "snap-a");
  EXPECT_EQ((*pending)->attempts, 0);
  EXPECT_EQ((*pending)->state, BootTrialState::pending);

  auto n = store.record_boot_attempt(*id);
  ASSERT_TRUE(n) << n.error().to_string();
  EXPECT_EQ(*n, 1);
  n = store.record_boot_attempt(*id);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2);
  ASSERT_TRUE(store.set_boot_trial_state(*id, BootTrialState::rolled_back, "ssh.service failed"));
  auto got = store.get_boot_trial(*id);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->attempts, 2);
  EXPECT_EQ((*got)->state, BootTrialState::rolled_back);
  EXPECT_EQ((*got)->message, "ssh.service failed");
  pending = store.pending_boot_trial();
  ASSERT_TRUE(pending);
  EXPECT_FALSE(*pending);
  EXPECT_FALSE(store.record_boot_attempt(999));
  EXPECT_FALSE(store.set_boot_trial_state(999, BootTrialState::blessed));
}

TEST_F(StateStoreTest, TransactionCommitsAllOrNothing) {
  auto store = must_open(dir_);
  auto kept = begin(store, "/", {"true"}, 1);
  ASSERT_TRUE(kept);
  auto failed = store.transaction([&]() -> base::Result<void> {
    auto id = begin(store, "/", {"false"}, 2);
    if (!id) return base::fail(id.error());
    if (auto r = store.set_phase(*id, RunPhase::command); !r) return r;
    if (auto r = store.set_phase(*kept, RunPhase::verdict); !r) return r;
    // A failing inner call is rolled back alone...
    EXPECT_FALSE(store.set_snapshot_state("no-such-snapshot", SnapshotState::deleted));
    // ...and a failing body rolls back everything.
    return base::fail("test", "", "body failed");
  });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "body failed");
  auto runs = store.list_runs(0);
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(runs->front().phase, RunPhase::preflight);

  auto ok = store.transaction([&]() -> base::Result<void> {
    if (auto r = store.set_phase(*kept, RunPhase::verdict); !r) return r;
    return store.finish_run(*kept, RunOutcome::passed, 0, "ok");
  });
  ASSERT_TRUE(ok) << ok.error().to_string();
  auto run = store.get_run(*kept);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->outcome, RunOutcome::passed);
  // Usable again after both.
  EXPECT_TRUE(begin(store, "/", {"true"}, 3));
}

// Runs SQL on the database file directly, as an older upgrade-guard would have written it.
void exec_sql(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST_F(StateStoreTest, MigratesAnOlderDatabaseKeepingItsData) {
  std::int64_t run_id = 1;
  {
    auto v1 = StateStore::open_at_version_for_test(dir_, 1);
    ASSERT_TRUE(v1) << v1.error().to_string();
    auto settings = v1->settings();
    ASSERT_TRUE(settings);
    EXPECT_EQ(settings->schema_version, 1);
  }
  exec_sql(db_, "INSERT INTO runs (started_unix, root, command, phase, phase_changed_unix, pid, hostname, boot_id) "
                "VALUES (1, '/', '[\"apt-get\",\"dist-upgrade\"]', 'command', 1, 99, 'h', '')");
  {
    auto v1 = StateStore::open_at_version_for_test(dir_, 1);
    ASSERT_TRUE(v1) << v1.error().to_string();
    ASSERT_TRUE(v1->save_report(run_id, ReportStage::post, sample_report("/")));
    ASSERT_TRUE(v1->save_baseline("/", {"k1", "k2"}));
    // Version 1 has no gate history yet: the gate API of version 2 cannot work on it.
    EXPECT_FALSE(v1->set_gate(GateState{true, "x", std::nullopt, 0, "test"}));
  }
  {
    // Version 2 told hook runs apart by their command status only.
    auto v2 = StateStore::open_at_version_for_test(dir_, 2);
    ASSERT_TRUE(v2) << v2.error().to_string();
  }
  exec_sql(db_, "INSERT INTO runs (started_unix, root, command, phase, phase_changed_unix, pid, hostname, boot_id, "
                "command_status) VALUES (2, '/', '[\"apt\"]', 'command', 2, 7, 'h', '', "
                "'hook: dpkg running under apt pid 7')");
  auto store = must_open(dir_);
  auto settings = store.settings();
  ASSERT_TRUE(settings);
  EXPECT_EQ(settings->schema_version, StateStore::kSchemaVersion);
  auto run = store.get_run(run_id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->phase, RunPhase::command);
  EXPECT_EQ((*run)->pid, 99);
  auto report = store.load_report(run_id, ReportStage::post);
  ASSERT_TRUE(report && *report);
  EXPECT_EQ((*report)->report.findings.size(), 2u);
  auto keys = store.load_baseline("/");
  ASSERT_TRUE(keys && *keys);
  EXPECT_EQ(**keys, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ((*run)->kind, RunKind::run);
  auto hook = store.get_run(2);
  ASSERT_TRUE(hook && *hook);
  EXPECT_EQ((*hook)->kind, RunKind::hook) << "version 3 tells hook runs by their kind";
  // What versions 2 and 3 added works.
  ASSERT_TRUE(store.begin_rollback(run_id, "/", "s", 1, ""));
  ASSERT_TRUE(store.set_gate(GateState{true, "x", run_id, 0, "test"}));
  ASSERT_TRUE(store.record_snapshot(
      SnapshotRecord{"s", "btrfs", "", "", "/", 1, run_id, SnapshotState::present, false, "pinned"}));
  ASSERT_TRUE(store.create_boot_trial(run_id, "s"));
  EXPECT_TRUE(store.quick_check());
}

TEST_F(StateStoreTest, ANewerSchemaIsRefusedAndTheFileUntouched) {
  { must_open(dir_); }
  // user_version lives at offset 60 of the header, big-endian.
  std::string bytes = read_file(db_);
  ASSERT_GT(bytes.size(), 64u);
  bytes[60] = 0;
  bytes[61] = 0;
  bytes[62] = 0;
  bytes[63] = 99;
  write_file(db_, bytes, 0600);

  auto store = StateStore::open(dir_);
  ASSERT_FALSE(store);
  std::string msg = store.error().to_string();
  EXPECT_THAT(msg, HasSubstr("state.db has schema version 99, this upgrade-guard knows up to " +
                             std::to_string(StateStore::kSchemaVersion) + ": upgrade upgrade-guard"));
  EXPECT_THAT(msg, HasSubstr(db_));
  EXPECT_EQ(read_file(db_), bytes);
}

// upgrade-guard 0.0.9 kept the store in WAL. Such a database, left with commits in its -wal
// (the guard was killed), is converted at the next open: the commits kept, no -wal or -shm
// left, a rollback journal from then on.
TEST_F(StateStoreTest, AWalDatabaseOfTheLastVersionIsConvertedKeepingItsLog) {
  std::int64_t id = 0;
  {
    auto store = must_open(dir_);
    id = *begin(store, "/", {"apt-get", "upgrade"}, 1);
  }
  std::string copy = tmp_ / "crashed";
  std::filesystem::create_directories(copy);
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; "
                                "UPDATE runs SET message = 'only in the log'",
                           nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(raw);
    // What a kill -9 leaves: the file and its log, the commit only in the log.
    for (const char* f : {"state.db", "state.db-wal", "state.db-shm"})
      std::filesystem::copy_file(dir_ + "/" + f, copy + "/" + f);
    sqlite3_close(raw);
  }
  ASSERT_GT(std::filesystem::file_size(copy + "/state.db-wal"), 0u);
  auto store = must_open(copy);
  auto settings = store.settings();
  ASSERT_TRUE(settings) << settings.error().to_string();
  EXPECT_EQ(settings->journal_mode, "truncate");
  auto run = store.get_run(id);
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->message, "only in the log");
  EXPECT_FALSE(std::filesystem::exists(copy + "/state.db-wal"));
  EXPECT_FALSE(std::filesystem::exists(copy + "/state.db-shm"));
  EXPECT_TRUE(store.quick_check());
}

TEST_F(StateStoreTest, RandomBytesAreRefusedAndTheFileUntouched) {
  std::mt19937 rng(12345);
  std::string junk(8192, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  write_file(db_, junk, 0600);

  auto store = StateStore::open(dir_);
  ASSERT_FALSE(store);
  std::string msg = store.error().to_string();
  EXPECT_THAT(msg, HasSubstr("not a usable SQLite database"));
  EXPECT_THAT(msg, HasSubstr(db_));
  EXPECT_THAT(msg, HasSubstr("mv " + db_ + " " + db_ + ".broken"));
  EXPECT_EQ(read_file(db_), junk);
  EXPECT_FALSE(std::filesystem::exists(db_ + "-wal"));
}

TEST_F(StateStoreTest, ATruncatedDatabaseIsRefusedAndTheFileUntouched) {
  {
    auto store = must_open(dir_);
    for (int i = 0; i < 50; ++i) {
      auto id = begin(store, "/", {"apt-get", "upgrade"}, i);
      ASSERT_TRUE(id);
      ASSERT_TRUE(store.save_report(*id, ReportStage::post, sample_report("/")));
    }
  }
  std::string bytes = read_file(db_);
  ASSERT_GT(bytes.size(), 8u * 4096u);
  bytes.resize(bytes.size() / 2);
  write_file(db_, bytes, 0600);

  auto store = StateStore::open(dir_);
  ASSERT_FALSE(store);
  std::string msg = store.error().to_string();
  EXPECT_THAT(msg, HasSubstr(db_));
  EXPECT_THAT(msg, HasSubstr("mv " + db_));
  EXPECT_EQ(read_file(db_), bytes);
}

TEST_F(StateStoreTest, ADamagedPageIsFoundByQuickCheck) {
  {
    auto store = must_open(dir_);
    for (int i = 0; i < 50; ++i) {
      auto id = begin(store, "/", {"apt-get", "upgrade"}, i);
      ASSERT_TRUE(id);
      ASSERT_TRUE(store.save_report(*id, ReportStage::post, sample_report("/")));
    }
  }
  std::string bytes = read_file(db_);
  ASSERT_GT(bytes.size(), 8u * 4096u);
  // Scribble over the middle of the file, leaving the header page intact.
  for (std::size_t i = bytes.size() / 2; i < bytes.size() / 2 + 4096; ++i) bytes[i] = static_cast<char>(0xA5);
  write_file(db_, bytes, 0600);

  auto store = StateStore::open(dir_);
  ASSERT_FALSE(store);
  std::string msg = store.error().to_string();
  EXPECT_THAT(msg, HasSubstr("damaged"));
  EXPECT_THAT(msg, HasSubstr(db_));
  EXPECT_EQ(read_file(db_), bytes);
}

// The crash-safety contract: what set_phase returned is on disk, and a transaction in
// flight when the process dies leaves no trace.
TEST_F(StateStoreTest, ReopenAfterKillFindsTheLastCommittedPhase) {
  pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    auto store = StateStore::open(dir_);
    if (!store) ::_exit(10);
    auto id = begin(*store, "/", {"apt-get", "dist-upgrade"}, ::getpid());
    if (!id) ::_exit(11);
    if (!store->set_phase(*id, RunPhase::command)) ::_exit(12);
    (void)store->transaction([&]() -> base::Result<void> {
      if (!store->set_phase(*id, RunPhase::verdict)) ::_exit(13);
      if (!store->finish_run(*id, RunOutcome::passed, 0, "never committed")) ::_exit(14);
      if (!store->save_baseline("/", {"never"})) ::_exit(15);
      ::raise(SIGKILL);
      return {};
    });
    ::_exit(16);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  auto store = must_open(dir_);
  EXPECT_TRUE(store.quick_check());
  auto unfinished = store.unfinished_runs();
  ASSERT_TRUE(unfinished);
  ASSERT_EQ(unfinished->size(), 1u);
  const RunRecord& run = unfinished->front();
  EXPECT_EQ(run.phase, RunPhase::command);
  EXPECT_FALSE(run.finished_unix);
  EXPECT_FALSE(run.outcome);
  EXPECT_EQ(run.pid, child);
  EXPECT_EQ(run.message, "");
  auto baseline = store.load_baseline("/");
  ASSERT_TRUE(baseline);
  EXPECT_FALSE(*baseline);
  // And the run can be finished by the next invocation.
  ASSERT_TRUE(store.mark_interrupted(run.id));
  auto after = store.get_run(run.id);
  ASSERT_TRUE(after && *after);
  EXPECT_EQ((*after)->message, "interrupted during command");
}

TEST_F(StateStoreTest, TwoProcessesWritingConcurrentlyBothSucceed) {
  constexpr int kRunsPerWriter = 40;
  std::vector<pid_t> children;
  for (int w = 0; w < 2; ++w) {
    pid_t child = ::fork();
    ASSERT_NE(child, -1);
    if (child == 0) {
      // Both open a store that does not exist yet: creation and migration race too.
      auto store = StateStore::open(dir_);
      if (!store) {
        std::fprintf(stderr, "open: %s\n", store.error().to_string().c_str());
        ::_exit(1);
      }
      for (int i = 0; i < kRunsPerWriter; ++i) {
        auto id = begin(*store, "/w" + std::to_string(w), {"true"}, ::getpid());
        base::Result<void> r = id ? store->set_phase(*id, RunPhase::command) : base::fail(id.error());
        if (r) r = store->set_gate(GateState{i % 2 == 0, "writer " + std::to_string(w), *id, 0, "test"});
        if (r) r = store->finish_run(*id, RunOutcome::passed, 0, "ok");
        if (!r) {
          std::fprintf(stderr, "writer %d run %d: %s\n", w, i, r.error().to_string().c_str());
          ::_exit(2);
        }
      }
      ::_exit(0);
    }
    children.push_back(child);
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  auto store = must_open(dir_);
  auto runs = store.list_runs(0);
  ASSERT_TRUE(runs);
  EXPECT_EQ(runs->size(), 2u * kRunsPerWriter);
  auto unfinished = store.unfinished_runs();
  ASSERT_TRUE(unfinished);
  EXPECT_TRUE(unfinished->empty());
  auto events = store.gate_events(0);
  ASSERT_TRUE(events);
  EXPECT_EQ(events->size(), 2u * kRunsPerWriter);
  EXPECT_TRUE(store.quick_check());
}

TEST_F(StateStoreTest, ReopenedRunIsUnfinishedInPhaseCommandOwnedByTheNewPid) {
  auto store = must_open(dir_);
  auto id = begin(store, "/", {"apt-get", "upgrade"}, 4242);
  ASSERT_TRUE(id);
  EXPECT_FALSE(store.reopen_run(*id, 4343)) << "an unfinished run is not reopened";
  ASSERT_TRUE(store.finish_run(*id, RunOutcome::gated, 1, "1 new blocking finding"));
  ASSERT_TRUE(store.reopen_run(*id, 4343));
  auto run = store.get_run(*id);
  ASSERT_TRUE(run && *run);
  EXPECT_FALSE((*run)->finished_unix);
  EXPECT_FALSE((*run)->outcome);
  EXPECT_FALSE((*run)->exit_code);
  EXPECT_EQ((*run)->phase, RunPhase::command);
  EXPECT_EQ((*run)->pid, 4343);
  auto phases = store.run_phases(*id);
  ASSERT_TRUE(phases);
  ASSERT_GE(phases->size(), 2u);
  EXPECT_EQ(phases->back().phase, RunPhase::command);
  EXPECT_EQ(store.unfinished_runs()->size(), 1u);
  EXPECT_FALSE(store.reopen_run(99, 1));
}

TEST(RunProcessAlive, SameBootAndLivePidOnly) {
  RunRecord run;
  run.pid = ::getpid();
  run.boot_id = current_boot_id();
  ASSERT_EQ(run.boot_id.size(), 36u);
  EXPECT_TRUE(run_process_alive(run));
  run.finished_unix = 1;
  EXPECT_FALSE(run_process_alive(run));  // a finished run has no process
  run.finished_unix.reset();
  run.boot_id = "00000000-0000-0000-0000-000000000000";
  EXPECT_FALSE(run_process_alive(run));  // began before a reboot
  pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  run.pid = child;
  run.boot_id = current_boot_id();
  EXPECT_FALSE(run_process_alive(run));  // reaped: gone
}

TEST(StateEnums, NamesRoundTrip) {
  for (auto p : {RunPhase::preflight, RunPhase::post_checks, RunPhase::done}) {
    auto parsed = parse_run_phase(to_string(p));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_STREQ(to_string(RunPhase::post_checks), "post-checks");
  EXPECT_STREQ(to_string(RunOutcome::rolled_back), "rolled-back");
  auto outcome = parse_run_outcome("rolled-back");
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, RunOutcome::rolled_back);
  EXPECT_FALSE(parse_run_phase("lunch"));
  EXPECT_FALSE(parse_boot_trial_state("maybe"));
  EXPECT_EQ(StateStore::database_path("/var/lib/upgrade-guard/"), "/var/lib/upgrade-guard/state.db");
}

}  // namespace
}  // namespace guard
