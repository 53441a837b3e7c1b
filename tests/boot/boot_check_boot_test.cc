// The post-boot health check on a real booted Debian 12 (systemd 252) in systemd-nspawn: a
// healthy trial boot is blessed; a trial boot whose required unit fails is rolled back to the
// pre-upgrade btrfs snapshot exactly once, and the boot after the rollback closes the gate
// instead of rolling back again.
//
// nspawn notes (what works on this machine): the container's root is a btrfs subvolume on a
// loop image, booted with `-D <top>/root`; inside, /proc/self/mountinfo shows "/" as
// /dev/loopN with fs root "/root", so the guard mounts the top level itself, which needs the
// device node: `--bind=/dev/loopN` gives it (and nspawn allows the device). A reboot inside
// ends nspawn; the test boots the same path again, which after the RENAME_EXCHANGE names the
// restored tree, exactly as a real machine's next boot would.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "base/strings.h"
#include "guard/state/store.h"
#include "tests/boot/nspawn.h"
#include "tests/common/test_env.h"
#include "tests/system/loop_image.h"

namespace guard::testing {
namespace {

namespace fs = std::filesystem;
using namespace guard::state;
using std::chrono::milliseconds;

std::string machine_name() {
  static std::atomic<int> counter{0};
  return "ug-bc-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

constexpr const char* kUnit = "upgrade-guard-boot-check.service";

class BootCheckBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) UG_SKIP_OR_FAIL("needs root to boot a container with systemd-nspawn");
    if (!fs::exists("/usr/bin/systemd-nspawn") || !fs::exists("/usr/bin/nsenter"))
      UG_SKIP_OR_FAIL("needs systemd-nspawn and nsenter (apt-get install systemd-container util-linux)");
  }

  // Boots root_dir_ and waits until it runs; `label` names the boot in the printed timings.
  void boot(const std::string& label) {
    auto box = BootedContainer::boot(root_dir_, machine_name(), tmp_ / ("console-" + label + ".log"),
                                     std::chrono::seconds(180), nspawn_args_);
    ASSERT_TRUE(box) << box.error().to_string();
    box_ = std::move(*box);
    std::printf("[ boot     ] %s: running after %lld ms\n", label.c_str(),
                static_cast<long long>(box_->boot_time().count()));
  }

