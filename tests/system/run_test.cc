// End-to-end: `upgrade-guard run --root R -- apt-get ...` on a real debootstrapped Debian 12
// root in a btrfs image, with packages built at test time that break the system the ways
// real upgrades do. Each broken upgrade must be rolled back (exit 3) to the exact
// pre-upgrade files and dpkg status, with the broken root kept.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "guard/state/store.h"
#include "tests/system/guarded_root.h"

namespace guard {
namespace {

using guard::testing::DebSpec;
using guard::testing::slurp;
using namespace guard::state;

constexpr const char* kLibDir = "/usr/lib/x86_64-linux-gnu";

class RunTest : public guard::testing::GuardedRootTest {
 protected:
  nlohmann::json run_json(const std::vector<std::string>& command, int* exit_code) {
    std::vector<std::string> args{"--json", "run", "--"};
    args.insert(args.end(), command.begin(), command.end());
    auto r = root_->guard(args);
    *exit_code = r.exit_code;
    try {
      return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON (" << e.what() << "): " << r.out << "\nstderr: " << r.err;
      return {};
    }
  }

  // The rollback left the broken root under @upgrade-guard/.
  bool broken_root_kept() {
    for (const auto& e : std::filesystem::directory_iterator(root_->top() + "/@upgrade-guard")) {
      std::string name = e.path().filename().string();
      if (name.find("broken") != std::string::npos && e.is_directory()) return true;
    }
    return false;
  }

  static bool has_finding(const nlohmann::json& report, const std::string& check, const std::string& path,
                          const std::string& package = "") {
    for (const auto& f : report["findings"]) {
      if (f["check"] == check && f["path"] == path && f["blocking"] == true &&
          (package.empty() || f.value("package", "") == package))
        return true;
    }
    return false;
  }

};

TEST_F(RunTest, RealPendingUpdatesPass) {
  auto update = root_->chroot({"apt-get", "-q", "update"});
  ASSERT_TRUE(update.ok()) << update.out << update.err;
  int rc = -1;
  auto j = run_json({"apt-get", "-y", "-q", "upgrade"}, &rc);
  EXPECT_EQ(rc, 0) << j.dump(2);
  EXPECT_EQ(j["outcome"], "passed");
  EXPECT_FALSE(j["changes"]["upgraded"].empty()) << "the cached root should have pending bookworm updates";
  EXPECT_TRUE(j["snapshot"].is_string());
  EXPECT_FALSE(j.contains("rollback"));

  auto history = root_->guard({"history", "--json", "--run", std::to_string(j["run"].get<int>())});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  auto h = nlohmann::json::parse(history.out);
  EXPECT_FALSE(h["packages"].empty()) << history.out;
  EXPECT_NE(slurp(root_->log_dir() + "/run-1.log").find("Unpacking"), std::string::npos);
}

// An administrator's terminal: `script` gives the guard a terminal whose foreground it is, as a
// shell does. The command runs in a process group of its own; apt sets the terminal's modes on
// stdin before dpkg runs, which a background job cannot do (SIGTTOU stops it, for ever: a fleet
// play over ssh hung there). `stty -echo` does the same in one call.
TEST_F(RunTest, ACommandThatSetsTheTerminalModesIsNotStopped) {
  // timeout --foreground: the guard stays the terminal's foreground, and a stopped command's
  // group, orphaned when the guard is killed, gets SIGHUP and SIGCONT and ends.
  std::string line = "timeout --foreground -s KILL 240 '" + guard::testing::binary() + "' ";
  for (const auto& a : root_->guard_args({"--json", "run", "--", "stty", "-echo"})) line += "'" + a + "' ";
  auto r = guard::testing::run({"script", "-qec", line, "/dev/null"}, 300);
  EXPECT_FALSE(r.timed_out) << "the guarded command was stopped on the terminal: " << r.out;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\"outcome\": \"passed\""), std::string::npos) << r.out;
}

