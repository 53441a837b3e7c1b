// Fault injection: the disk fills up at each phase of `upgrade-guard run` on a small btrfs
// image (448 MiB holding a copy of the cached minbase root), with the state directory on
// that image (as the default /var/lib/upgrade-guard is on the root's filesystem) and
// elsewhere; and a read-only state directory. Whatever fails, the guard ends with an exit
// code and a message naming the cause, never a signal; the root is the pre-upgrade or the
// rolled-back one once `recover` has run; and `gate status` never says open while the root
// holds the unchecked upgrade.
//
// Every run's command marks the root as upgraded-and-broken (/ug-broken), and a custom check
// fails on that mark: a run that gets to its verdict rolls back. The disk is filled at a given
// moment by stopping the guard under gdb at the function that starts the phase and filling
// the image from the test (no test hook in the program), or by the command itself.
#include <sys/mount.h>
#include <csignal>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "guard/state/store.h"
#include "tests/system/guarded_root.h"

namespace guard {
namespace {

using guard::testing::GuardedRoot;
using guard::testing::slurp;

constexpr std::uint64_t kImageSize = 448ULL << 20;

// What one upgrade-guard invocation did: its exit code, or the signal that killed it.
struct Ended {
  int exit_code = -1;
  int signal = 0;          // 0: it exited
  std::string output;      // stdout and stderr
};

class FaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root: loop devices, btrfs, chroot");
    root_ = std::make_unique<GuardedRoot>(dir_, "minbase", kImageSize);
    ASSERT_TRUE(root_->ok()) << root_->error();
    policy_ = dir_ / "policy.toml";
    guard::testing::write_file(policy_,
                               "[preflight]\nmin_free_root = \"1MiB\"\n\n[snapshot]\nmin_free = \"1MiB\"\n\n"
                               "[[custom]]\nname = \"not-broken\"\n"
                               "command = [\"/bin/sh\", \"-c\", \"test ! -e /ug-broken\"]\n",
                               0644);
  }

  void TearDown() override {
    if (bound_) ::umount2(state_.c_str(), MNT_DETACH);
  }

  // Where the state and the log go: a directory on the image beside the root (outside the
  // subvolume that is snapshotted and rolled back), or the test's temp dir on another filesystem.
  void place_state(bool on_image) {
    state_ = on_image ? root_->top() + "/state" : root_->state_dir();
    log_ = on_image ? root_->top() + "/log" : root_->log_dir();
    guard::testing::make_dirs(state_, 0700);
    guard::testing::make_dirs(log_, 0750);
  }

  [[nodiscard]] std::vector<std::string> argv(const std::vector<std::string>& args) const {
    std::vector<std::string> all{guard::testing::binary(), "--root",  root_->root(), "--state-dir", state_,
                                 "--log-dir",              log_,      "--run-dir",   dir_ / "run",  "--policy",
                                 policy_};
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }

  Ended guard(const std::vector<std::string>& args) {
    auto r = guard::testing::run(argv(args), 600, {{"DEBIAN_FRONTEND", "noninteractive"}});
    EXPECT_FALSE(r.timed_out) << r.out << r.err;
    return {r.exit_code, r.signal, r.out + r.err};
  }

  // Runs the guard under gdb, stops it when it first enters `function`, fills the image there
  // and lets it go on: the disk is full from exactly that moment.
  Ended guard_filling_at(const std::string& function, const std::vector<std::string>& args) {
    std::string fill = "dd if=/dev/zero of=" + filler() + " bs=1M status=none; sync";
    std::vector<std::string> gdb{"gdb",  "-q",    "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
                                 "-ex",  "break " + function, "-ex", "run", "-ex", "shell " + fill, "-ex",
                                 "continue", "--args"};
    auto all = argv(args);
    gdb.insert(gdb.end(), all.begin(), all.end());
    auto r = guard::testing::run(gdb, 900, {{"DEBIAN_FRONTEND", "noninteractive"}});
    EXPECT_FALSE(r.timed_out) << r.out << r.err;
    Ended e;
    e.output = r.out + r.err;
    EXPECT_NE(e.output.find("Breakpoint 1, "), std::string::npos) << "the guard never reached " << function << ":\n"
                                                                    << e.output;
    if (auto at = e.output.find("received signal SIG"); at != std::string::npos) {
      std::string name = e.output.substr(at + 16, e.output.find_first_of(" ,\n", at + 16) - at - 16);
      e.signal = name == "SIGBUS" ? SIGBUS : name == "SIGSEGV" ? SIGSEGV : name == "SIGABRT" ? SIGABRT : -1;
      e.exit_code = -1;
    } else if (e.output.find("exited normally]") != std::string::npos) {
      e.exit_code = 0;
    } else if (auto code = e.output.find("exited with code "); code != std::string::npos) {
      e.exit_code = static_cast<int>(std::stoi(e.output.substr(code + 17, 3), nullptr, 8));  // gdb prints octal
    }
    return e;
  }