  // `systemctl reboot` inside, then nspawn exits.
  void reboot() {
    auto r = box_->exec({"systemctl", "reboot"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_TRUE(box_->wait_exit(std::chrono::seconds(60))) << box_->log();
    box_.reset();
  }

  std::string output(const std::vector<std::string>& argv) { return std::string(base::trim(box_->exec(argv).out)); }
  std::string journal() { return box_->exec({"journalctl", "-u", kUnit, "-b", "--no-pager", "-o", "cat"}).out; }

  // How long boot-check's process ran, from its unit's monotonic timestamps.
  long long service_ms() {
    auto start = output({"systemctl", "show", "-P", "ExecMainStartTimestampMonotonic", kUnit});
    auto exit = output({"systemctl", "show", "-P", "ExecMainExitTimestampMonotonic", kUnit});
    return (std::atoll(exit.c_str()) - std::atoll(start.c_str())) / 1000;
  }

  // `upgrade-guard --json boot-check --status ARGS...` inside: the exit code and the JSON.
  std::pair<int, nlohmann::json> trial_status(std::vector<std::string> args = {}, int timeout_seconds = 60) {
    std::vector<std::string> argv{"upgrade-guard", "--json", "boot-check", "--status"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = box_->exec(argv, timeout_seconds);
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out << r.err;
    return {r.exit_code, j};
  }

  StateStore store() {
    auto db = StateStore::open(root_dir_ + "/var/lib/upgrade-guard");
    EXPECT_TRUE(db) << db.error().to_string();
    return std::move(*db);
  }

  // A fresh btrfs image with its top level at `top` and the boot root in its subvolume `root`
  // (fstab subvol=root); the container gets the loop device.
  void make_btrfs_root(const std::string& top) {
    image_ = std::make_unique<LoopImage>(tmp_ / "image", 6ULL << 30, "btrfs");
    ASSERT_TRUE(image_->ok()) << image_->error();
    ASSERT_TRUE(image_->mount(top, "subvolid=5"));
    ASSERT_TRUE(run({"btrfs", "subvolume", "create", top + "/root"}).ok());
    auto root = prepare_boot_root(top);
    ASSERT_TRUE(root) << root.error().to_string();
    root_dir_ = *root;
    write_file(root_dir_ + "/etc/fstab", "UUID=" + image_->uuid() + " / btrfs subvol=root,defaults 0 0\n");
    nspawn_args_ = {"--bind=" + image_->device()};
  }

  // A booted container whose guarded "upgrade" removed the binary of a required, enabled unit
  // (the services check blocks, the policy rolls back): the live rollback is prepared, nothing
  // exchanged yet.
  void prepare_a_live_rollback() {
    ASSERT_NO_FATAL_FAILURE(make_btrfs_root(tmp_ / "top"));
    write_file(root_dir_ + "/usr/local/bin/ug-app", "#!/bin/sh\ntest ! -e /etc/ug-app-broken\n", 0755);
    write_file(root_dir_ + "/etc/systemd/system/ug-app.service",
               "[Unit]\nDescription=boot test application\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
               "ExecStart=/usr/local/bin/ug-app\n\n[Install]\nWantedBy=multi-user.target\n");
    make_symlink("/etc/systemd/system/ug-app.service",
                 root_dir_ + "/etc/systemd/system/multi-user.target.wants/ug-app.service");
    write_file(root_dir_ + "/usr/local/sbin/ug-breaking-upgrade",
               "#!/bin/sh\nset -e\ntouch /etc/ug-upgraded /etc/ug-app-broken\nrm /usr/local/bin/ug-app\n",
               0755);
    write_file(root_dir_ + "/etc/upgrade-guard/policy.d/50-boot-test.toml",
               "on_fail = \"rollback\"\n\n[services]\nrequired = [\"ug-app.service\"]\n\n"
               "[snapshot]\nrequired = true\nmin_free = \"100MiB\"\n\n[preflight]\nmin_free_root = \"100MiB\"\n\n"
               "[checks.libraries]\nseverity = \"off\"\n[checks.package-hashes]\nseverity = \"off\"\n"
               "[checks.package-files]\nseverity = \"off\"\n[checks.symlinks]\nseverity = \"off\"\n",
               0644);

    ASSERT_NO_FATAL_FAILURE(boot("before the upgrade"));
    EXPECT_EQ(output({"systemctl", "is-active", "upgrade-guard-rollback-completion.service"}), "active");
    auto broken = box_->exec({"upgrade-guard", "--json", "run", "--", "/usr/local/sbin/ug-breaking-upgrade"}, 900);
    ASSERT_EQ(broken.exit_code, 3) << broken.out << broken.err;
    EXPECT_NE(broken.out.find("prepared: the restored root replaces the running one when the system shuts down"),
              std::string::npos)
        << broken.out;
    // Nothing is exchanged yet: the running root's subvolume still has its name.
    EXPECT_TRUE(fs::exists(root_dir_ + "/etc/ug-upgraded"));
  }

  TempDir tmp_{"ug-bootcheck"};
  std::string root_dir_;
  std::vector<std::string> nspawn_args_;
  std::unique_ptr<LoopImage> image_;      // declared before box_: outlives the container
  std::unique_ptr<BootedContainer> box_;  // ended first
};

TEST_F(BootCheckBootTest, AHealthyTrialBootIsBlessed) {
  auto root = prepare_boot_root(tmp_.path());
  ASSERT_TRUE(root) << root.error().to_string();
  root_dir_ = *root;
  ASSERT_NO_FATAL_FAILURE(boot("first"));
  // No state yet: the unit's condition skips it on an ordinary boot.
  EXPECT_EQ(output({"systemctl", "show", "-P", "ConditionResult", kUnit}), "no");
  auto saved = box_->exec({"upgrade-guard", "check", "--checks", "dpkg-state,boot,mounts,services,critical",
                           "--baseline", "save"},
                          300);
  ASSERT_LE(saved.exit_code, 1) << saved.out << saved.err;
  {
    // The trial a passing upgrade would leave, written through the store API on the root's
    // directory (SQLite cannot open its files through /proc/PID/root).
    auto db = StateStore::open(root_dir_ + "/var/lib/upgrade-guard");
    ASSERT_TRUE(db) << db.error().to_string();
    SnapshotRecord snap;
    snap.id = "20260101-000000-pre-run1";
    snap.backend = "btrfs";
    snap.root = "/";
    snap.location = snap.id;
    ASSERT_TRUE(db->record_snapshot(snap));
    ASSERT_TRUE(db->create_boot_trial(std::nullopt, snap.id));
  }
  // Armed: the next boot is the trial (exit 4, not settled).
  auto [armed_exit, armed] = trial_status();
  EXPECT_EQ(armed_exit, 4) << armed.dump();
  EXPECT_EQ(armed["state"], "armed") << armed.dump();
  EXPECT_EQ(armed["settled"], false) << armed.dump();
  // A unit that holds multi-user.target for 10 s: boot-check (after it) cannot have settled
  // the trial when --status first looks.
  write_file(root_dir_ + "/etc/systemd/system/ug-slow.service",
             "[Unit]\nDescription=a slow boot\n\n[Service]\nType=oneshot\nExecStart=/bin/sleep 10\n\n"
             "[Install]\nWantedBy=multi-user.target\n");
  make_symlink("/etc/systemd/system/ug-slow.service",
               root_dir_ + "/etc/systemd/system/multi-user.target.wants/ug-slow.service");
  ASSERT_NO_FATAL_FAILURE(reboot());

  // The trial boot, watched from its start as a fleet's reboot step does.
  auto trial_boot = BootedContainer::start(root_dir_, machine_name(), tmp_ / "console-trial.log", nspawn_args_);
  ASSERT_TRUE(trial_boot) << trial_boot.error().to_string();
  box_ = std::move(*trial_boot);
  auto init = box_->wait_init(std::chrono::seconds(60));
  ASSERT_TRUE(init) << init.error().to_string();
  auto [pending_exit, pending] = trial_status();
  EXPECT_EQ(pending_exit, 4) << pending.dump();
  EXPECT_EQ(pending["state"], "pending") << pending.dump();
  EXPECT_EQ(pending["settled"], false) << pending.dump();
  auto watch_start = std::chrono::steady_clock::now();
  auto [blessed_exit, blessed] = trial_status({"--wait", "--timeout", "240"}, 300);
  std::printf("[ measure  ] boot-check --status --wait: %s after %lld ms\n", blessed.value("state", "?").c_str(),
              static_cast<long long>(std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() -
                                                                              watch_start)
                                         .count()));
  EXPECT_EQ(blessed_exit, 0) << blessed.dump();
  EXPECT_EQ(blessed["state"], "blessed") << blessed.dump();
  EXPECT_EQ(blessed["settled"], true) << blessed.dump();
  EXPECT_EQ(blessed["trial"]["id"], 1) << blessed.dump();
  EXPECT_GT(blessed["waited_ms"].get<long long>(), 0) << blessed.dump();
  // Not root: the trial's state cannot be read, so it is not known (exit 4), never "none".
  auto nobody = box_->exec({"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "upgrade-guard",
                            "--json", "boot-check", "--status"});
  EXPECT_EQ(nobody.exit_code, 4) << nobody.out << nobody.err;
  EXPECT_NE(nobody.out.find("\"unknown\""), std::string::npos) << nobody.out;
  EXPECT_NE(nobody.err.find("must run as root"), std::string::npos) << nobody.err;
  auto up = box_->wait_running(std::chrono::seconds(120));
  ASSERT_TRUE(up) << up.error().to_string();
  EXPECT_EQ(output({"systemctl", "show", "-P", "Result", kUnit}), "success") << journal();
  EXPECT_EQ(output({"systemctl", "is-active", kUnit}), "active");
  EXPECT_NE(journal().find("blessed"), std::string::npos) << journal();
  std::printf("[ measure  ] boot-check ran %lld ms on a healthy trial boot\n", service_ms());
  auto db = store();
  auto trial = db.get_boot_trial(1);
  ASSERT_TRUE(trial && *trial);
  EXPECT_EQ((*trial)->state, BootTrialState::blessed) << (*trial)->message;
  EXPECT_EQ((*trial)->attempts, 1);
  auto snap = db.get_snapshot("20260101-000000-pre-run1");
  ASSERT_TRUE(snap && *snap);
  EXPECT_TRUE((*snap)->known_good);
  EXPECT_FALSE(*db.pending_boot_trial());
}

// The test's application: fails once the "upgrade" left `marker_dir`/broken. By default that is
// /srv/ug-app, data that the rollback carries (preserve /srv), so the restored root fails the
// same way; under /etc the rollback takes it away with the upgrade.
void install_app(const std::string& root, const std::string& marker_dir = "/srv/ug-app") {
  write_file(root + "/usr/local/bin/ug-app", "#!/bin/sh\ntest ! -e " + marker_dir + "/broken\n", 0755);
  write_file(root + "/etc/systemd/system/ug-app.service",
             "[Unit]\nDescription=boot test application\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
             "ExecStart=/usr/local/bin/ug-app\n\n[Install]\nWantedBy=multi-user.target\n");
  make_symlink("/etc/systemd/system/ug-app.service", root + "/etc/systemd/system/multi-user.target.wants/ug-app.service");
  write_file(root + "/usr/local/sbin/ug-fake-upgrade",
             "#!/bin/sh\nset -e\ntouch /etc/ug-upgraded\nmkdir -p " + marker_dir + "\ntouch " + marker_dir + "/broken\n",
             0755);
  // The per-file package checks are the run's business, not this test's: off for speed.
  write_file(root + "/etc/upgrade-guard/policy.d/50-boot-test.toml",
             "[services]\nrequired = [\"ug-app.service\"]\n\n[snapshot]\nrequired = true\nmin_free = \"100MiB\"\n\n"
             "[preflight]\nmin_free_root = \"100MiB\"\n\n"
             "[checks.libraries]\nseverity = \"off\"\n[checks.package-hashes]\nseverity = \"off\"\n"
             "[checks.package-files]\nseverity = \"off\"\n[checks.symlinks]\nseverity = \"off\"\n",
             0644);
}

TEST_F(BootCheckBootTest, AFailedRequiredUnitRollsBackExactlyOnce) {
  const std::string top = tmp_ / "top";
  ASSERT_NO_FATAL_FAILURE(make_btrfs_root(top));
  install_app(root_dir_);
  make_dirs(root_dir_ + "/var/log/journal");  // persistent: the trial boot's journal stays in the broken root

  // Boot 1: the guarded "upgrade" passes its checks; the next boot is a trial.
  ASSERT_NO_FATAL_FAILURE(boot("before the upgrade"));
  EXPECT_EQ(output({"systemctl", "is-active", "ug-app.service"}), "active");
  // The container's "/" is the subvolume, on the loop device whose node was bound in.
  auto mountinfo = box_->exec({"cat", "/proc/self/mountinfo"}).out;
  EXPECT_NE(mountinfo.find(" /root / "), std::string::npos) << mountinfo;
  EXPECT_NE(mountinfo.find("btrfs " + image_->device()), std::string::npos) << mountinfo;
  auto upgraded = box_->exec({"upgrade-guard", "run", "--", "/usr/local/sbin/ug-fake-upgrade"}, 900);
  ASSERT_EQ(upgraded.exit_code, 0) << upgraded.out << upgraded.err;
  EXPECT_NE(upgraded.out.find("the next boot is trial 1"), std::string::npos) << upgraded.err << upgraded.out;
  // A second upgrade before the reboot is covered by the same trial: a failed boot must roll
  // back past both, to the root that last booted (the marker of the first is then gone).
  auto second = box_->exec({"upgrade-guard", "run", "--", "/bin/true"}, 900);
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.out.find("the next boot is already trial 1"), std::string::npos) << second.out;
  ASSERT_NO_FATAL_FAILURE(reboot());

  // Boot 2, the trial: ug-app fails, boot-check rolls back and reboots, which ends nspawn.
  auto start = std::chrono::steady_clock::now();
  auto trial_boot = BootedContainer::start(root_dir_, machine_name(), tmp_ / "console-trial.log", nspawn_args_);
  ASSERT_TRUE(trial_boot) << trial_boot.error().to_string();
  bool ended = (*trial_boot)->wait_exit(std::chrono::seconds(120));
  std::printf("[ measure  ] trial boot, boot-check, rollback and reboot: %s after %lld ms\n",
              ended ? "nspawn exited" : "nspawn still running (stopped by the test)",
              static_cast<long long>(
                  std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count()));
  trial_boot->reset();
  // What boot-check decided, from the trial boot's persistent journal, kept in the broken root.
  std::string trial_journal;
  for (const auto& e : fs::directory_iterator(top + "/@upgrade-guard")) {
    if (e.path().filename().string().find("broken") == std::string::npos || !e.is_directory()) continue;
    trial_journal = run({"journalctl", "--directory=" + e.path().string() + "/var/log/journal", "--no-pager", "-o",
                         "cat"},
                        60)
                        .out;
  }
  EXPECT_NE(trial_journal.find("rebooting into the restored root"), std::string::npos) << trial_journal;
  // The same path now names the restored root: no marker of the upgrade, the carried data kept.
  EXPECT_FALSE(fs::exists(root_dir_ + "/etc/ug-upgraded"));
  EXPECT_TRUE(fs::exists(root_dir_ + "/srv/ug-app/broken"));
  {
    auto db = store();
    auto first = db.get_boot_trial(1);
    ASSERT_TRUE(first && *first);
    EXPECT_EQ((*first)->state, BootTrialState::rolled_back) << (*first)->message;
    EXPECT_NE((*first)->message.find("required unit ug-app.service is failed"), std::string::npos)
        << (*first)->message;
    auto second = db.pending_boot_trial();
    ASSERT_TRUE(second && *second) << "the boot after the rollback is not a trial";
  }

  // Boot 3, the restored root: still failing (the carried data), but no second rollback.
  ASSERT_NO_FATAL_FAILURE(boot("after the rollback"));
  EXPECT_EQ(output({"systemctl", "show", "-P", "Result", kUnit}), "exit-code") << journal();
  EXPECT_NE(journal().find("rolled back once already"), std::string::npos) << journal();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_TRUE(box_->running()) << "the restored root rebooted again:\n" << box_->log();
  EXPECT_EQ(box_->exec({"upgrade-guard", "gate", "status"}).exit_code, 1);
  // The restored root's trial failed and was not rolled back again: failed, the gate closed.
  auto [failed_exit, failed] = trial_status({"--wait", "--timeout", "60"}, 90);
  EXPECT_EQ(failed_exit, 1) << failed.dump();
  EXPECT_EQ(failed["state"], "failed") << failed.dump();
  EXPECT_EQ(failed["trial"]["id"], 2) << failed.dump();
  EXPECT_EQ(failed["run"], 1) << failed.dump();
  EXPECT_FALSE(fs::exists(root_dir_ + "/etc/ug-upgraded"));
  auto history = box_->exec({"upgrade-guard", "history", "--run", "1"});
  EXPECT_NE(history.out.find("rolled-back"), std::string::npos) << history.out << history.err;
  auto db = store();
  auto trials = db.boot_trials_of_run(1);
  ASSERT_TRUE(trials);
  ASSERT_EQ(trials->size(), 2U);
  EXPECT_EQ((*trials)[0].state, BootTrialState::failed) << (*trials)[0].message;
  EXPECT_EQ((*trials)[1].state, BootTrialState::rolled_back);
}

// What a fleet's reboot step sees when a trial boot fails and the restored root is healthy (the
// upgrade's damage is under /etc, which the rollback takes away): armed before the reboot; after
// the trial boot rolled back and rebooted by itself, the restored root's trial is blessed and
// `boot-check --status --wait` says rolled-back (exit 3), for the run that was rolled back.
TEST_F(BootCheckBootTest, ATrialBootRolledBackReadsRolledBackOnTheRestoredRoot) {
  ASSERT_NO_FATAL_FAILURE(make_btrfs_root(tmp_ / "top"));
  install_app(root_dir_, "/etc/ug-app");
  ASSERT_NO_FATAL_FAILURE(boot("before the upgrade"));
  auto upgraded = box_->exec({"upgrade-guard", "run", "--", "/usr/local/sbin/ug-fake-upgrade"}, 900);
  ASSERT_EQ(upgraded.exit_code, 0) << upgraded.out << upgraded.err;
  auto [armed_exit, armed] = trial_status();
  EXPECT_EQ(armed_exit, 4) << armed.dump();
  EXPECT_EQ(armed["state"], "armed") << armed.dump();
  EXPECT_EQ(armed["run"], 1) << armed.dump();
  ASSERT_NO_FATAL_FAILURE(reboot());

  // The trial boot: ug-app fails, boot-check rolls back and reboots, which ends nspawn.
  auto trial_boot = BootedContainer::start(root_dir_, machine_name(), tmp_ / "console-trial.log", nspawn_args_);
  ASSERT_TRUE(trial_boot) << trial_boot.error().to_string();
  ASSERT_TRUE((*trial_boot)->wait_exit(std::chrono::seconds(180))) << (*trial_boot)->log();
  trial_boot->reset();
  EXPECT_FALSE(fs::exists(root_dir_ + "/etc/ug-upgraded"));

  ASSERT_NO_FATAL_FAILURE(boot("the restored root"));
  EXPECT_EQ(output({"systemctl", "is-active", "ug-app.service"}), "active");
  auto [exit_code, status] = trial_status({"--wait", "--timeout", "120"}, 150);
  EXPECT_EQ(exit_code, 3) << status.dump();
  EXPECT_EQ(status["state"], "rolled-back") << status.dump();
  EXPECT_EQ(status["settled"], true) << status.dump();
  EXPECT_EQ(status["trial"]["id"], 2) << status.dump();
  EXPECT_EQ(status["trial"]["state"], "blessed") << status.dump();
  EXPECT_EQ(status["run"], 1) << status.dump();
  auto human = box_->exec({"upgrade-guard", "boot-check", "--status"});
  EXPECT_EQ(human.exit_code, 3);
  EXPECT_EQ(human.out.rfind("trial boot: rolled-back (trial 2, run 1", 0), 0U) << human.out;
}

// A live rollback is only prepared; upgrade-guard-rollback-completion.service completes it when
// the system goes down, after the services stopped: what was written to the preserve paths
// between the rollback and the reboot is in the restored root.
TEST_F(BootCheckBootTest, ALiveRollbackCarriesWhatWasWrittenUntilTheShutdown) {
  ASSERT_NO_FATAL_FAILURE(prepare_a_live_rollback());
  // The rollback waits for the reboot: rolled-back already (exit 3, settled).
  auto [waiting_exit, waiting] = trial_status();
  EXPECT_EQ(waiting_exit, 3) << waiting.dump();
  EXPECT_EQ(waiting["state"], "rolled-back") << waiting.dump();
  EXPECT_EQ(waiting["settled"], true) << waiting.dump();
  // A new upgrade now would be thrown away at the reboot: refused.
  auto refused = box_->exec({"upgrade-guard", "run", "--", "/bin/true"}, 300);
  EXPECT_EQ(refused.exit_code, 4) << refused.out << refused.err;
  EXPECT_NE((refused.out + refused.err).find("reboot first"), std::string::npos) << refused.out << refused.err;
  // Written after the rollback, before the reboot, by a "service": must survive.
  auto wrote = box_->exec({"sh", "-c", "mkdir -p /srv/db && printf 'row 1\\nrow 2 after the rollback\\n' > /srv/db/table"});
  ASSERT_EQ(wrote.exit_code, 0) << wrote.err;
  auto start = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(reboot());
  std::printf("[ measure  ] shutdown with the rollback's completion: %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count()));

  // The same path names the restored root: the upgrade is gone, the late write is there.
  EXPECT_FALSE(fs::exists(root_dir_ + "/etc/ug-upgraded"));
  EXPECT_FALSE(fs::exists(root_dir_ + "/etc/ug-app-broken"));
  EXPECT_EQ(read_file(root_dir_ + "/srv/db/table"), "row 1\nrow 2 after the rollback\n");
  ASSERT_NO_FATAL_FAILURE(boot("after the rollback"));
  EXPECT_EQ(output({"systemctl", "is-active", "ug-app.service"}), "active");
  // The restored root's trial boot passed: still reported as the rollback it is (exit 3).
  auto [restored_exit, restored] = trial_status({"--wait", "--timeout", "120"}, 150);
  EXPECT_EQ(restored_exit, 3) << restored.dump();
  EXPECT_EQ(restored["state"], "rolled-back") << restored.dump();
  EXPECT_EQ(restored["trial"]["state"], "blessed") << restored.dump();
  EXPECT_EQ(restored["run"], 1) << restored.dump();
  // History says the run was rolled back.
  auto trial = box_->exec({"upgrade-guard", "--json", "history", "--run", "1"});
  EXPECT_NE(trial.out.find("rolled-back"), std::string::npos) << trial.out << trial.err;
}

// The machine loses power after a live rollback was prepared: no shutdown ran, so the next boot
// comes up on the old root, where the completion unit's ExecStart completes the rollback before
// local services start and reboots; the boot after that is the restored root, with what was
// written before the power loss.
TEST_F(BootCheckBootTest, ARollbackPreparedBeforeAPowerLossIsCompletedEarlyInTheNextBoot) {
  ASSERT_NO_FATAL_FAILURE(prepare_a_live_rollback());
  auto wrote = box_->exec({"sh", "-c", "mkdir -p /srv/db && echo 'row before the power loss' > /srv/db/table && sync"});
  ASSERT_EQ(wrote.exit_code, 0) << wrote.err;
  box_->kill_hard();
  box_.reset();
  EXPECT_TRUE(fs::exists(root_dir_ + "/etc/ug-upgraded")) << "no shutdown ran: nothing was exchanged";

  // The boot after the power loss completes the rollback and reboots by itself.
  auto start = std::chrono::steady_clock::now();
  auto early = BootedContainer::start(root_dir_, machine_name(), tmp_ / "console-after-power-loss.log", nspawn_args_);
  ASSERT_TRUE(early) << early.error().to_string();
  ASSERT_TRUE((*early)->wait_exit(std::chrono::seconds(180))) << "the boot after the power loss did not reboot:\n"
                                                              << (*early)->log();
  std::printf("[ measure  ] boot after the power loss, completion and reboot: %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count()));
  early->reset();

  EXPECT_FALSE(fs::exists(root_dir_ + "/etc/ug-upgraded"));
  EXPECT_EQ(read_file(root_dir_ + "/srv/db/table"), "row before the power loss\n");
  ASSERT_NO_FATAL_FAILURE(boot("the restored root"));
  EXPECT_EQ(output({"systemctl", "is-active", "ug-app.service"}), "active");
}

}  // namespace
}  // namespace guard::testing
