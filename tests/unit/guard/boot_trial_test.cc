// The trial boot: decisions, the GRUB counter in a real 1024-byte grubenv block, and
// run_boot_check end to end on a fake root with a fake systemd that records what it was asked.
#include "guard/boot/trial.h"

#include <gmock/gmock.h>
#include <unistd.h>

#include <filesystem>
#include <gtest/gtest.h>

#include "base/strings.h"
#include "guard/boot/boot_check.h"
#include "guard/boot/grub_counter.h"
#include "guard/core/check_session.h"
#include "guard/core/liveness.h"
#include "guard/core/rollback.h"
#include "guard/gate/gate_file.h"
#include "tests/common/test_env.h"
#include "tests/unit/guard/pipeline_fixture.h"

namespace guard::boot {
namespace {

using namespace guard::state;

using guard::testing::read_file;
using guard::testing::TempDir;
using guard::testing::write_file;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- Command line ---------------------------------------------------------------------------

TEST(BootTrialCmdline, RollbackIsOnUnlessTurnedOff) {
  EXPECT_TRUE(cmdline_allows_rollback(""));
  EXPECT_TRUE(cmdline_allows_rollback("BOOT_IMAGE=/vmlinuz root=UUID=1 ro quiet\n"));
  EXPECT_FALSE(cmdline_allows_rollback("BOOT_IMAGE=/vmlinuz ro upgrade-guard.rollback=0\n"));
  EXPECT_FALSE(cmdline_allows_rollback("upgrade-guard.rollback=no"));
  EXPECT_FALSE(cmdline_allows_rollback("upgrade-guard.rollback=off quiet"));
  EXPECT_TRUE(cmdline_allows_rollback("upgrade-guard.rollback=1"));
  // The last occurrence wins, like the kernel's own parameters.
  EXPECT_TRUE(cmdline_allows_rollback("upgrade-guard.rollback=0 upgrade-guard.rollback=1"));
  // Another parameter that merely contains the text does not count.
  EXPECT_TRUE(cmdline_allows_rollback("x.upgrade-guard.rollback=0 myupgrade-guard.rollback=0"));
}

// ---- Decisions ------------------------------------------------------------------------------

TEST(BootTrialDecision, HealthyIsBlessedWhateverElse) {
  TrialFacts f;
  f.healthy = true;
  f.upgrade_already_rolled_back = true;
  f.attempts = 3;
  EXPECT_EQ(decide_trial(f).action, TrialAction::bless);
}

TEST(BootTrialDecision, FirstFailedTrialRollsBack) {
  TrialFacts f;
  f.healthy = false;
  auto d = decide_trial(f);
  EXPECT_EQ(d.action, TrialAction::roll_back);
  EXPECT_THAT(d.why, HasSubstr("rolling back"));
}

TEST(BootTrialDecision, EachGuardAgainstARollbackClosesTheGateAndSaysWhy) {
  TrialFacts base;
  base.healthy = false;
  auto with = [&](auto change) {
    TrialFacts f = base;
    change(f);
    return decide_trial(f);
  };
  auto policy = with([](TrialFacts& f) { f.policy_rollback = false; });
  EXPECT_EQ(policy.action, TrialAction::close_gate);
  EXPECT_THAT(policy.why, HasSubstr("boot_check.rollback"));
  auto cmdline = with([](TrialFacts& f) { f.cmdline_allows_rollback = false; });
  EXPECT_EQ(cmdline.action, TrialAction::close_gate);
  EXPECT_THAT(cmdline.why, HasSubstr("upgrade-guard.rollback=0"));
  auto twice = with([](TrialFacts& f) { f.upgrade_already_rolled_back = true; });
  EXPECT_EQ(twice.action, TrialAction::close_gate);
  EXPECT_THAT(twice.why, HasSubstr("rolled back once already"));
  auto second_boot = with([](TrialFacts& f) { f.attempts = 2; });
  EXPECT_EQ(second_boot.action, TrialAction::close_gate);
  EXPECT_THAT(second_boot.why, HasSubstr("boot 2 of the trial"));
  auto no_snapshot = with([](TrialFacts& f) { f.can_roll_back = false; });
  EXPECT_EQ(no_snapshot.action, TrialAction::close_gate);
}

TEST(BootTrialSettle, WaitsForEveryJobButItsOwn) {
  const std::string me = "upgrade-guard-boot-check.service";
  EXPECT_FALSE(boot_settled("initializing", {}, me));
  EXPECT_TRUE(boot_settled("running", {{"x.service", "running"}}, me));
  EXPECT_TRUE(boot_settled("degraded", {}, me));
  EXPECT_FALSE(boot_settled("starting", {{me, "running"}, {"nginx.service", "running"}}, me));
  EXPECT_TRUE(boot_settled("starting", {{me, "running"}}, me));
  // Waiting with nothing running: they wait for boot-check itself.
  EXPECT_TRUE(boot_settled("starting", {{me, "running"}, {"late.service", "waiting"}}, me));
}

// ---- GRUB counter ---------------------------------------------------------------------------

TEST(BootTrialGrub, PicksTheNewestKernelThatHasAnInitrd) {
  EXPECT_EQ(newest_bootable_kernel({"vmlinuz-6.1.0-17-amd64", "initrd.img-6.1.0-17-amd64", "vmlinuz-6.1.0-18-amd64",
                                    "config-6.1.0-18-amd64", "System.map-6.1.0-17-amd64"}),
            "6.1.0-17-amd64");
  EXPECT_EQ(newest_bootable_kernel({"vmlinuz-6.1.0-9-amd64", "initrd.img-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64",
                                    "initrd.img-6.1.0-10-amd64"}),
            "6.1.0-10-amd64");
  EXPECT_EQ(newest_bootable_kernel({"grub", "vmlinuz-6.1.0-9-amd64.dpkg-tmp", "initrd.img-6.1.0-9-amd64.dpkg-tmp"}),
            std::nullopt);
}

TEST(BootTrialGrub, FallbackEntryPointsIntoTheSnapshotSubvolume) {
  auto in_root = fallback_boot("3f1c-aa", "20260122-101500-pre-run12", false, "6.1.0-18-amd64");
  EXPECT_EQ(in_root.linux_path, "/@upgrade-guard/20260122-101500-pre-run12/boot/vmlinuz-6.1.0-18-amd64");
  EXPECT_EQ(in_root.initrd_path, "/@upgrade-guard/20260122-101500-pre-run12/boot/initrd.img-6.1.0-18-amd64");
  EXPECT_EQ(in_root.rootflags, "subvol=@upgrade-guard/20260122-101500-pre-run12");
  EXPECT_EQ(in_root.fs_uuid, "3f1c-aa");
  // A separate /boot was captured beside the snapshot.
  auto captured = fallback_boot("3f1c-aa", "S", true, "6.1.0-18-amd64");
  EXPECT_EQ(captured.linux_path, "/@upgrade-guard/S.boot/vmlinuz-6.1.0-18-amd64");
  EXPECT_EQ(captured.rootflags, "subvol=@upgrade-guard/S");
}

std::string grubenv_with(const std::vector<std::pair<std::string, std::string>>& vars) {
  checks::GrubEnv env;
  for (const auto& [k, v] : vars) env.set(k, v);
  auto text = checks::render_grubenv(env);
  EXPECT_TRUE(text) << text.error().to_string();
  return *text;
}

TEST(BootTrialGrub, ArmAndDisarmKeepTheBlockAndOtherVariables) {
  std::string before = grubenv_with({{"saved_entry", "gnulinux-advanced-3f1c>gnulinux-6.1.0-18-amd64-advanced-3f1c"},
                                     {"next_entry", ""}});
  auto env = checks::parse_grubenv(before);
  ASSERT_TRUE(env);
  arm_grub_counter(*env, 7, fallback_boot("3f1c", "S", false, "6.1.0-18-amd64"));
  auto armed = checks::render_grubenv(*env);
  ASSERT_TRUE(armed) << armed.error().to_string();
  EXPECT_EQ(armed->size(), 1024U);
  EXPECT_EQ(armed->back(), '#');  // padded with '#'
  EXPECT_THAT(*armed, HasSubstr("\nug_trial=7\nug_boots_left=1\n"));
  EXPECT_THAT(*armed, HasSubstr("\nug_fallback_rootflags=subvol=@upgrade-guard/S\n"));
  auto reread = checks::parse_grubenv(*armed);
  ASSERT_TRUE(reread);
  EXPECT_EQ(reread->get("saved_entry"), "gnulinux-advanced-3f1c>gnulinux-6.1.0-18-amd64-advanced-3f1c");
  EXPECT_EQ(reread->get("ug_fallback_linux"), "/@upgrade-guard/S/boot/vmlinuz-6.1.0-18-amd64");

  EXPECT_TRUE(disarm_grub_counter(*reread));
  EXPECT_FALSE(disarm_grub_counter(*reread));
  auto after = checks::render_grubenv(*reread);
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, before);  // exactly the block GRUB had before the trial
}

TEST(BootTrialGrub, AnArmTooLongForTheBlockIsRefusedAndACorruptHeaderToo) {
  checks::GrubEnv env;
  env.set("saved_entry", std::string(700, 'x'));
  arm_grub_counter(env, 1, fallback_boot(std::string(36, 'u'), std::string(60, 's'), false, "6.1.0-18-amd64"));
  auto text = checks::render_grubenv(env);
  ASSERT_FALSE(text);
  EXPECT_THAT(text.error().to_string(), HasSubstr("1024-byte GRUB environment block"));
  std::string corrupt = grubenv_with({{"saved_entry", "0"}});
  corrupt[2] = 'X';
  EXPECT_FALSE(checks::parse_grubenv(corrupt));
}

TEST(BootTrialGrub, ScriptCountsDownAndFallsBackOnlyWhileATrialIsArmed) {
  std::string s = render_grub_trial_script();
  EXPECT_THAT(s, HasSubstr("if [ -n \"${ug_trial}\" ]; then"));
  EXPECT_THAT(s, HasSubstr("if [ \"${ug_boots_left}\" = \"0\" ]; then\n    set default=\"upgrade-guard-fallback\""));
  EXPECT_THAT(s, HasSubstr("set ug_boots_left=0\n    save_env -f \"${ug_env}\" ug_boots_left"));
  // Where /boot/grub is on btrfs, the block on the ESP is used.
  EXPECT_THAT(s, HasSubstr("search --no-floppy --file --set=ug_esp /EFI/upgrade-guard/grubenv"));
  EXPECT_THAT(s, HasSubstr("--id upgrade-guard-fallback {"));
  EXPECT_THAT(s, HasSubstr("linux \"${ug_fallback_linux}\" root=UUID=${ug_fallback_uuid} ro "
                           "rootflags=${ug_fallback_rootflags}"));
  EXPECT_THAT(s, HasSubstr("export ug_fallback_linux"));  // seen inside the menu entry
  // Every `if` is closed.
  std::size_t ifs = 0, fis = 0;
  for (auto line : base::split(s, '\n')) {
    line = base::trim(line);
    if (line.starts_with("if ")) ++ifs;
    if (line == "fi") ++fis;
  }
  EXPECT_EQ(ifs, fis) << s;
}

TEST(BootTrialGrub, TheFallbackEntryCarriesTheNormalCommandLineAndNamesItsTrial) {
  std::string s = render_grub_trial_script({"console=ttyS0,115200 panic=10", "quiet"});
  // As 10_linux: GRUB_CMDLINE_LINUX then GRUB_CMDLINE_LINUX_DEFAULT, and the snapshot's
  // rootflags= after them (the kernel takes the last one).
  EXPECT_THAT(s, HasSubstr("linux \"${ug_fallback_linux}\" root=UUID=${ug_fallback_uuid} ro "
                           "console=ttyS0,115200 panic=10 quiet rootflags=${ug_fallback_rootflags} "
                           "upgrade-guard.fallback=${ug_fallback_trial}\n"));
  // The trial id outlives the clearing of ug_trial: kept and exported before.
  std::size_t kept = s.find("set ug_fallback_trial=\"${ug_trial}\"");
  ASSERT_NE(kept, std::string::npos) << s;
  EXPECT_LT(kept, s.find("set ug_trial="));
  EXPECT_THAT(s, HasSubstr("export ug_fallback_trial"));
  EXPECT_THAT(s, HasSubstr("menuentry \"Pre-upgrade snapshot (upgrade-guard trial ${ug_fallback_trial})\""));
  // A line break in /etc/default/grub cannot end the linux line early.
  std::string broken = render_grub_trial_script({"panic=10\ninsmod evil", ""});
  EXPECT_THAT(broken, HasSubstr("ro panic=10 insmod evil rootflags="));
}

TEST(BootTrialGrub, TheScriptPassesGrubScriptCheck) {
  if (::access("/usr/bin/grub-script-check", X_OK) != 0) UG_SKIP_OR_FAIL("grub-script-check (grub-common) is missing");
  TempDir tmp;
  for (const GrubCmdline& c : {GrubCmdline{}, GrubCmdline{"console=ttyS0,115200n8 panic=10", "quiet splash"},
                               GrubCmdline{"rootflags=subvol=@rootfs", "$vt_handoff"}}) {
    write_file(tmp / "42.cfg", render_grub_trial_script(c));
    auto r = guard::testing::run({"/usr/bin/grub-script-check", tmp / "42.cfg"});
    EXPECT_EQ(r.exit_code, 0) << c.args << " " << c.default_args << ": " << r.out << r.err;
  }
  // It does catch a broken script.
  write_file(tmp / "bad.cfg", "if [ -n x ]; then\n  menuentry x {\n");
  EXPECT_NE(guard::testing::run({"/usr/bin/grub-script-check", tmp / "bad.cfg"}).exit_code, 0);
}

TEST(BootTrialGrub, TheCommandTakesTheCommandLineFromUpdateGrubsEnvironment) {
  auto r = guard::testing::run({guard::testing::binary(), "boot-check", "--grub-script"}, 60,
                               {{"GRUB_CMDLINE_LINUX", "console=ttyS0 panic=10"},
                                {"GRUB_CMDLINE_LINUX_DEFAULT", "quiet"},
                                {"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(" ro console=ttyS0 panic=10 quiet rootflags=${ug_fallback_rootflags} "));
}

TEST(BootTrialDecide, TheFallbackBootIsKnownByItsKernelParameter) {
  EXPECT_EQ(fallback_trial_from_cmdline("BOOT_IMAGE=/vmlinuz ro upgrade-guard.rollback=0 upgrade-guard.fallback=12"),
            12);
  EXPECT_EQ(fallback_trial_from_cmdline("BOOT_IMAGE=/vmlinuz ro quiet"), std::nullopt);
  EXPECT_EQ(fallback_trial_from_cmdline("upgrade-guard.fallback= quiet"), std::nullopt);  // GRUB had no trial id
  EXPECT_EQ(fallback_trial_from_cmdline("upgrade-guard.fallback=x12"), std::nullopt);
  EXPECT_EQ(fallback_trial_from_cmdline("upgrade-guard.fallback=3 upgrade-guard.fallback=4"), 4);  // the last wins
  EXPECT_EQ(fallback_trial_from_cmdline("xupgrade-guard.fallback=3"), std::nullopt);
}

TEST(BootTrialDecide, TheFallbackBootSaysWhatHappenedAndHowToStayOnThePreUpgradeRoot) {
  const std::string snap = "20260122-101500-pre-run-12";
  auto s = fallback_boot_summary("BOOT_IMAGE=/@upgrade-guard/" + snap +
                                     "/boot/vmlinuz ro panic=10 upgrade-guard.rollback=0 upgrade-guard.fallback=7",
                                 "@upgrade-guard/" + snap);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->exit_code, 1);
  EXPECT_THAT(s->message, HasSubstr("the boot of trial 7 never reached boot-check"));
  EXPECT_THAT(s->message, HasSubstr("pre-upgrade snapshot " + snap));
  ASSERT_EQ(s->notes.size(), 1u);
  EXPECT_THAT(s->notes[0], HasSubstr("upgrade-guard rollback --to " + snap));
  // Not a fallback boot: no parameter, or a root that is not in the snapshot store.
  EXPECT_FALSE(fallback_boot_summary("ro quiet", "@upgrade-guard/" + snap));
  EXPECT_FALSE(fallback_boot_summary("ro upgrade-guard.fallback=7", "@rootfs"));
  EXPECT_FALSE(fallback_boot_summary("ro upgrade-guard.fallback=7", ""));
}

// ---- Rollback options -----------------------------------------------------------------------

TEST(BootTrialRollback, TheLiveRootCarriesTheStateDirectory) {
  testing::PipelineWorld w;
  w.policy.preserve = {"/home", "/var/log"};
  RollbackRecord record;
  record.id = 3;
  RunContext& live = w.context(::getpid(), /*live=*/true);
  live.paths.state_dir = "/var/lib/upgrade-guard";
  auto opts = rollback_options(live, record);
  ASSERT_TRUE(opts.preserve);
  EXPECT_THAT(*opts.preserve, ElementsAre("/home", "/var/log", "/var/lib/upgrade-guard"));
  EXPECT_EQ(opts.owner, "upgrade-guard rollback 3");
  RunContext& other = w.context(::getpid(), /*live=*/false);
  EXPECT_THAT(*rollback_options(other, record).preserve, ElementsAre("/home", "/var/log"));
}

// ---- State: trials of a run -----------------------------------------------------------------

TEST(BootTrialState, TrialsOfARunNewestFirstWithTheirTransitions) {
  TempDir tmp;
  auto db = StateStore::open(tmp / "state");
  ASSERT_TRUE(db);
  auto run = db->begin_run(RunStart{"/", {"apt-get", "dist-upgrade"}, 1, RunKind::run, "", ""});
  ASSERT_TRUE(run);
  auto first = db->create_boot_trial(*run, "S");
  ASSERT_TRUE(first);
  EXPECT_EQ(*db->record_boot_attempt(*first), 1);
  ASSERT_TRUE(db->set_boot_trial_state(*first, BootTrialState::rolled_back, "app.service failed"));
  auto second = db->create_boot_trial(*run, "S");
  ASSERT_TRUE(second);
  auto other_run = db->begin_run(RunStart{"/", {"apt-get", "upgrade"}, 1, RunKind::run, "", ""});
  ASSERT_TRUE(db->create_boot_trial(*other_run, "T"));
  auto trials = db->boot_trials_of_run(*run);
  ASSERT_TRUE(trials);
  ASSERT_EQ(trials->size(), 2U);
  EXPECT_EQ((*trials)[0].id, *second);
  EXPECT_EQ((*trials)[0].state, BootTrialState::pending);
  EXPECT_EQ((*trials)[1].state, BootTrialState::rolled_back);
  EXPECT_EQ((*trials)[1].attempts, 1);
  EXPECT_EQ((*trials)[1].message, "app.service failed");
}

// ---- run_boot_check with a fake systemd -----------------------------------------------------

// Records what boot-check asked; answers from its fields.
class FakeBootBus final : public BootBus {
 public:
  std::vector<std::string> states{"starting", "running"};
  std::map<std::string, std::string> active;  // unit -> ActiveState
  std::vector<std::string> failed;
  int state_calls = 0;
  int reboots = 0;

  base::Result<std::string> system_state() override {
    auto i = std::min<std::size_t>(state_calls++, states.size() - 1);
    return states[i];
  }
  base::Result<std::vector<BootJob>> jobs() override {
    return std::vector<BootJob>{{"upgrade-guard-boot-check.service", "running"}, {"slow.service", "running"}};
  }
  base::Result<std::string> unit_active_state(const std::string& unit) override {
    auto it = active.find(unit);
    return it == active.end() ? std::string("inactive") : it->second;
  }
  base::Result<std::vector<std::string>> failed_units() override { return failed; }
  base::Result<void> reboot() override {
    ++reboots;
    return {};
  }
};

class BootCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(w_.dir / "cmdline", "BOOT_IMAGE=/vmlinuz ro quiet\n");
    boot_.cmdline_path = w_.dir / "cmdline";
    boot_.poll = std::chrono::milliseconds(1);
    w_.policy = policies::Policy{};
    w_.policy.required_services = {"app.service"};
    bus_.active["app.service"] = "active";
    RunContext& ctx = w_.context(::getpid());
    run_ = *ctx.store.begin_run(RunStart{ctx.root_key, {"apt-get", "dist-upgrade"}, 1, RunKind::run, "", ""});
    ASSERT_TRUE(ctx.store.finish_run(run_, RunOutcome::passed, 0, "passed"));
    trial_ = *ctx.store.create_boot_trial(run_, "S");
    // The fake root's findings (no /sbin/init...) are its accepted baseline.
    CheckSessionOptions all;
    all.check_ids = boot_check_ids();
    auto baseline = run_checks({ctx.root, ctx.policy, ctx.runner, ctx.live}, all);
    ASSERT_TRUE(baseline);
    ASSERT_TRUE(ctx.store.save_baseline(ctx.root_key, finding_keys(*baseline)));
  }

  BootTrialRecord trial() { return **w_.store->get_boot_trial(trial_); }
  BootCheckSummary check() { return run_boot_check(w_.context(::getpid()), bus_, boot_); }

  testing::PipelineWorld w_;
  BootCheckOptions boot_;
  FakeBootBus bus_;
  std::int64_t run_ = 0;
  std::int64_t trial_ = 0;
};

TEST_F(BootCheckTest, NoTrialIsAQuickNoOp) {
  ASSERT_TRUE(w_.store->set_boot_trial_state(trial_, BootTrialState::blessed, "earlier"));
  auto s = check();
  EXPECT_EQ(s.exit_code, kExitOk);
  EXPECT_EQ(s.message, "no boot trial pending");
  EXPECT_EQ(bus_.state_calls, 0);
}

TEST_F(BootCheckTest, AHealthyBootIsBlessedAfterItSettles) {
  auto s = check();
  EXPECT_EQ(s.exit_code, kExitOk) << s.message;
  EXPECT_EQ(s.action, TrialAction::bless);
  EXPECT_TRUE(s.problems.empty()) << s.message;
  EXPECT_EQ(bus_.state_calls, 2);  // "starting" with slow.service running, then "running"
  EXPECT_EQ(trial().state, BootTrialState::blessed);
  EXPECT_EQ(trial().attempts, 1);
  // Later boots find nothing pending.
  EXPECT_EQ(check().message, "no boot trial pending");
}

TEST_F(BootCheckTest, AFailedRequiredUnitClosesTheGateWhenRollbackIsOffOnTheCommandLine) {
  bus_.active["app.service"] = "failed";
  bus_.failed = {"app.service", "other.service"};
  write_file(w_.dir / "cmdline", "BOOT_IMAGE=/vmlinuz ro upgrade-guard.rollback=0\n");
  auto s = check();
  EXPECT_EQ(s.exit_code, kExitChecksFailed) << s.message;
  EXPECT_EQ(s.action, TrialAction::close_gate);
  EXPECT_THAT(s.problems, ElementsAre("required unit app.service is failed", "unit other.service failed"));
  EXPECT_EQ(bus_.reboots, 0);
  EXPECT_EQ(trial().state, BootTrialState::failed);
  EXPECT_THAT(trial().message, HasSubstr("upgrade-guard.rollback=0"));
  auto gate = w_.store->get_gate();
  ASSERT_TRUE(gate);
  EXPECT_TRUE(gate->closed);
  EXPECT_THAT(gate->reason, HasSubstr("required unit app.service is failed"));
  EXPECT_EQ(read_file(gate::gate_file_path(w_.state_dir)).substr(0, 7), "closed\n");
}

TEST_F(BootCheckTest, ASecondBootOfTheSameTrialNeverRollsBack) {
  ASSERT_TRUE(w_.store->record_boot_attempt(trial_));  // an earlier boot began checking and died
  bus_.active["app.service"] = "failed";
  auto s = check();
  EXPECT_EQ(s.action, TrialAction::close_gate);
  EXPECT_EQ(trial().attempts, 2);
  EXPECT_EQ(bus_.reboots, 0);
}

TEST_F(BootCheckTest, AnUpgradeRolledBackOnceIsNotRolledBackAgain) {
  ASSERT_TRUE(w_.store->set_boot_trial_state(trial_, BootTrialState::rolled_back, "first trial failed"));
  trial_ = *w_.store->create_boot_trial(run_, "S");
  bus_.active["app.service"] = "failed";
  auto s = check();
  EXPECT_EQ(s.action, TrialAction::close_gate);
  EXPECT_THAT(s.message, HasSubstr("rolled back once already"));
  EXPECT_EQ(trial().state, BootTrialState::failed);
}

TEST_F(BootCheckTest, ARollbackThatIsNotPossibleClosesTheGate) {
  // The backend has no snapshot "S".
  bus_.active["app.service"] = "failed";
  auto s = check();
  EXPECT_EQ(s.action, TrialAction::close_gate) << s.message;
  EXPECT_EQ(s.exit_code, kExitChecksFailed);
  EXPECT_EQ(bus_.reboots, 0);
  EXPECT_EQ(trial().state, BootTrialState::failed);
}

TEST_F(BootCheckTest, AFailedTrialRollsBackRecordedAndReboots) {
  auto snap = w_.backend->create("pre-run1", {});
  ASSERT_TRUE(snap);
  trial_ = *w_.store->create_boot_trial(run_, snap->id);  // the newest pending trial
  w_.backend->takes_effect_now = false;                    // the live root's: at the next boot
  bus_.active["app.service"] = "failed";
  auto s = check();
  EXPECT_EQ(s.action, TrialAction::roll_back) << s.message;
  EXPECT_EQ(s.exit_code, kExitRolledBack);
  EXPECT_EQ(bus_.reboots, 1);
  EXPECT_EQ(trial().state, BootTrialState::rolled_back);
  auto rollbacks = w_.store->rollbacks_of_run(run_);
  ASSERT_TRUE(rollbacks);
  ASSERT_EQ(rollbacks->size(), 1u);
  EXPECT_EQ(rollbacks->front().state, RollbackState::done);
  EXPECT_EQ(rollbacks->front().snapshot_id, snap->id);
  // The run passed when it ran; history now says what became of it.
  EXPECT_EQ(w_.run_record(run_)->outcome, RunOutcome::rolled_back);
}

// The kernel hook noted the kernel the upgrade installed; the trial says whether it booted it,
// and forgets the note.
TEST_F(BootCheckTest, TheTrialSaysWhetherItRunsTheKernelTheUpgradeInstalled) {
  const std::string state_dir = w_.context(::getpid()).paths.state_dir;
  boot_.osrelease_path = w_.dir / "osrelease";
  write_file(boot_.osrelease_path, "6.1.0-99-amd64\n");
  ASSERT_TRUE(record_next_kernel(state_dir, "6.1.0-99-amd64"));
  EXPECT_THAT(check().notes, ::testing::Contains("the trial boot runs the new kernel 6.1.0-99-amd64"));
  EXPECT_FALSE(std::filesystem::exists(state_dir + "/next-kernel"));  // forgotten once said

  // Another kernel booted: the note asks about GRUB's default entry.
  ASSERT_TRUE(w_.store->set_boot_trial_state(trial_, BootTrialState::pending, "again"));
  write_file(boot_.osrelease_path, "6.1.0-13-amd64\n");
  ASSERT_TRUE(record_next_kernel(state_dir, "6.1.0-99-amd64"));
  EXPECT_THAT(check().notes, ::testing::Contains(HasSubstr(
                                 "runs kernel 6.1.0-13-amd64, not 6.1.0-99-amd64 the upgrade installed")));
  EXPECT_FALSE(record_next_kernel(state_dir, "../etc/passwd"));  // not a version: refused
}



// ---- The GRUB fallback boot, made to recover ------------------------------------------------

// The system runs from the pre-upgrade snapshot (the fallback entry); the upgraded root, which
// fstab and GRUB pin, is the fake backend's root, and its state database holds the trial.
class FallbackBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    w_.policy = policies::Policy{};
    carried_ = w_.root_dir + "/var/lib/upgrade-guard";
    auto snap = w_.backend->create("pre-run1", {});
    ASSERT_TRUE(snap);
    snapshot_ = snap->id;
    w_.backend->pinned = w_.root_dir;
    w_.backend->takes_effect_now = false;
    {
      auto db = StateStore::open(carried_);
      ASSERT_TRUE(db);
      run_ = *db->begin_run(RunStart{"/", {"apt-get", "dist-upgrade"}, 1, RunKind::run, "", ""});
      ASSERT_TRUE(db->finish_run(run_, RunOutcome::passed, 0, "passed"));
      trial_ = *db->create_boot_trial(run_, snapshot_);
    }
    testing::make_dirs(w_.dir / "running");
    running_.emplace(*base::Root::open(w_.dir / "running"));
    cmdline_ = "BOOT_IMAGE=/@upgrade-guard/" + snapshot_ + "/boot/vmlinuz ro panic=10 upgrade-guard.fallback=" +
               std::to_string(trial_);
  }

  std::optional<BootCheckSummary> recover(const std::string& cmdline) {
    w_.context(::getpid());  // the source of the fake backend
    FallbackEnv env{.policy = w_.policy,
                    .root = *running_,
                    .runner = w_.runner,
                    .snapshots = *w_.snapshots,
                    .paths = {.state_dir = "/var/lib/upgrade-guard",
                              .log_dir = w_.dir / "log",
                              .run_dir = w_.dir / "run"},
                    .hostname = "test",
                    .boot_id = "b1"};
    boot_.poll = std::chrono::milliseconds(1);
    return recover_fallback_boot(cmdline, "@upgrade-guard/" + snapshot_, env, bus_, boot_);
  }
  // The pinned root's database as it is now (after a rollback: the restored root's copy).
  StateStore carried() { return std::move(*StateStore::open(carried_)); }

  testing::PipelineWorld w_;
  FakeBootBus bus_;
  BootCheckOptions boot_;
  std::optional<base::Root> running_;
  std::string carried_, snapshot_, cmdline_;
  std::int64_t run_ = 0, trial_ = 0;
};

