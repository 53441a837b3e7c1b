// The node-exporter textfile the audit writes: exact text, escaping, zeros, atomic replace.
#include "guard/audit/prometheus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/common/test_env.h"

namespace guard::audit {
namespace {

using guard::testing::read_file;
using guard::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

checks::Finding finding(std::string check, policies::Severity severity, std::string path, bool known) {
  auto f = checks::make_finding(std::move(check), severity, std::move(path), "dangling link");
  f.known = known;
  return f;
}

// A report with a new blocking symlink finding, a known warning and a known blocking one.
checks::Report small_report() {
  checks::Report r;
  r.root = "/";
  r.checks.push_back({"symlinks", checks::CheckStatus::failed, 40, std::chrono::milliseconds(3), ""});
  r.checks.push_back({"boot", checks::CheckStatus::error, 0, std::chrono::milliseconds(1), "no /boot"});
  r.findings.push_back(finding("symlinks", policies::Severity::block, "/usr/bin/a", false));
  r.findings.push_back(finding("symlinks", policies::Severity::warn, "/etc/b", true));
  r.findings.push_back(finding("symlinks", policies::Severity::block, "/usr/bin/c", true));
  r.baseline_compared = true;
  return r;
}

AuditMetrics small_metrics() {
  AuditMetrics m;
  m.finished_unix = 1769000000;
  m.duration_seconds = 41.2134;
  m.gate_closed = true;
  m.baseline_found = true;
  m.check_ids = {"symlinks", "boot"};
  return m;
}

TEST(PrometheusTest, ExactTextForASmallReport) {
  const std::string expected =
      "# HELP upgrade_guard_last_audit_timestamp_seconds Unix time the last upgrade-guard audit finished.\n"
      "# TYPE upgrade_guard_last_audit_timestamp_seconds gauge\n"
      "upgrade_guard_last_audit_timestamp_seconds 1769000000\n"
      "# HELP upgrade_guard_audit_duration_seconds How long the last audit took.\n"
      "# TYPE upgrade_guard_audit_duration_seconds gauge\n"
      "upgrade_guard_audit_duration_seconds 41.213\n"
      "# HELP upgrade_guard_gate_closed 1 while the reboot gate is closed (as the last audit left it).\n"
      "# TYPE upgrade_guard_gate_closed gauge\n"
      "upgrade_guard_gate_closed 1\n"
      "# HELP upgrade_guard_audit_baseline 1 when the last audit compared against an accepted baseline; 0: run "
      "`upgrade-guard baseline accept`.\n"
      "# TYPE upgrade_guard_audit_baseline gauge\n"
      "upgrade_guard_audit_baseline 1\n"
      "# HELP upgrade_guard_findings Findings of the last audit by check and severity; new=\"true\" for findings "
      "absent from the accepted baseline (new blocking ones are what closes the gate).\n"
      "# TYPE upgrade_guard_findings gauge\n"
      "upgrade_guard_findings{check=\"symlinks\",severity=\"info\",new=\"true\"} 0\n"
      "upgrade_guard_findings{check=\"symlinks\",severity=\"info\",new=\"false\"} 0\n"
      "upgrade_guard_findings{check=\"symlinks\",severity=\"warn\",new=\"true\"} 0\n"
      "upgrade_guard_findings{check=\"symlinks\",severity=\"warn\",new=\"false\"} 1\n"
      "upgrade_guard_findings{check=\"symlinks\",severity=\"block\",new=\"true\"} 1\n"
      "upgrade_guard_findings{check=\"symlinks\",severity=\"block\",new=\"false\"} 1\n"
      "upgrade_guard_findings{check=\"boot\",severity=\"info\",new=\"true\"} 0\n"
      "upgrade_guard_findings{check=\"boot\",severity=\"info\",new=\"false\"} 0\n"
      "upgrade_guard_findings{check=\"boot\",severity=\"warn\",new=\"true\"} 0\n"
      "upgrade_guard_findings{check=\"boot\",severity=\"warn\",new=\"false\"} 0\n"
      "upgrade_guard_findings{check=\"boot\",severity=\"block\",new=\"true\"} 0\n"
      "upgrade_guard_findings{check=\"boot\",severity=\"block\",new=\"false\"} 0\n"
      "# HELP upgrade_guard_check_error 1 when the check could not run to the end in the last audit (the audit "
      "then fails).\n"
      "# TYPE upgrade_guard_check_error gauge\n"
      "upgrade_guard_check_error{check=\"symlinks\"} 0\n"
      "upgrade_guard_check_error{check=\"boot\"} 1\n";
  EXPECT_EQ(render_textfile(small_report(), small_metrics()), expected);
}

TEST(PrometheusTest, EveryKnownCheckHasAllSixSeriesEvenWithoutFindings) {
  checks::Report empty;
  AuditMetrics m = small_metrics();
  m.check_ids = policies::known_check_ids();
  const std::string text = render_textfile(empty, m);
  for (const auto& id : policies::known_check_ids()) {
    for (const char* sev : {"info", "warn", "block"}) {
      for (const char* is_new : {"true", "false"}) {
        EXPECT_THAT(text, HasSubstr("upgrade_guard_findings{check=\"" + id + "\",severity=\"" + sev + "\",new=\"" +
                                    is_new + "\"} 0\n"));
      }
    }
  }
}

TEST(PrometheusTest, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("plain-id"), "plain-id");
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  // A check id from a report (say a future custom check) with a quote and a backslash.
  checks::Report r;
  r.findings.push_back(finding("we\"ird\\id", policies::Severity::warn, "/x", false));
  const std::string text = render_textfile(r, small_metrics());
  EXPECT_THAT(text, HasSubstr("upgrade_guard_findings{check=\"we\\\"ird\\\\id\",severity=\"warn\",new=\"true\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("we\"ird")));
}

TEST(PrometheusTest, WriteReplacesAtomicallyWithMode0644AndLeavesNoTempFile) {
  TempDir dir;
  const std::string path = dir / "upgrade-guard.prom";
  ASSERT_TRUE(write_textfile(path, "first 1\n"));
  ASSERT_TRUE(write_textfile(path, "second 2\n"));
  EXPECT_EQ(read_file(path), "second 2\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"upgrade-guard.prom"});
}

TEST(PrometheusTest, WriteIntoAMissingDirectoryNamesTheFile) {
  TempDir dir;
  auto r = write_textfile(dir / "missing/upgrade-guard.prom", "x 1\n");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().to_string(), HasSubstr("missing"));
}

}  // namespace
}  // namespace guard::audit
