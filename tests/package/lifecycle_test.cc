// The Debian package's life in a fresh debootstrapped Debian 12 root on btrfs, driven with
// apt-get chrooted into it as an administrator would: install from the .deb (its runtime
// libraries fetched by apt from the archive, as ${shlibs:Depends} names them), a guarded
// install of a breaking package through the installed apt hook, remove with the gate closed and
// the remove's own hook run open, purge; and an upgrade from the previous build while that
// build's hook run is open (old pre, new post, the state database migrated). Plus lintian on the
// built .deb. The packages come from scripts/test-packages (run by scripts/test beforehand).
#include <algorithm>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/system/guarded_root.h"

namespace guard {
namespace {

namespace fs = std::filesystem;
using guard::testing::slurp;
using guard::testing::write_file;

struct Packages {
  std::string current;   // this checkout's .deb
  std::string previous;  // the previous build's .deb
};

// Built (or found up to date) by scripts/test-packages; "" with a test failure when it fails.
Packages packages() {
  static Packages cached;
  if (!cached.current.empty()) return cached;
  auto r = guard::testing::run({std::string(UG_SOURCE_DIR) + "/scripts/test-packages", UG_PACKAGE_DIR}, 3600);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::getline(in, cached.current);
  std::getline(in, cached.previous);
  EXPECT_TRUE(fs::exists(cached.current)) << r.out;
  EXPECT_TRUE(fs::exists(cached.previous)) << r.out;
  return cached;
}

// sh -c script: $1 the root, then the command.
constexpr const char* kLiveRoot = R"SH(set -e
r=$1; shift
src=$(findmnt -n -o SOURCE -T "$r" | sed 's/\[.*//')
mount --bind "$r" "$r"
mount --bind /proc "$r/proc"
mount --rbind /sys "$r/sys"
mount -t tmpfs -o mode=755,size=16m tmpfs "$r/dev"
node() { mknod -m 666 "$r/dev/$1" c "$2" "$3"; }
node null 1 3; node zero 1 5; node full 1 7; node random 1 8; node urandom 1 9; node tty 5 0
mkdir -p "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
ln -s /proc/self/fd "$r/dev/fd"
mknod -m 660 "$r$src" b "$((0x$(stat -c %t "$src")))" "$((0x$(stat -c %T "$src")))"
exec chroot "$r" "$@"
)SH";

class PackageTest : public guard::testing::GuardedRootTest {
 protected:
  void SetUp() override {
    GuardedRootTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    debs_ = packages();
    ASSERT_FALSE(HasFailure());
    step("apt-get update");
    auto update = apt({"update"});
    ASSERT_EQ(update.exit_code, 0) << update.out << update.err;
  }

  void TearDown() override {
    step("");
    std::printf("%s", timings_.c_str());
  }

  // Starts timing a step of the lifecycle (printed at the end, for the closing note).
  void step(const std::string& name) {
    const auto now = std::chrono::steady_clock::now();
    if (!step_name_.empty())
      timings_ += "  step " + step_name_ + ": " +
                  std::to_string(std::chrono::duration<double>(now - step_start_).count()).substr(0, 5) + " s\n";
    step_name_ = name;
    step_start_ = now;
  }

  // Runs argv in the root as on the machine it would boot: in a private mount namespace the root
  // is a mount point of its own (so /proc/self/mountinfo shows `/` as the btrfs subvolume @,
  // and the installed guard snapshots it), with the host's /proc and /sys, and a /dev holding
  // the usual nodes and the loop device the guard mounts the top level from.
  base::ProcessResult live(const std::vector<std::string>& argv, int timeout_seconds = 900) {
    base::SystemCommandRunner runner;
    base::Command cmd;
    cmd.argv = {"unshare", "--mount", "--propagation", "private", "--", "sh", "-c", kLiveRoot, "live-root",
                root_->root()};
    cmd.argv.insert(cmd.argv.end(), argv.begin(), argv.end());
    cmd.timeout = std::chrono::seconds(timeout_seconds);
    cmd.env["DEBIAN_FRONTEND"] = "noninteractive";
    cmd.env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    auto r = runner.run(cmd);
    if (!r) {
      ADD_FAILURE() << "live " << argv.front() << ": " << r.error().to_string();
      return {};
    }
    return *r;
  }