  // The file that fills the image: at its top level, neither in the root nor in the state.
  [[nodiscard]] std::string filler() const { return root_->top() + "/ug-fill"; }

  void fill_now() {
    auto r = guard::testing::run({"/bin/sh", "-c", "dd if=/dev/zero of=" + filler() + " bs=1M status=none; sync"});
    (void)r;  // dd fails with ENOSPC: that is the point
  }

  // Frees the space the test or the command took.
  void free_space() {
    std::error_code ec;
    std::filesystem::remove(filler(), ec);
    std::filesystem::remove(root_->path("/var/tmp/ug-fill"), ec);
    (void)guard::testing::run({"btrfs", "filesystem", "sync", root_->top()});
  }

  [[nodiscard]] bool broken() const { return std::filesystem::exists(root_->path("/ug-broken")); }

  // `gate status`: not killed, and closed whenever the root holds the unchecked or broken upgrade.
  Ended expect_gate_safe(const std::string& when) {
    Ended g = guard({"gate", "status"});
    EXPECT_EQ(g.signal, 0) << when << ": " << g.output;
    if (broken()) {
      EXPECT_NE(g.exit_code, 0) << when << ": the root holds the upgrade, the gate must not read open:\n" << g.output;
      EXPECT_EQ(g.output.find("gate open:"), std::string::npos) << when << ": " << g.output;
    }
    return g;
  }

  // The fault's run ended by itself (no signal) with the full disk named, the gate safe;
  // then, with space again, `recover` finishes what is left: the root is the pre-upgrade or
  // the rolled-back one and the gate reads open.
  void expect_safe_outcome(const Ended& run, bool nothing_changed) {
    EXPECT_EQ(run.signal, 0) << "the guard was killed by a signal:\n" << run.output;
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_NE(run.exit_code, -1) << run.output;
    if (run.exit_code != kExitRolledBack) {
      EXPECT_TRUE(run.output.find("No space left on device") != std::string::npos ||
                  run.output.find("disk is full") != std::string::npos ||
                  run.output.find("free on the root") != std::string::npos)
          << "the message does not say the disk is full:\n" << run.output;
    }
    if (nothing_changed) {
      EXPECT_FALSE(broken()) << "the root was changed although the run stopped before";
    }
    expect_gate_safe("after the run, disk still full");

    free_space();
    Ended rec = guard({"recover"});
    EXPECT_EQ(rec.signal, 0) << rec.output;
    EXPECT_TRUE(rec.exit_code == 0 || rec.exit_code == kExitRolledBack) << rec.exit_code << "\n" << rec.output;
    EXPECT_FALSE(broken()) << "after recover the root must be the pre-upgrade or the rolled-back one:\n"
                           << run.output << "\n---- recover:\n" << rec.output;
    Ended g = expect_gate_safe("after recover");
    EXPECT_EQ(g.exit_code, 0) << "the rolled-back root is known good:\n" << g.output;
    Ended again = guard({"recover"});
    EXPECT_NE(again.output.find("nothing to recover"), std::string::npos) << again.output;
  }

  static constexpr int kExitRolledBack = 3;
  const std::vector<std::string> kUpgrade{"run", "--", "/bin/sh", "-c", "touch /ug-broken"};
  // The command itself fills the disk (as a dpkg unpacking a big payload would), then exits 0.
  const std::vector<std::string> kFillingUpgrade{
      "run", "--", "/bin/sh", "-c", "touch /ug-broken; dd if=/dev/zero of=/var/tmp/ug-fill bs=1M status=none; true"};

