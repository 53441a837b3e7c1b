#include "guard/gate/enforcement.h"
#include "guard/gate/gate.h"
#include "guard/gate/gate_file.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "base/atomic_file.h"
#include "tests/common/test_env.h"

namespace guard::gate {
namespace {

using guard::testing::TempDir;

// Records what the gate asked the buses; the inhibitor is the write end of a pipe whose read
// end the test keeps, so EOF on it proves the inhibitor was released.
class FakeGateBus final : public GateBus {
 public:
  ~FakeGateBus() override {
    if (read_end_ >= 0) ::close(read_end_);
  }
  base::Result<void> reload_systemd() override {
    ++reloads;
    if (fail_reload) return base::fail("org.freedesktop.systemd1.Manager.Reload", "", "fake refusal");
    return {};
  }
  base::Result<base::UniqueFd> inhibit(const InhibitRequest& request) override {
    requests.push_back(request);
    if (fail_inhibit) return base::fail("org.freedesktop.login1.Manager.Inhibit", "", "no logind");
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return base::fail_errno("pipe2", "");
    read_end_ = fds[0];
    return base::UniqueFd(fds[1]);
  }
  // True once every copy of the inhibitor fd is closed (EOF); EAGAIN while it is held.
  bool inhibitor_released() const {
    char c;
    return read_end_ >= 0 && ::read(read_end_, &c, 1) == 0;
  }

  int reloads = 0;
  bool fail_reload = false;
  bool fail_inhibit = false;
  std::vector<InhibitRequest> requests;

 private:
  int read_end_ = -1;
};

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class RebootBlockTest : public ::testing::Test {
 protected:
  void SetUp() override { guard::testing::make_dirs(tmp_ / "run/systemd/system"); }
  base::Root root() {
    auto r = base::Root::open(tmp_.path());
    EXPECT_TRUE(r) << r.error().to_string();
    return std::move(*r);
  }
  std::string drop_in(const std::string& target) {
    return tmp_ / ("run/systemd/system/" + target + ".d/50-upgrade-guard.conf");
  }
  TempDir tmp_{"ug-gate"};
  FakeGateBus bus_;
};

TEST_F(RebootBlockTest, WritesADropInForEveryRebootTargetAndReloadsOnce) {
  auto outcome = apply_reboot_block(root(), "run 12: libssl3 broke sshd", &bus_);
  ASSERT_TRUE(outcome) << outcome.error().to_string();
  EXPECT_TRUE(outcome->enforced);
  EXPECT_EQ(bus_.reloads, 1);
  for (const char* target : {"reboot.target", "poweroff.target", "halt.target", "kexec.target", "soft-reboot.target"}) {
    std::string path = drop_in(target);
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    std::string text = guard::testing::read_file(path);
    EXPECT_NE(text.find("\n[Unit]\nRefuseManualStart=yes\n"), std::string::npos) << text;
    EXPECT_NE(text.find("# upgrade-guard: the reboot gate is closed: run 12: libssl3 broke sshd\n"), std::string::npos)
        << text;
    EXPECT_EQ(mode_of(path), 0644U);
    EXPECT_EQ(mode_of(std::string(std::filesystem::path(path).parent_path())), 0755U);
  }
}

TEST_F(RebootBlockTest, ContentEndsInTheUnitSectionAndKeepsTheReasonOnOneCommentLine) {
  std::string text = reboot_block_drop_in("line one\nRefuseManualStart=no\n");
  EXPECT_EQ(text.rfind("[Unit]\nRefuseManualStart=yes\n"),
            text.size() - std::string("[Unit]\nRefuseManualStart=yes\n").size());
  // The injected line stays inside the comment: the only line starting a key is ours.
  EXPECT_EQ(text.find("\nRefuseManualStart=no"), std::string::npos) << text;
  EXPECT_NE(text.find("# upgrade-guard: the reboot gate is closed: line one RefuseManualStart=no\n"), std::string::npos)
      << text;
}

TEST_F(RebootBlockTest, ApplyingTwiceRewritesInPlace) {
  ASSERT_TRUE(apply_reboot_block(root(), "first", &bus_));
  ASSERT_TRUE(apply_reboot_block(root(), "second", &bus_));
  EXPECT_NE(guard::testing::read_file(drop_in("reboot.target")).find("second"), std::string::npos);
  // No temporary files left beside the drop-in.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp_ / "run/systemd/system/reboot.target.d")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(RebootBlockTest, RemoveDeletesTheDropInsAndTheirEmptyDirectoriesAndReloads) {
  ASSERT_TRUE(apply_reboot_block(root(), "x", &bus_));
  auto outcome = remove_reboot_block(root(), &bus_);
  ASSERT_TRUE(outcome) << outcome.error().to_string();
  EXPECT_TRUE(outcome->enforced);
  EXPECT_EQ(bus_.reloads, 2);
  for (const auto& target : reboot_block_targets()) {
    EXPECT_FALSE(std::filesystem::exists(tmp_ / ("run/systemd/system/" + target + ".d"))) << target;
  }
}

TEST_F(RebootBlockTest, RemoveKeepsOtherDropInsInTheSameDirectory) {
  ASSERT_TRUE(apply_reboot_block(root(), "x", &bus_));
  guard::testing::write_file(tmp_ / "run/systemd/system/reboot.target.d/10-admin.conf", "[Unit]\n");
  ASSERT_TRUE(remove_reboot_block(root(), &bus_));
  EXPECT_FALSE(std::filesystem::exists(drop_in("reboot.target")));
  EXPECT_TRUE(std::filesystem::exists(tmp_ / "run/systemd/system/reboot.target.d/10-admin.conf"));
}

TEST_F(RebootBlockTest, RemoveWithNothingInstalledDoesNotReload) {
  auto outcome = remove_reboot_block(root(), &bus_);
  ASSERT_TRUE(outcome) << outcome.error().to_string();
  EXPECT_EQ(bus_.reloads, 0);
  EXPECT_EQ(outcome->note, "no reboot block was installed");
}

TEST_F(RebootBlockTest, NullBusWritesWithoutReloading) {
  auto outcome = apply_reboot_block(root(), "x", nullptr);
  ASSERT_TRUE(outcome) << outcome.error().to_string();
  EXPECT_TRUE(outcome->enforced);
  EXPECT_TRUE(std::filesystem::exists(drop_in("halt.target")));
  EXPECT_NE(outcome->note.find("not asked to reload"), std::string::npos) << outcome->note;
}

TEST_F(RebootBlockTest, AFailedReloadIsAnErrorNamingTheCall) {
  bus_.fail_reload = true;
  auto outcome = apply_reboot_block(root(), "x", &bus_);
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().what, "org.freedesktop.systemd1.Manager.Reload");
}

TEST_F(RebootBlockTest, ADropInDirectoryThatIsASymlinkIsRefused) {
  // A link planted in /run must not make the guard write elsewhere.
  guard::testing::make_dirs(tmp_ / "elsewhere");
  guard::testing::make_symlink("/elsewhere", tmp_ / "run/systemd/system/reboot.target.d");
  auto outcome = apply_reboot_block(root(), "x", &bus_);
  ASSERT_FALSE(outcome);
  EXPECT_TRUE(outcome.error().err == ENOTDIR || outcome.error().err == ELOOP) << outcome.error().to_string();
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "elsewhere/50-upgrade-guard.conf"));
  EXPECT_EQ(bus_.reloads, 0);
}

