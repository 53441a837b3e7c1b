// `upgrade-guard audit` and `baseline accept|show` as an administrator meets them: exit
// codes, what the gate does, the textfile on disk. A fake root in a temp dir with only the
// symlinks check on, where a dangling link in /usr/bin is a blocking finding.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "guard/state/store.h"
#include "policies/policy.h"
#include "tests/common/test_env.h"

namespace guard {
namespace {

using guard::testing::make_dirs;
using guard::testing::make_symlink;
using guard::testing::read_file;
using guard::testing::TempDir;
using guard::testing::write_file;
using ::testing::HasSubstr;
using namespace guard::state;

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* dir : {"usr/bin", "usr/sbin", "usr/lib", "etc"}) make_dirs(root_ / dir);
    for (const char* alias : {"bin", "sbin", "lib"}) make_symlink(std::string("usr/") + alias, root_ / alias);
    write_policy(true);
  }

  // Every check off but symlinks, so the fake root's findings are exactly its links.
  void write_policy(bool close_gate) {
    std::string text;
    for (const auto& id : policies::known_check_ids()) {
      text += "[checks." + id + "]\nseverity = \"" + (id == "symlinks" ? "block" : "off") + "\"\n";
    }
    text += std::string("[audit]\nclose_gate = ") + (close_gate ? "true" : "false") + "\n";
    write_file(policy_path(), text, 0644);
  }
  std::string policy_path() const { return cfg_ / "policy.toml"; }

  void break_link(const std::string& name) { make_symlink("/nonexistent/" + name, root_ / ("usr/bin/" + name)); }

  base::ProcessResult guard(std::vector<std::string> args) {
    std::vector<std::string> all{"--root", root_.path(), "--state-dir", state_.path(), "--policy", policy_path()};
    all.insert(all.end(), args.begin(), args.end());
    return ::guard::testing::run_guard(all, 120);
  }
  nlohmann::json guard_json(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto r = guard(args);
    try {
      return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what() << "\n" << r.out << r.err;
      return {};
    }
  }

  TempDir root_{"ug-audit-root"};
  TempDir state_{"ug-audit-state"};
  TempDir cfg_{"ug-audit-cfg"};
};

// The package-hashes check's note in an audit's JSON report.
std::string hashes_note(const nlohmann::json& j) {
  for (const auto& c : j.at("checks")) {
    if (c.at("id") == "package-hashes") return c.value("note", "");
  }
  return "(no package-hashes check)";
}

TEST_F(AuditTest, SecondAuditTrustsTheVerifiedHashCacheUntilDeep) {
  std::string text;
  for (const auto& id : policies::known_check_ids())
    text += "[checks." + id + "]\nseverity = \"" + (id == "package-hashes" ? "block" : "off") + "\"\n";
  write_file(policy_path(), text, 0644);
  write_file(root_ / "usr/bin/tool", "a tool");
  write_file(root_ / "var/lib/dpkg/status",
             "Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n");
  write_file(root_ / "var/lib/dpkg/info/tool.list", "/usr\n/usr/bin\n/usr/bin/tool\n");
  // The real md5 of "a tool", so that the file verifies.
  auto sum = guard::testing::run({"md5sum", root_ / "usr/bin/tool"});
  write_file(root_ / "var/lib/dpkg/info/tool.md5sums", sum.out.substr(0, 32) + "  usr/bin/tool\n");
  make_dirs(root_ / "var/lib/dpkg/updates");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // settled: old enough to cache
  EXPECT_EQ(hashes_note(guard_json({"audit"})), "1 files hashed, 0 verified by the hash cache (deep: every file read)");
  EXPECT_EQ(hashes_note(guard_json({"audit"})), "0 files hashed, 1 verified by the hash cache");
  EXPECT_EQ(hashes_note(guard_json({"audit", "--deep"})),
            "1 files hashed, 0 verified by the hash cache (deep: every file read)");
  EXPECT_EQ(hashes_note(guard_json({"check", "--checks", "package-hashes"})),
            "1 files hashed, 0 verified by the hash cache")
      << "check never uses the cache";
}