  guard::testing::TempDir dir_{"ug-faults"};
  std::unique_ptr<GuardedRoot> root_;
  std::string policy_;
  std::string state_;
  std::string log_;
  bool bound_ = false;
};

// ---- the state directory on the root's filesystem ------------------------------------------

TEST_F(FaultsTest, DiskFullBeforeTheSnapshotStateOnImage) {
  place_state(true);
  expect_safe_outcome(guard_filling_at("guard::run::Run::take_snapshot", kUpgrade), true);
}

TEST_F(FaultsTest, DiskFullDuringTheCommandStateOnImage) {
  place_state(true);
  expect_safe_outcome(guard(kFillingUpgrade), false);
}

TEST_F(FaultsTest, DiskFullDuringThePostChecksStateOnImage) {
  place_state(true);
  expect_safe_outcome(guard_filling_at("guard::run::Run::post_checks", kUpgrade), false);
}

TEST_F(FaultsTest, DiskFullDuringTheRollbackStateOnImage) {
  place_state(true);
  expect_safe_outcome(guard_filling_at("guard::roll_back", kUpgrade), false);
}

// ---- the state directory elsewhere ---------------------------------------------------------

TEST_F(FaultsTest, DiskFullBeforeTheSnapshotStateElsewhere) {
  place_state(false);
  expect_safe_outcome(guard_filling_at("guard::run::Run::take_snapshot", kUpgrade), true);
}

TEST_F(FaultsTest, DiskFullDuringTheCommandStateElsewhere) {
  place_state(false);
  expect_safe_outcome(guard(kFillingUpgrade), false);
}

TEST_F(FaultsTest, DiskFullDuringThePostChecksStateElsewhere) {
  place_state(false);
  expect_safe_outcome(guard_filling_at("guard::run::Run::post_checks", kUpgrade), false);
}

TEST_F(FaultsTest, DiskFullDuringTheRollbackStateElsewhere) {
  place_state(false);
  expect_safe_outcome(guard_filling_at("guard::roll_back", kUpgrade), false);
}

// A disk full before `run` starts: refused by the preflight (or by the state database), nothing
// changed, and the gate reads what it was.
TEST_F(FaultsTest, DiskAlreadyFullIsRefusedStateOnImage) {
  place_state(true);
  ASSERT_TRUE(guard::state::StateStore::open(state_).has_value());
  fill_now();
  Ended r = guard(kUpgrade);
  EXPECT_EQ(r.signal, 0) << r.output;
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_TRUE(r.output.find("free on the root") != std::string::npos ||
              r.output.find("disk is full") != std::string::npos)
      << r.output;
  EXPECT_FALSE(broken());
  EXPECT_EQ(expect_gate_safe("disk full").exit_code, 0);
}

// ---- a read-only state directory -----------------------------------------------------------

TEST_F(FaultsTest, ReadOnlyStateDirectoryIsRefusedBeforeAnyChange) {
  place_state(false);
  ASSERT_TRUE(guard::state::StateStore::open(state_).has_value());
  ASSERT_EQ(::mount(state_.c_str(), state_.c_str(), nullptr, MS_BIND, nullptr), 0);
  bound_ = true;
  ASSERT_EQ(::mount(nullptr, state_.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr), 0);
  Ended r = guard(kUpgrade);
  EXPECT_EQ(r.signal, 0) << r.output;
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find(state_), std::string::npos) << "the message names the state directory:\n" << r.output;
  EXPECT_NE(r.output.find("ead-only"), std::string::npos) << r.output;
  EXPECT_FALSE(broken()) << "the command ran";
  std::error_code ec;
  EXPECT_FALSE(std::filesystem::exists(root_->top() + "/@upgrade-guard", ec) &&
               !std::filesystem::is_empty(root_->top() + "/@upgrade-guard", ec))
      << "a snapshot was taken";
  // Nothing changed: the gate is what it was, and reading it needs no write.
  Ended g = expect_gate_safe("read-only state");
  EXPECT_EQ(g.exit_code, 0) << g.output;
}

}  // namespace
}  // namespace guard