TEST(RebootBlockNoSystemdTest, WithoutSystemdBothAreNoOpsThatSaySo) {
  TempDir tmp("ug-gate");
  guard::testing::make_dirs(tmp / "run");  // /run exists, /run/systemd/system does not
  auto root = base::Root::open(tmp.path());
  ASSERT_TRUE(root);
  FakeGateBus bus;
  auto applied = apply_reboot_block(*root, "x", &bus);
  ASSERT_TRUE(applied) << applied.error().to_string();
  EXPECT_FALSE(applied->enforced);
  EXPECT_EQ(applied->note,
            "no systemd is running (/run/systemd/system is missing): the reboot block was not installed");
  auto removed = remove_reboot_block(*root, &bus);
  ASSERT_TRUE(removed) << removed.error().to_string();
  EXPECT_FALSE(removed->enforced);
  EXPECT_EQ(bus.reloads, 0);
  EXPECT_FALSE(std::filesystem::exists(tmp / "run/systemd"));
}

TEST(GateFileTest, Parses) {
  EXPECT_FALSE(parse_gate_file("").closed);
  EXPECT_FALSE(parse_gate_file("open\n").closed);
  auto closed = parse_gate_file("closed\nreason=run 12 failed its checks\nrun=12\n");
  EXPECT_TRUE(closed.closed);
  EXPECT_EQ(closed.reason, "run 12 failed its checks");
  EXPECT_TRUE(parse_gate_file("closed").closed);
  EXPECT_TRUE(parse_gate_file("  closed  \r\n").closed);
  // A damaged file errs on the safe side.
  EXPECT_TRUE(parse_gate_file("\x01garbage\n").closed);
}

// Found by tests/fuzz/gate_file.cc: a blank first line made any file open, whatever followed.
TEST(GateFileTest, ABlankFirstLineBeforeContentIsClosed) {
  EXPECT_TRUE(parse_gate_file("\nclosed\nreason=run 12 failed its checks\nrun=12\n").closed);
  EXPECT_TRUE(parse_gate_file(std::string_view("\nreason=\0\0\0\0\xfb\xff\xff\xff", 16)).closed);
  EXPECT_TRUE(parse_gate_file(" \r\n\x01").closed);
  EXPECT_FALSE(parse_gate_file(" \n\r\n").closed);  // no content at all: as a missing file
}

