// apt hook mode end to end: /etc/apt/apt.conf.d/80upgrade-guard in a real debootstrapped
// Debian 12 root on btrfs, with the built binary installed in it, and plain apt-get runs
// chrooted into it, as an administrator (or unattended-upgrades) would run them.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/system/guarded_root.h"

namespace guard {
namespace {

using guard::testing::slurp;

constexpr const char* kLibDir = "/usr/lib/x86_64-linux-gnu";

class HookTest : public guard::testing::GuardedRootTest {
 protected:
  void SetUp() override {
    GuardedRootTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // A library and a tool that needs it, installed before the guard is; the breaking
    // upgrade drops the library, the harmless one adds a document.
    install_ugdemo();
    broken_ = ugdemo_breaking_upgrade();
    harmless_ = deb_in_root({"ugdemo-doc", "1.1", "", {{"/usr/share/doc/ugdemo-doc/README", {"hi\n", 0644}}}, "", ""});
  }

  // Installs the binary and the apt hook as the packaging installs them for a /usr build.
  void install_hook() {
    auto installed = guard::testing::install_guard_into(root_->root());
    ASSERT_TRUE(installed) << installed.error().to_string();
    std::string conf = slurp(std::string(UG_SOURCE_DIR) + "/packaging/apt/80upgrade-guard.in");
    ASSERT_FALSE(conf.empty());
    for (auto at = conf.find("@UG_SBINDIR@"); at != std::string::npos; at = conf.find("@UG_SBINDIR@"))
      conf.replace(at, 12, "/usr/sbin");
    guard::testing::write_file(root_->path("/etc/apt/apt.conf.d/80upgrade-guard"), conf);
  }

  // Takes dpkg's lock-frontend in the root as apt does for its whole run; returns the fd.
  int hold_frontend_lock() {
    int fd = ::open(root_->path("/var/lib/dpkg/lock-frontend").c_str(), O_RDWR | O_CREAT, 0640);
    EXPECT_GE(fd, 0);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    EXPECT_EQ(::fcntl(fd, F_SETLK, &fl), 0);
    return fd;
  }

  // The guard run inside the root, e.g. inside({"gate", "status"}).
  base::ProcessResult inside(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/sbin/upgrade-guard");
    return root_->chroot(args, 300);
  }

  // The host's guard on the root, with extra environment.
  base::ProcessResult host_guard(const std::vector<std::string>& args, std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv{guard::testing::binary()};
    auto all = root_->guard_args(args);
    argv.insert(argv.end(), all.begin(), all.end());
    return guard::testing::run(argv, 600, env);
  }

  nlohmann::json history(base::ProcessResult r) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    try {
      return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON: " << e.what();
      return {};
    }
  }