TEST_F(FallbackBootTest, ThePinnedRootIsRolledBackRecordedAndTheMachineReboots) {
  auto s = recover(cmdline_);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->exit_code, kExitRolledBack) << s->message << "\n" << base::join(s->notes, "\n");
  EXPECT_EQ(s->action, TrialAction::roll_back);
  EXPECT_THAT(s->message, HasSubstr("rolled back to " + snapshot_));
  EXPECT_EQ(bus_.reboots, 1);
  ASSERT_EQ(w_.backend->rollbacks.size(), 1u);
  EXPECT_EQ(w_.backend->rollbacks[0].first, snapshot_);
  // The state directory is carried from the upgraded root into the restored one.
  EXPECT_THAT(*w_.backend->rollbacks[0].second.preserve, ::testing::Contains("/var/lib/upgrade-guard"));
  // The restored root's database says what happened: the trial failed before boot-check and was
  // rolled back, the rollback is done, and the restored root's first boot is a new trial.
  auto db = carried();
  auto t = **db.get_boot_trial(trial_);
  EXPECT_EQ(t.state, BootTrialState::rolled_back);
  EXPECT_THAT(t.message, HasSubstr("never reached boot-check"));
  auto rollbacks = *db.rollbacks_of_run(run_);
  ASSERT_EQ(rollbacks.size(), 1u);
  EXPECT_EQ(rollbacks[0].state, RollbackState::done);
  EXPECT_EQ(rollbacks[0].snapshot_id, snapshot_);
  EXPECT_EQ((*db.get_run(run_))->outcome, RunOutcome::rolled_back);
  auto next = *db.pending_boot_trial();
  ASSERT_TRUE(next);
  EXPECT_NE(next->id, trial_);
  EXPECT_EQ(next->snapshot_id, snapshot_);
}