TEST(GateFileTest, AMissingFileIsOpen) {
  TempDir tmp("ug-gate");
  auto gate = read_gate_file(tmp / "gate");
  ASSERT_TRUE(gate) << gate.error().to_string();
  EXPECT_FALSE(gate->closed);
}

class HoldTest : public ::testing::Test {
 protected:
  HoldUntil until_gate_opens() {
    HoldUntil until;
    until.watch_dir = tmp_.path();
    until.recheck = std::chrono::seconds(30);  // long: the inotify wake-up must do the work
    std::string path = tmp_ / "gate";
    until.released = [path] {
      auto g = read_gate_file(path);
      return g && !g->closed;
    };
    return until;
  }
  TempDir tmp_{"ug-hold"};
  FakeGateBus bus_;
};

TEST_F(HoldTest, HoldsUntilTheGateFileSaysOpenThenReleases) {
  ASSERT_TRUE(base::write_file_atomic(tmp_ / "gate", "closed\nreason=test\n"));
  std::atomic<bool> held_while_closed{false};
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    held_while_closed = !bus_.inhibitor_released();
    (void)base::write_file_atomic(tmp_ / "gate", "open\n");
  });
  InhibitRequest request;
  request.why = "the reboot gate is closed: test";
  auto start = std::chrono::steady_clock::now();
  auto ended = hold_inhibitor(bus_, request, until_gate_opens());
  auto waited = std::chrono::steady_clock::now() - start;
  opener.join();
  ASSERT_TRUE(ended) << ended.error().to_string();
  EXPECT_EQ(*ended, HoldEnd::released);
  EXPECT_TRUE(held_while_closed);
  EXPECT_TRUE(bus_.inhibitor_released());
  EXPECT_LT(waited, std::chrono::seconds(10));  // woken by inotify, not the 30 s recheck
  ASSERT_EQ(bus_.requests.size(), 1U);
  EXPECT_EQ(bus_.requests[0].what, "shutdown:sleep");
  EXPECT_EQ(bus_.requests[0].who, "upgrade-guard");
  EXPECT_EQ(bus_.requests[0].mode, "block");
  EXPECT_EQ(bus_.requests[0].why, "the reboot gate is closed: test");
}

TEST_F(HoldTest, ASignalEndsTheHoldAndRestoresTheSignalMask) {
  ASSERT_TRUE(base::write_file_atomic(tmp_ / "gate", "closed\n"));
  pthread_t self = ::pthread_self();
  std::thread stopper([self] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::pthread_kill(self, SIGTERM);  // blocked in that thread: queued for its signalfd
  });
  auto ended = hold_inhibitor(bus_, InhibitRequest{}, until_gate_opens());
  stopper.join();
  ASSERT_TRUE(ended) << ended.error().to_string();
  EXPECT_EQ(*ended, HoldEnd::signalled);
  EXPECT_TRUE(bus_.inhibitor_released());
  sigset_t now;
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, nullptr, &now), 0);
  EXPECT_EQ(::sigismember(&now, SIGTERM), 0);
}

TEST_F(HoldTest, AGateAlreadyOpenReleasesAtOnce) {
  ASSERT_TRUE(base::write_file_atomic(tmp_ / "gate", "open\n"));
  auto ended = hold_inhibitor(bus_, InhibitRequest{}, until_gate_opens());
  ASSERT_TRUE(ended);
  EXPECT_EQ(*ended, HoldEnd::released);
  EXPECT_TRUE(bus_.inhibitor_released());
}

TEST_F(HoldTest, NoInhibitorIsAnError) {
  bus_.fail_inhibit = true;
  auto ended = hold_inhibitor(bus_, InhibitRequest{}, until_gate_opens());
  ASSERT_FALSE(ended);
  EXPECT_EQ(ended.error().what, "org.freedesktop.login1.Manager.Inhibit");
}

TEST(GateHoldCliTest, AnOpenGateHasNothingToHold) {
  TempDir tmp("ug-hold");
  auto r = guard::testing::run_guard({"gate", "hold", "--state-dir", tmp.path()}, 30);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("the reboot gate is open"), std::string::npos) << r.out;
}

TEST(GateHoldCliTest, HoldIsHiddenFromTheGateHelp) {
  auto r = guard::testing::run_guard({"gate", "--help"}, 30);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("status"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("hold"), std::string::npos) << r.out;
}

TEST(InhibitorWhy, SaysTheRebootIsRefusedEvenIfTheCommandExitsZeroAndHowToAsk) {
  const std::string why = gate::inhibitor_why("run 12 found 3 blocking\nfindings");
  EXPECT_NE(why.find("REBOOT REFUSED by upgrade-guard"), std::string::npos);
  EXPECT_NE(why.find("(run 12 found 3 blocking findings)"), std::string::npos);  // one line
  EXPECT_NE(why.find("even if this command exits 0"), std::string::npos);
  EXPECT_NE(why.find("`upgrade-guard gate status`"), std::string::npos);
  EXPECT_EQ(why.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace guard::gate