TEST_F(RunTest, UpgradeThatRemovesANeededLibraryIsRolledBack) {
  std::string lib = install_ugdemo();
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(root_->chroot({"/usr/bin/ugdemo-tool"}).ok());
  std::string status_before = slurp(root_->path("/var/lib/dpkg/status"));

  int rc = -1;
  auto j = run_json({"apt-get", "install", "-y", ugdemo_breaking_upgrade()}, &rc);
  EXPECT_EQ(rc, 3) << j.dump(2);
  EXPECT_EQ(j["outcome"], "rolled-back");
  EXPECT_TRUE(has_finding(j["post"], "libraries", "/usr/bin/ugdemo-tool", "ugdemo-tool")) << j["post"].dump(2);
  EXPECT_TRUE(slurp(root_->path("/var/lib/dpkg/status")) == status_before) << "dpkg status differs from before";
  EXPECT_TRUE(slurp(root_->path(std::string(kLibDir) + "/libugdemo.so.1")) == lib) << "the library is restored";
  EXPECT_TRUE(root_->chroot({"/usr/bin/ugdemo-tool"}).ok()) << "the restored root runs the tool again";
  EXPECT_TRUE(broken_root_kept());
  // `snapshot list` shows the broken root the rollback's message names, marked as such.
  auto list = root_->guard({"snapshot", "list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  bool listed = false;
  std::istringstream lines(list.out);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("rollback-", 0) == 0 && line.find("-broken ") != std::string::npos &&
        line.find(" broken ") != std::string::npos)
      listed = true;
  EXPECT_TRUE(listed) << list.out;
  // Prunable by policy: snapshot.keep_broken = 0 deletes it, and keeps the snapshot.
  const std::string policy = dir_ / "keep-no-broken.toml";
  guard::testing::write_file(policy, "[snapshot]\nkeep_broken = 0\n", 0644);
  auto prune = root_->guard({"--policy", policy, "snapshot", "prune"});
  EXPECT_EQ(prune.exit_code, 0) << prune.out << prune.err;
  EXPECT_FALSE(broken_root_kept()) << prune.out;
  auto after = nlohmann::json::parse(root_->guard({"--json", "snapshot", "list"}).out, nullptr, false);
  ASSERT_EQ(after["snapshots"].size(), 1u) << after.dump(2);
  EXPECT_NE(after["snapshots"][0]["state"], "broken");
}

TEST_F(RunTest, BinaryNeedingAMissingSymbolVersionIsRolledBack) {
  guard::testing::write_file(dir_ / "v2.map", "UGV_2.0 { global: ugv_call; local: *; };\n");
  guard::testing::write_file(dir_ / "v1.map", "UGV_1.0 { global: ugv_call; local: *; };\n");
  std::string lib_new = elf("int ugv_call(void) { return 0; }",
                            {"-shared", "-fPIC", "-Wl,-soname,libugv.so.1", "-Wl,--version-script," + (dir_ / "v2.map")});
  guard::testing::write_file(dir_ / "libugv.so.1", lib_new, 0644);
  std::string tool = elf("int ugv_call(void); int main(void) { return ugv_call(); }",
                         {"-L" + dir_.path(), "-l:libugv.so.1"});
  std::string lib_old = elf("int ugv_call(void) { return 0; }",
                            {"-shared", "-fPIC", "-Wl,-soname,libugv.so.1", "-Wl,--version-script," + (dir_ / "v1.map")});
  DebSpec pkg{"ugv-tool", "1.0", "",
              {{"/usr/bin/ugv-tool", {tool, 0755}}, {std::string(kLibDir) + "/libugv.so.1", {lib_old, 0644}}}, "", ""};
  std::string status_before = slurp(root_->path("/var/lib/dpkg/status"));

  int rc = -1;
  auto j = run_json({"apt-get", "install", "-y", deb_in_root(pkg)}, &rc);
  EXPECT_EQ(rc, 3) << j.dump(2);
  EXPECT_TRUE(has_finding(j["post"], "libraries", "/usr/bin/ugv-tool", "ugv-tool")) << j["post"].dump(2);
  EXPECT_TRUE(slurp(root_->path("/var/lib/dpkg/status")) == status_before) << "dpkg status differs from before";
  EXPECT_FALSE(std::filesystem::exists(root_->path("/usr/bin/ugv-tool")));
  EXPECT_TRUE(broken_root_kept());
}

TEST_F(RunTest, MaintainerScriptReplacingSbinIsRolledBack) {
  DebSpec pkg{"ug-sbin-breaker", "1.0", "", {{"/usr/share/doc/ug-sbin-breaker/README", {"x\n", 0644}}}, "",
              "mv /usr/sbin /usr/sbin.moved && ln -s bin /usr/sbin"};
  int rc = -1;
  auto j = run_json({"apt-get", "install", "-y", deb_in_root(pkg)}, &rc);
  EXPECT_EQ(rc, 3) << j.dump(2);
  EXPECT_TRUE(std::filesystem::is_directory(std::filesystem::symlink_status(root_->path("/usr/sbin"))))
      << "the restored root has its real /usr/sbin";
  EXPECT_FALSE(std::filesystem::exists(root_->path("/usr/sbin.moved")));
  bool named = false;
  for (const auto& f : j["post"]["findings"]) named |= f["blocking"] == true && f["path"].get<std::string>().find("/sbin") != std::string::npos;
  EXPECT_TRUE(named) << j["post"].dump(2);
}

TEST_F(RunTest, RegressionUnderBlockRebootClosesTheGate) {
  std::string policy = dir_ / "policy.toml";
  guard::testing::write_file(policy, "on_fail = \"block-reboot\"\n", 0644);
  DebSpec pkg{"ug-sbin-breaker", "1.0", "", {{"/usr/share/doc/ug-sbin-breaker/README", {"x\n", 0644}}}, "",
              "mv /usr/sbin /usr/sbin.moved && ln -s bin /usr/sbin"};
  auto r = root_->guard({"--policy", policy, "--json", "run", "--", "apt-get", "install", "-y", deb_in_root(pkg)});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["outcome"], "gated");
  EXPECT_TRUE(std::filesystem::is_symlink(root_->path("/usr/sbin"))) << "block-reboot keeps the upgraded root";

  auto status = root_->guard({"--json", "gate", "status"});
  EXPECT_EQ(status.exit_code, 1) << status.out << status.err;
  auto g = nlohmann::json::parse(status.out);
  EXPECT_EQ(g["closed"], true);
  EXPECT_EQ(g["run"], j["run"]);
  EXPECT_FALSE(g["findings"].empty());
  EXPECT_EQ(slurp(root_->state_dir() + "/gate").rfind("closed\n", 0), 0u);

  auto open = root_->guard({"gate", "open", "--force", "--reason", "fixed by hand"});
  EXPECT_EQ(open.exit_code, 0) << open.err;
  EXPECT_EQ(root_->guard({"gate", "status"}).exit_code, 0);
}