  std::string broken_;
  std::string harmless_;
};

// The issue's case: a plain `apt-get install ./broken.deb` with the hook configured.
TEST_F(HookTest, PlainAptInstallOfABrokenPackageClosesTheGate) {
  install_hook();
  ASSERT_FALSE(HasFailure());
  auto gate = inside({"gate", "status"});
  ASSERT_EQ(gate.exit_code, 0) << gate.out << gate.err;

  auto apt = root_->chroot({"apt-get", "install", "-y", broken_});
  // The post-invoke hook failed apt, so `apt-get ... && reboot` would not reboot.
  EXPECT_EQ(apt.exit_code, 100) << apt.out << apt.err;
  std::string said = apt.out + apt.err;
  EXPECT_NE(said.find("reboot gate closed"), std::string::npos) << said;
  EXPECT_NE(said.find("/usr/bin/ugdemo-tool"), std::string::npos) << said;
  if (std::getenv("UG_TEST_SHOW") != nullptr) std::printf("%s\n", said.c_str());

  gate = inside({"gate", "status"});
  EXPECT_EQ(gate.exit_code, 1) << gate.out << gate.err;
  EXPECT_NE(gate.out.find("run 1"), std::string::npos) << gate.out;

  auto runs = history(inside({"--json", "history"}));
  ASSERT_EQ(runs["runs"].size(), 1u) << runs.dump(2);
  const auto& run = runs["runs"][0];
  EXPECT_EQ(run["outcome"], "gated");
  // The run is named after the apt command line (argv[0] as apt was started).
  ASSERT_EQ(run["command"].size(), 4u) << run.dump(2);
  EXPECT_NE(run["command"][0].get<std::string>().find("apt-get"), std::string::npos);
  EXPECT_EQ(run["command"][3], broken_);
  // No rollback from inside apt by default: the upgrade stays, the gate holds the reboot.
  EXPECT_EQ(slurp(root_->path(std::string(kLibDir) + "/libugdemo.so.1")), "");
}

TEST_F(HookTest, PlainAptInstallThatIsHealthyPassesQuietly) {
  install_hook();
  ASSERT_FALSE(HasFailure());
  auto apt = root_->chroot({"apt-get", "install", "-y", harmless_});
  EXPECT_EQ(apt.exit_code, 0) << apt.out << apt.err;
  EXPECT_EQ(inside({"gate", "status"}).exit_code, 0);
  auto runs = history(inside({"--json", "history"}));
  ASSERT_EQ(runs["runs"].size(), 1u) << runs.dump(2);
  EXPECT_EQ(runs["runs"][0]["outcome"], "passed");
}

// unattended-upgrades invokes dpkg several times from one process: the test process plays
// apt (it holds dpkg's lock-frontend, as apt does, and dpkg runs with DPKG_FRONTEND_LOCKED).
// One run, one snapshot; the second step's regression closes the gate for that run.
TEST_F(HookTest, RepeatedDpkgInvocationsOfOneAptProcessAreOneRun) {
  int fd = hold_frontend_lock();
  auto dpkg_install = [&](const std::string& deb) {
    auto r = root_->chroot({"env", "DPKG_FRONTEND_LOCKED=1", "dpkg", "-i", deb});
    EXPECT_TRUE(r.ok()) << r.out << r.err;
  };

  auto pre = host_guard({"hook", "pre"});
  EXPECT_EQ(pre.exit_code, 0) << pre.err;
  EXPECT_NE(pre.err.find("run 1: snapshot"), std::string::npos) << pre.err;
  dpkg_install(harmless_);
  auto post = host_guard({"hook", "post"});
  EXPECT_EQ(post.exit_code, 0) << post.err;

  pre = host_guard({"hook", "pre"});
  EXPECT_EQ(pre.exit_code, 0) << pre.err;
  EXPECT_NE(pre.err.find("run 1 continues"), std::string::npos) << pre.err;
  dpkg_install(broken_);
  post = host_guard({"hook", "post"});
  EXPECT_EQ(post.exit_code, 1) << post.err;
  EXPECT_NE(post.err.find("libugdemo.so.1"), std::string::npos) << post.err;
  ::close(fd);

  EXPECT_EQ(host_guard({"gate", "status"}).exit_code, 1);
  auto runs = history(host_guard({"--json", "history"}));
  ASSERT_EQ(runs["runs"].size(), 1u) << runs.dump(2);
  EXPECT_EQ(runs["runs"][0]["outcome"], "gated");
  auto snaps = history(host_guard({"--json", "snapshot", "list"}));
  ASSERT_EQ(snaps["snapshots"].size(), 1u) << snaps.dump(2);

  // Inside `upgrade-guard run` the hooks stand aside, and a post hook without a pre hook
  // says that nothing was checked but never fails apt.
  auto nested = host_guard({"hook", "pre"}, {{"UPGRADE_GUARD_RUN", "7"}});
  EXPECT_EQ(nested.exit_code, 0);
  EXPECT_EQ(nested.err, "");
  // A post hook without a pre hook (the package's own installation: apt read its configuration
  // before the hook existed) is quiet; -v says that nothing was checked. It never fails apt.
  auto orphan = host_guard({"hook", "post"});
  EXPECT_EQ(orphan.exit_code, 0) << orphan.err;
  EXPECT_EQ(orphan.err, "");
  auto orphan_verbose = host_guard({"-v", "hook", "post"});
  EXPECT_EQ(orphan_verbose.exit_code, 0) << orphan_verbose.err;
  EXPECT_NE(orphan_verbose.err.find("NOT checked"), std::string::npos) << orphan_verbose.err;
  EXPECT_EQ(history(host_guard({"--json", "history"}))["runs"].size(), 1u);
}

// A policy may ask for the rollback from inside apt: with --root it takes effect at once.
TEST_F(HookTest, HookPolicyRollbackRestoresTheRoot) {
  std::string policy = dir_ / "policy.toml";
  guard::testing::write_file(policy, "[hook]\non_fail = \"rollback\"\n", 0644);
  std::string status_before = slurp(root_->path("/var/lib/dpkg/status"));
  int fd = hold_frontend_lock();
  EXPECT_EQ(host_guard({"--policy", policy, "hook", "pre"}).exit_code, 0);
  auto r = root_->chroot({"env", "DPKG_FRONTEND_LOCKED=1", "dpkg", "-i", broken_});
  EXPECT_TRUE(r.ok()) << r.out << r.err;
  auto post = host_guard({"--policy", policy, "hook", "post"});
  ::close(fd);
  EXPECT_EQ(post.exit_code, 1) << post.err;
  EXPECT_NE(post.err.find("rolled back"), std::string::npos) << post.err;
  EXPECT_EQ(slurp(root_->path("/var/lib/dpkg/status")), status_before);
  EXPECT_NE(slurp(root_->path(std::string(kLibDir) + "/libugdemo.so.1")), "");
}

// Hook mode off without touching the conffile: for one apt run (UPGRADE_GUARD_HOOK=off), or
// by policy (hook.enabled = false). apt runs unguarded and nothing is recorded.
TEST_F(HookTest, HookModeTurnsOffByEnvironmentOrPolicy) {
  install_hook();
  ASSERT_FALSE(HasFailure());
  auto off = root_->chroot({"env", "UPGRADE_GUARD_HOOK=off", "apt-get", "install", "-y", broken_});
  EXPECT_EQ(off.exit_code, 0) << off.out << off.err;
  EXPECT_EQ((off.out + off.err).find("upgrade-guard"), std::string::npos) << off.out << off.err;
  EXPECT_EQ(history(inside({"--json", "history"}))["runs"].size(), 0u);
  EXPECT_EQ(inside({"gate", "status"}).exit_code, 0);

  guard::testing::write_file(root_->path("/etc/upgrade-guard/policy.toml"), "[hook]\nenabled = false\n", 0644);
  auto disabled = root_->chroot({"apt-get", "install", "-y", harmless_});
  EXPECT_EQ(disabled.exit_code, 0) << disabled.out << disabled.err;
  EXPECT_EQ((disabled.out + disabled.err).find("upgrade-guard"), std::string::npos) << disabled.err;
  EXPECT_EQ(history(inside({"--json", "history"}))["runs"].size(), 0u);

  guard::testing::write_file(root_->path("/etc/upgrade-guard/policy.toml"), "[hook]\nenabled = true\n", 0644);
  auto on = root_->chroot({"apt-get", "install", "-y", "--reinstall", harmless_});
  EXPECT_EQ(on.exit_code, 0) << on.out << on.err;
  EXPECT_EQ(history(inside({"--json", "history"}))["runs"].size(), 1u);

  // A guard that cannot even start (a library it needs broken) never makes apt unusable: apt
  // says this run is not guarded and goes on; UPGRADE_GUARD_HOOK=off silences it.
  const std::string sbin = root_->path("/usr/sbin/upgrade-guard");
  std::filesystem::rename(sbin, sbin + ".real");
  guard::testing::write_file(sbin, "#!/bin/sh\necho 'error while loading shared libraries' >&2\nexit 127\n", 0755);
  auto crashed = root_->chroot({"apt-get", "install", "-y", "--reinstall", harmless_});
  EXPECT_EQ(crashed.exit_code, 0) << crashed.out << crashed.err;
  EXPECT_NE((crashed.out + crashed.err).find("hook post failed with status 127: this apt run is NOT guarded"),
            std::string::npos)
      << crashed.out << crashed.err;
  auto silenced = root_->chroot({"env", "UPGRADE_GUARD_HOOK=off", "apt-get", "install", "-y", "--reinstall", harmless_});
  EXPECT_EQ(silenced.exit_code, 0) << silenced.out << silenced.err;
  EXPECT_EQ((silenced.out + silenced.err).find("upgrade-guard"), std::string::npos) << silenced.err;
  std::filesystem::rename(sbin + ".real", sbin);
}

// The package's prerm on removal: the run the removing apt's pre hook opened ends (recorded
// interrupted: its post hook will not exist any more) and the session goes.
TEST_F(HookTest, HookReleaseEndsTheRunThisAptOpened) {
  int fd = hold_frontend_lock();
  auto pre = host_guard({"hook", "pre"});
  ASSERT_EQ(pre.exit_code, 0) << pre.err;
  auto release = host_guard({"hook", "release"});
  ::close(fd);
  EXPECT_EQ(release.exit_code, 0) << release.err;
  EXPECT_NE(release.err.find("run 1 ends unchecked"), std::string::npos) << release.err;
  EXPECT_NE(release.err.find("released"), std::string::npos) << release.err;
  auto runs = history(host_guard({"--json", "history"}));
  ASSERT_EQ(runs["runs"].size(), 1u) << runs.dump(2);
  EXPECT_EQ(runs["runs"][0]["outcome"], "interrupted");
  EXPECT_FALSE(std::filesystem::exists(root_->state_dir() + "/../run/hook-session"));
  // Nothing is left to block the next guard.
  EXPECT_EQ(host_guard({"gate", "status"}).exit_code, 0);
  auto next = host_guard({"--json", "history"});
  EXPECT_EQ(next.err.find("unfinished"), std::string::npos) << next.err;
}

}  // namespace
}  // namespace guard