TEST_F(FallbackBootTest, ASecondFallbackOfTheSameTrialChangesNothing) {
  ASSERT_EQ(recover(cmdline_)->exit_code, kExitRolledBack);
  // GRUB would not do this (the counter is disarmed), but if the same fallback came again:
  auto again = recover(cmdline_);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->exit_code, kExitChecksFailed);
  EXPECT_THAT(again->notes[0], HasSubstr("no second rollback"));
  EXPECT_EQ(w_.backend->rollbacks.size(), 1u);
  EXPECT_EQ(bus_.reboots, 1);
}

TEST_F(FallbackBootTest, PolicyOrCommandLineOffRecordsTheTrialAndSaysWhatToDo) {
  w_.policy.boot_check.rollback = false;
  auto s = recover(cmdline_);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->exit_code, kExitChecksFailed);
  EXPECT_EQ(s->action, TrialAction::close_gate);
  EXPECT_THAT(base::join(s->notes, "\n"), HasSubstr("upgrade-guard rollback --to " + snapshot_));
  EXPECT_TRUE(w_.backend->rollbacks.empty());
  EXPECT_EQ(bus_.reboots, 0);
  EXPECT_EQ((**carried().get_boot_trial(trial_)).state, BootTrialState::failed);

  w_.policy.boot_check.rollback = true;
  ASSERT_TRUE(carried().set_boot_trial_state(trial_, BootTrialState::pending, "again"));
  s = recover(cmdline_ + " upgrade-guard.rollback=0");
  EXPECT_EQ(s->exit_code, kExitChecksFailed);
  EXPECT_TRUE(w_.backend->rollbacks.empty());
}

TEST_F(FallbackBootTest, ATrialForAnotherSnapshotOrNoneIsNotRolledBack) {
  // The trial names another snapshot than the one this boot runs from.
  {
    auto db = carried();
    ASSERT_TRUE(db.set_boot_trial_state(trial_, BootTrialState::blessed, "earlier"));
    trial_ = *db.create_boot_trial(run_, "20990101-000000-other");
  }
  auto s = recover("ro upgrade-guard.fallback=" + std::to_string(trial_));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->exit_code, kExitChecksFailed);
  EXPECT_THAT(s->notes[0], HasSubstr("would roll back to 20990101-000000-other"));
  // A trial the database does not know.
  s = recover("ro upgrade-guard.fallback=999");
  EXPECT_THAT(s->notes[0], HasSubstr("trial 999 is not recorded"));
  // The upgraded root has no state database at all.
  std::filesystem::remove_all(carried_);
  s = recover(cmdline_);
  EXPECT_THAT(s->notes[0], HasSubstr("nothing recorded a trial there"));
  EXPECT_TRUE(w_.backend->rollbacks.empty());
  // Not a fallback boot.
  EXPECT_FALSE(recover("ro quiet"));
}

}  // namespace
}  // namespace guard::boot