TEST_F(RunTest, DpkgKilledHalfwayIsRolledBack) {
  DebSpec a{"ug-multi-a", "1.0", "", {{"/usr/share/ug-multi/a", {"a\n", 0644}}}, "", ""};
  DebSpec b{"ug-multi-b", "1.0", "", {{"/usr/share/ug-multi/b", {"b\n", 0644}}}, "kill -KILL $PPID; sleep 1", ""};
  DebSpec c{"ug-multi-c", "1.0", "", {{"/usr/share/ug-multi/c", {"c\n", 0644}}}, "", ""};
  std::string status_before = slurp(root_->path("/var/lib/dpkg/status"));
  int rc = -1;
  auto j = run_json({"dpkg", "-i", deb_in_root(a), deb_in_root(b), deb_in_root(c)}, &rc);
  EXPECT_EQ(rc, 3) << j.dump(2);
  bool dpkg_state = false;
  for (const auto& f : j["post"]["findings"]) dpkg_state |= f["check"] == "dpkg-state" && f["blocking"] == true;
  EXPECT_TRUE(dpkg_state) << j["post"].dump(2);
  EXPECT_TRUE(slurp(root_->path("/var/lib/dpkg/status")) == status_before) << "dpkg status differs from before";
  EXPECT_FALSE(std::filesystem::exists(root_->path("/usr/share/ug-multi/a")));
  EXPECT_TRUE(std::filesystem::is_empty(root_->path("/var/lib/dpkg/updates")));
}

// Waits until the newest run is in `phase` (up to a minute).
bool wait_for_phase(const std::string& state_dir, RunPhase phase) {
  for (int i = 0; i < 600; ++i) {
    if (auto store = StateStore::open(state_dir)) {
      if (auto runs = store->list_runs(1); runs && !runs->empty() && runs->front().phase == phase) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST_F(RunTest, GuardKilledDuringTheCommandIsRecovered) {
  DebSpec ok{"ug-fine", "1.0", "", {{"/usr/share/doc/ug-fine/README", {"fine\n", 0644}}}, "", ""};
  std::string deb = deb_in_root(ok);
  pid_t pid = root_->guard_in_background({"run", "--", "/bin/sh", "-c", "sleep 4; dpkg -i " + deb});
  ASSERT_TRUE(wait_for_phase(root_->state_dir(), RunPhase::command));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);

  auto refused = root_->guard({"run", "--", "true"});
  EXPECT_EQ(refused.exit_code, 4);
  EXPECT_NE(refused.out.find("interrupted during the command"), std::string::npos) << refused.out << refused.err;

  // The command outlived the guard (own process group, SIGHUP-proof): recover waits for
  // dpkg, then checks and applies the policy.
  std::this_thread::sleep_for(std::chrono::seconds(6));
  auto rec = root_->guard({"--json", "recover"});
  EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  auto j = nlohmann::json::parse(rec.out);
  ASSERT_EQ(j["recovered"].size(), 1u) << rec.out;
  EXPECT_EQ(j["recovered"][0]["outcome"], "passed");
  EXPECT_TRUE(std::filesystem::exists(root_->path("/usr/share/doc/ug-fine/README")));
  auto again = root_->guard({"recover"});
  EXPECT_NE(again.out.find("nothing to recover"), std::string::npos);
}

TEST_F(RunTest, GuardKilledDuringThePostChecksIsRecovered) {
  std::string policy = dir_ / "policy.toml";
  guard::testing::write_file(policy,
                             "[[custom]]\nname = \"slow\"\ncommand = [\"/bin/sh\", \"-c\", \"test -e /ug-slow && "
                             "sleep 30; true\"]\ntimeout = \"60s\"\n",
                             0644);
  pid_t pid = root_->guard_in_background({"--policy", policy, "run", "--", "/bin/sh", "-c", "touch /ug-slow"});
  ASSERT_TRUE(wait_for_phase(root_->state_dir(), RunPhase::post_checks));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  std::filesystem::remove(root_->path("/ug-slow"));
  auto rec = root_->guard({"--policy", policy, "--json", "recover"});
  EXPECT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  auto j = nlohmann::json::parse(rec.out);
  ASSERT_EQ(j["recovered"].size(), 1u);
  EXPECT_EQ(j["recovered"][0]["outcome"], "passed");
  auto history = root_->guard({"history", "--json"});
  auto h = nlohmann::json::parse(history.out);
  EXPECT_EQ(h["runs"][0]["outcome"], "passed") << history.out;
}

}  // namespace
}  // namespace guard