  base::ProcessResult apt(std::vector<std::string> args) {
    args.insert(args.begin(), "apt-get");
    args.insert(args.begin() + 1, {"-y", "-q", "-o", "Dpkg::Use-Pty=0"});
    return live(args);
  }

  // The installed program, inside the root.
  base::ProcessResult inside(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/sbin/upgrade-guard");
    return live(args, 300);
  }

  // The root's own state (the package's paths), read by the built binary from outside, for
  // when the package is gone.
  base::ProcessResult outside(const std::vector<std::string>& args) {
    std::vector<std::string> argv{guard::testing::binary(),
                                  "--root",
                                  root_->root(),
                                  "--state-dir",
                                  root_->path("/var/lib/upgrade-guard"),
                                  "--log-dir",
                                  root_->path("/var/log/upgrade-guard"),
                                  "--run-dir",
                                  root_->path("/run/upgrade-guard")};
    argv.insert(argv.end(), args.begin(), args.end());
    return guard::testing::run(argv, 300);
  }

  nlohmann::json json_of(const base::ProcessResult& r) {
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  int schema_version() {
    sqlite3* db = nullptr;
    int version = -1;
    if (sqlite3_open_v2(root_->path("/var/lib/upgrade-guard/state.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
        SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr) == SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW)
        version = sqlite3_column_int(stmt, 0);
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return version;
  }

  bool exists(const std::string& rel) {
    std::error_code ec;
    return fs::exists(fs::symlink_status(root_->path(rel), ec));
  }

  Packages debs_;
  std::string step_name_;
  std::chrono::steady_clock::time_point step_start_;
  std::string timings_;
};

TEST_F(PackageTest, InstallGuardedBreakingInstallRemoveWithTheGateClosedThenPurge) {
  install_ugdemo();
  const std::string broken = ugdemo_breaking_upgrade();
  const std::string harmless =
      deb_in_root({"ugdemo-doc", "1.1", "", {{"/usr/share/doc/ugdemo-doc/README", {"hi\n", 0644}}}, "", ""});
  // The root's systemd runtime directory, as on a booted system: the gate's drop-ins go there.
  guard::testing::make_dirs(root_->path("/run/systemd/system"));

  step("apt-get install ./upgrade-guard_*.deb");
  const std::string deb = root_->copy_into_tmp(debs_.current);
  auto install = apt({"install", deb});
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  EXPECT_EQ(install.err.find("upgrade-guard:"), std::string::npos) << install.err;  // quiet
  // Where apt, systemd, man and the shells look.
  for (const char* path :
       {"/usr/sbin/upgrade-guard", "/etc/apt/apt.conf.d/80upgrade-guard", "/etc/grub.d/42_upgrade-guard",
        "/etc/kernel/postinst.d/zz-upgrade-guard", "/etc/molly-guard/run.d/20-upgrade-guard",
        "/etc/upgrade-guard/policy.toml", "/usr/share/upgrade-guard/default.toml",
        "/usr/libexec/upgrade-guard/kured-sentinel", "/usr/share/man/man8/upgrade-guard.8.gz",
        "/usr/share/man/man5/upgrade-guard-policy.5.gz", "/usr/share/bash-completion/completions/upgrade-guard",
        "/usr/share/zsh/vendor-completions/_upgrade-guard", "/lib/systemd/system/upgrade-guard-boot-check.service",
        "/etc/systemd/system/multi-user.target.wants/upgrade-guard-boot-check.service",
        "/etc/systemd/system/multi-user.target.wants/upgrade-guard-gate.service",
        "/etc/systemd/system/paths.target.wants/upgrade-guard-gate.path",
        "/etc/systemd/system/timers.target.wants/upgrade-guard-audit.timer", "/etc/logrotate.d/upgrade-guard",
        "/etc/systemd/system/sysinit.target.wants/upgrade-guard-rollback-completion.service",
        "/usr/lib/tmpfiles.d/upgrade-guard.conf"})
    EXPECT_TRUE(exists(path)) << path;
  // The policy installed in /etc is valid as shipped.
  auto validate = inside({"policy", "validate"});
  EXPECT_EQ(validate.exit_code, 0) << validate.out << validate.err;
  // apt read its configuration before the package existed, so no hook ran; run the post hook as
  // the package's own next apt run would with no session: quiet, nothing checked, gate open.
  auto post = inside({"hook", "post"});
  EXPECT_EQ(post.exit_code, 0) << post.err;
  EXPECT_EQ(post.out + post.err, "");
  auto gate = inside({"gate", "status"});
  EXPECT_EQ(gate.exit_code, 0) << gate.out << gate.err;

  step("kured sentinel, no reboot required");
  EXPECT_EQ(live({"/usr/libexec/upgrade-guard/kured-sentinel"}).exit_code, 1);
  write_file(root_->path("/run/reboot-required"), "*** System restart required ***\n");
  EXPECT_EQ(live({"/usr/libexec/upgrade-guard/kured-sentinel"}).exit_code, 0);

  step("guarded apt-get install of a breaking package");
  auto broken_install = apt({"install", broken});
  EXPECT_EQ(broken_install.exit_code, 100) << broken_install.out << broken_install.err;
  const std::string said = broken_install.out + broken_install.err;
  EXPECT_NE(said.find("reboot gate closed"), std::string::npos) << said;
  EXPECT_NE(said.find("/usr/bin/ugdemo-tool"), std::string::npos) << said;
  gate = inside({"gate", "status"});
  EXPECT_EQ(gate.exit_code, 1) << gate.out << gate.err;
  EXPECT_TRUE(exists("/run/systemd/system/reboot.target.d")) << "the gate's runtime drop-in";
  // Reboot required, gate closed: kured must not reboot.
  EXPECT_EQ(live({"/usr/libexec/upgrade-guard/kured-sentinel"}).exit_code, 1);

  step("apt-get remove upgrade-guard (gate closed, the remove's own hook run open)");
  auto remove = apt({"remove", "upgrade-guard"});
  ASSERT_EQ(remove.exit_code, 0) << remove.out << remove.err;
  EXPECT_NE((remove.out + remove.err).find("gate"), std::string::npos) << remove.out << remove.err;
  EXPECT_FALSE(exists("/usr/sbin/upgrade-guard"));
  EXPECT_FALSE(exists("/run/systemd/system/reboot.target.d/50-upgrade-guard.conf"));
  for (const auto& e : fs::directory_iterator(root_->path("/run/systemd/system")))
    EXPECT_EQ(e.path().filename().string().find("target.d"), std::string::npos) << e.path();
  EXPECT_FALSE(exists("/lib/systemd/system/upgrade-guard-gate.service"));
  // The run the remove's pre hook opened is closed, not left to block the next guard.
  auto runs = json_of(outside({"--json", "history"}));
  ASSERT_GE(runs["runs"].size(), 2u) << runs.dump(2);
  for (const auto& run : runs["runs"]) EXPECT_FALSE(run["finished_unix"].is_null()) << run.dump(2);
  EXPECT_EQ(runs["runs"][0]["outcome"], "interrupted") << runs.dump(2);
  // apt keeps working: the conffile stays, the hook stands aside without the binary.
  auto after = apt({"install", harmless});
  EXPECT_EQ(after.exit_code, 0) << after.out << after.err;

  step("apt-get purge upgrade-guard");
  auto purge = apt({"purge", "upgrade-guard"});
  ASSERT_EQ(purge.exit_code, 0) << purge.out << purge.err;
  // The snapshots noted at the removal are listed, and kept.
  EXPECT_NE(purge.err.find("the snapshots are kept"), std::string::npos) << purge.err;
  EXPECT_NE(purge.err.find("pre-run1"), std::string::npos) << purge.err;
  for (const char* path : {"/etc/apt/apt.conf.d/80upgrade-guard", "/etc/upgrade-guard", "/var/lib/upgrade-guard",
                           "/var/log/upgrade-guard", "/etc/grub.d/42_upgrade-guard", "/etc/init.d/upgrade-guard-boot-check",
                           "/etc/systemd/system/timers.target.wants/upgrade-guard-audit.timer"})
    EXPECT_FALSE(exists(path)) << path;
  auto listed = live({"dpkg-query", "-W", "-f=${Status}", "upgrade-guard"});
  EXPECT_NE(listed.exit_code, 0) << listed.out;
  // Nothing of ours left but the snapshots.
  size_t snapshots = 0;
  for (const auto& e : fs::directory_iterator(root_->top() + "/@upgrade-guard")) snapshots += e.is_directory() ? 1 : 0;
  EXPECT_GE(snapshots, 2u);
}

TEST_F(PackageTest, UpgradeFromThePreviousBuildWhileItsHookRunIsOpen) {
  step("apt-get install the previous build");
  auto old_install = apt({"install", root_->copy_into_tmp(debs_.previous)});
  ASSERT_EQ(old_install.exit_code, 0) << old_install.out << old_install.err;
  auto version = live({"dpkg-query", "-W", "-f=${Version}", "upgrade-guard"});
  EXPECT_EQ(version.out, "0.0.9");

  step("apt-get install this build (old pre hook, new post hook)");
  auto upgrade = apt({"install", root_->copy_into_tmp(debs_.current)});
  ASSERT_EQ(upgrade.exit_code, 0) << upgrade.out << upgrade.err;
  version = live({"dpkg-query", "-W", "-f=${Version}", "upgrade-guard"});
  EXPECT_NE(version.out, "0.0.9");
  // The old binary's pre hook opened the run and snapshotted; the new one's post hook finished
  // it in the database it migrated.
  EXPECT_EQ(schema_version(), 3);
  auto runs = json_of(inside({"--json", "history"}));
  ASSERT_EQ(runs["runs"].size(), 1u) << runs.dump(2);
  EXPECT_EQ(runs["runs"][0]["outcome"], "passed") << runs.dump(2);
  EXPECT_EQ(inside({"gate", "status"}).exit_code, 0);
  auto snaps = json_of(inside({"--json", "snapshot", "list"}));
  EXPECT_EQ(snaps["snapshots"].size(), 1u) << snaps.dump(2);

  step("a guarded apt run with the new hook");
  const std::string harmless =
      deb_in_root({"ugdemo-doc", "1.1", "", {{"/usr/share/doc/ugdemo-doc/README", {"hi\n", 0644}}}, "", ""});
  auto next = apt({"install", harmless});
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  runs = json_of(inside({"--json", "history"}));
  ASSERT_EQ(runs["runs"].size(), 2u) << runs.dump(2);
  EXPECT_EQ(runs["runs"][0]["outcome"], "passed") << runs.dump(2);

  // What the hook costs one small apt run, side by side (printed with the step timings).
  step("the same apt run with UPGRADE_GUARD_HOOK=off (unguarded, for comparison)");
  auto unguarded = live({"env", "UPGRADE_GUARD_HOOK=off", "apt-get", "install", "-y", "-q", "--reinstall", harmless});
  EXPECT_EQ(unguarded.exit_code, 0) << unguarded.out << unguarded.err;
  step("the same apt run guarded by the hook");
  auto guarded = apt({"install", "--reinstall", harmless});
  EXPECT_EQ(guarded.exit_code, 0) << guarded.out << guarded.err;
  EXPECT_EQ(json_of(inside({"--json", "history"}))["runs"].size(), 3u);
}

TEST(PackageLint, LintianPedanticShowsOnlyTheTwoOverrides) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("builds the package: needs root for its build dependencies");
  const auto debs = packages();
  ASSERT_FALSE(debs.current.empty());
  auto r = guard::testing::run({"lintian", "--pedantic", "-I", "-E", "--show-overrides", debs.current}, 600);
  std::vector<std::string> tags;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (line.size() > 2 && line[1] == ':' && line[0] != 'N') tags.push_back(line);
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<std::string>{
                      "O: upgrade-guard: package-supports-alternative-init-but-no-init.d-script "
                      "[lib/systemd/system/upgrade-guard-rollback-completion.service]",
                      "O: upgrade-guard: uses-dpkg-database-directly [usr/sbin/upgrade-guard]"}))
      << r.out << r.err;
}

}  // namespace
}  // namespace guard