TEST_F(AuditTest, CleanRootWithoutBaselineExitsZeroAndSuggestsBaselineAccept) {
  auto r = guard({"audit"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("no accepted baseline for " + root_.path() + " yet"));
  EXPECT_THAT(r.out, HasSubstr("upgrade-guard baseline accept"));
  EXPECT_EQ(guard({"gate", "status"}).exit_code, 0);
}

TEST_F(AuditTest, WithoutBaselineFindingsAreReportedForReviewAndTheGateStaysOpen) {
  break_link("a");
  auto j = guard_json({"audit", "--prometheus", state_ / "ug.prom"});
  EXPECT_EQ(j["schema"], 1);
  EXPECT_EQ(j["verdict"], "fail");
  EXPECT_EQ(j["audit"]["baseline"], false);
  EXPECT_EQ(j["audit"]["new_blocking"], 1);
  EXPECT_EQ(j["audit"]["gate_closed"], false);
  EXPECT_THAT(read_file(state_ / "ug.prom"), HasSubstr("upgrade_guard_audit_baseline 0\n"));
  EXPECT_THAT(read_file(state_ / "ug.prom"), HasSubstr("upgrade_guard_gate_closed 0\n"));
  auto r = guard({"audit"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("/usr/bin/a"));
  EXPECT_THAT(r.out, HasSubstr("no accepted baseline: the reboot gate is left as it is"));
  EXPECT_THAT(r.out, HasSubstr("upgrade-guard baseline accept"));
  EXPECT_EQ(guard({"gate", "status"}).exit_code, 0);
  // Accepted, the same finding is known; a new one then closes the gate.
  ASSERT_EQ(guard({"baseline", "accept"}).exit_code, 0);
  break_link("b");
  EXPECT_EQ(guard({"audit"}).exit_code, 1);
  EXPECT_EQ(guard({"gate", "status"}).exit_code, 1);
}

TEST_F(AuditTest, BaselineAcceptThenAuditExitsZeroAndLeavesTheGateOpen) {
  break_link("a");
  auto accepted = guard({"baseline", "accept"});
  ASSERT_EQ(accepted.exit_code, 0) << accepted.out << accepted.err;
  EXPECT_THAT(accepted.out, HasSubstr("baseline accepted for " + root_.path() +
                                      ": 1 findings (1 newly accepted, 0 dropped since the start"));
  EXPECT_THAT(accepted.out, HasSubstr("  + symlinks /usr/bin/a: "));
  auto r = guard({"audit"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("audit: 0 new blocking, 0 new, 1 findings in all"));
  EXPECT_EQ(guard({"gate", "status"}).exit_code, 0);
}

TEST_F(AuditTest, ANewBlockingFindingFailsTheAuditAndClosesTheGate) {
  break_link("a");
  ASSERT_EQ(guard({"baseline", "accept"}).exit_code, 0);
  break_link("b");
  auto r = guard({"audit"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("/usr/bin/b"));
  EXPECT_THAT(r.out, HasSubstr("audit: 1 new blocking, 1 new, 2 findings in all"));
  EXPECT_THAT(r.out, HasSubstr("the reboot gate is closed"));
  auto status = guard({"gate", "status"});
  EXPECT_EQ(status.exit_code, 1) << status.out;
  EXPECT_THAT(status.out, HasSubstr("by audit: audit found 1 new blocking finding"));
  EXPECT_THAT(status.out, HasSubstr("  symlinks /usr/bin/b: "));  // what closed it
  EXPECT_THAT(status.out, ::testing::Not(HasSubstr("/usr/bin/a")));  // accepted
  // The gate file the molly-guard hook and the gate holder read.
  EXPECT_THAT(read_file(state_ / "gate"), HasSubstr("closed\n"));
  // The report is recorded as an audit.
  auto store = state::StateStore::open(state_.path());
  ASSERT_TRUE(store) << store.error().to_string();
  auto last = store->latest_report(root_.path(), ReportStage::audit);
  ASSERT_TRUE(last && *last);
  EXPECT_EQ((*last)->report.blocking_count(), 1u);
}

TEST_F(AuditTest, CloseGateFalseReportsButLeavesTheGateOpen) {
  write_policy(false);
  ASSERT_EQ(guard({"baseline", "accept"}).exit_code, 0);
  break_link("b");
  auto r = guard({"audit"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("audit.close_gate = false"));
  EXPECT_EQ(guard({"gate", "status"}).exit_code, 0);
}

TEST_F(AuditTest, AGateAlreadyClosedKeepsItsReason) {
  {
    // Closed by a run before (not `gate close`, which would enforce it on this host).
    auto store = state::StateStore::open(state_.path());
    ASSERT_TRUE(store) << store.error().to_string();
    GateState g;
    g.closed = true;
    g.reason = "run 7 broke sshd";
    g.changed_by = "run 7";
    ASSERT_TRUE(store->set_gate(g));
  }
  ASSERT_EQ(guard({"baseline", "accept"}).exit_code, 0);
  break_link("b");
  auto r = guard({"audit"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("already closed"));
  EXPECT_THAT(guard({"gate", "status"}).out, HasSubstr("run 7 broke sshd"));
}

TEST_F(AuditTest, BaselineAcceptCountsNewlyAcceptedAndDroppedAndShowListsThem) {
  break_link("a");
  ASSERT_EQ(guard({"baseline", "accept"}).exit_code, 0);
  std::filesystem::remove(root_ / "usr/bin/a");
  break_link("b");
  auto again = guard({"baseline", "accept"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr(": 1 findings (1 newly accepted, 1 dropped since the previous baseline)"));
  EXPECT_THAT(again.out, HasSubstr("  + symlinks /usr/bin/b: "));
  EXPECT_THAT(again.out, HasSubstr("  - symlinks /usr/bin/a: "));
  auto j = guard_json({"baseline", "accept"});
  EXPECT_EQ(j["accepted"], 1);
  EXPECT_EQ(j["newly_accepted"], 0);
  EXPECT_EQ(j["dropped"], 0);
  EXPECT_EQ(j["previous_baseline"], true);

  auto show = guard({"baseline", "show"});
  EXPECT_EQ(show.exit_code, 0);
  EXPECT_THAT(show.out, HasSubstr("accepted baseline for " + root_.path() + ": 1 findings\n  symlinks /usr/bin/b: "));
  auto shown = guard_json({"baseline", "show"});
  ASSERT_EQ(shown["baseline"].size(), 1u);
  EXPECT_EQ(shown["baseline"][0]["check"], "symlinks");
  EXPECT_EQ(shown["baseline"][0]["path"], "/usr/bin/b");
}

TEST_F(AuditTest, BaselineShowWithoutBaselineSaysHowToMakeOne) {
  auto show = guard({"baseline", "show"});
  EXPECT_EQ(show.exit_code, 0);
  EXPECT_THAT(show.out, HasSubstr("no accepted baseline"));
  EXPECT_TRUE(guard_json({"baseline", "show"})["baseline"].is_null());
}

TEST_F(AuditTest, PrometheusTextfileIsWrittenWithEveryMetric) {
  break_link("a");
  ASSERT_EQ(guard({"baseline", "accept"}).exit_code, 0);
  break_link("b");
  const std::string prom = state_ / "upgrade-guard.prom";
  auto r = guard({"audit", "--prometheus", prom});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const std::string text = read_file(prom);
  for (const char* line : {"upgrade_guard_gate_closed 1\n", "upgrade_guard_audit_baseline 1\n",
                           "upgrade_guard_findings{check=\"symlinks\",severity=\"block\",new=\"true\"} 1\n",
                           "upgrade_guard_findings{check=\"symlinks\",severity=\"block\",new=\"false\"} 1\n",
                           "upgrade_guard_findings{check=\"libraries\",severity=\"block\",new=\"true\"} 0\n",
                           "# TYPE upgrade_guard_last_audit_timestamp_seconds gauge\n",
                           "# TYPE upgrade_guard_audit_duration_seconds gauge\n"}) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  struct stat st {};
  ASSERT_EQ(::stat(prom.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  auto at = text.find("upgrade_guard_last_audit_timestamp_seconds ", text.find("gauge\n"));
  ASSERT_NE(at, std::string::npos);
  EXPECT_NEAR(std::stoll(text.substr(at + 43)), now, 120);
}

TEST_F(AuditTest, PrometheusOptionalSkipsAMissingDirectoryButPlainPrometheusFails) {
  const std::string prom = state_ / "no-node-exporter/upgrade-guard.prom";
  auto optional = guard({"audit", "--prometheus", prom, "--prometheus-optional"});
  EXPECT_EQ(optional.exit_code, 0) << optional.err;
  EXPECT_THAT(optional.err, HasSubstr("the Prometheus textfile is not written"));
  auto json = guard_json({"audit", "--prometheus", prom, "--prometheus-optional"});
  EXPECT_EQ(json["audit"]["new_blocking"], 0) << "stdout stays JSON";
  auto required = guard({"audit", "--prometheus", prom});
  EXPECT_EQ(required.exit_code, 4) << required.err;
  EXPECT_THAT(required.err, HasSubstr(prom));
  EXPECT_FALSE(std::filesystem::exists(prom));
}

TEST_F(AuditTest, RefusedWhileAGuardedRunIsChangingTheRoot) {
  {
    auto store = state::StateStore::open(state_.path());
    ASSERT_TRUE(store) << store.error().to_string();
    // This test process stands in for a live guard of the same root.
    ASSERT_TRUE(store->begin_run(RunStart{root_.path(), {"apt-get", "dist-upgrade"}, ::getpid(), RunKind::run, "", ""}));
  }
  auto r = guard({"audit"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("guarded run 1 (pid " + std::to_string(::getpid()) + ") is changing"));
  EXPECT_EQ(guard({"baseline", "accept"}).exit_code, 4);
}

TEST_F(AuditTest, ABadAuditPolicyKeyNamesFileLineAndColumn) {
  write_file(policy_path(), "[audit]\nclose_gate = \"yes\"\n", 0644);
  auto r = guard({"audit"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(policy_path() + ":2:14: audit.close_gate: expected a boolean (true|false), got a string"));
  const std::string good = cfg_ / "good.toml";
  write_file(good, "on_fail = \"warn\"\n", 0644);
  auto shown = ::guard::testing::run_guard({"policy", "show", "--policy", good});
  EXPECT_THAT(shown.out, HasSubstr("[audit]\nclose_gate = true  # built-in\n"));
}

}  // namespace
}  // namespace guard
