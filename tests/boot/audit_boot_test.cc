// The scheduled audit on a real booted Debian 12 (systemd 252) in systemd-nspawn: the timer is
// listed, its service runs the audit, the node-exporter textfile appears, the journal has the
// structured entry, and a new blocking finding fails the unit and closes the gate. One boot.
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "tests/boot/nspawn.h"
#include "tests/common/test_env.h"

namespace guard::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTextfileDir = "/var/lib/prometheus/node-exporter";
constexpr const char* kTextfile = "/var/lib/prometheus/node-exporter/upgrade-guard.prom";
constexpr const char* kAuditMessageId = "7d3c9a41e2b84f6c8e05a1b9c4d2f630";

class AuditBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) UG_SKIP_OR_FAIL("needs root to boot a container with systemd-nspawn");
    if (!fs::exists("/usr/bin/systemd-nspawn") || !fs::exists("/usr/bin/nsenter"))
      UG_SKIP_OR_FAIL("needs systemd-nspawn and nsenter (apt-get install systemd-container util-linux)");
    auto root = prepare_boot_root(tmp_.path());
    ASSERT_TRUE(root) << root.error().to_string();
    root_dir_ = *root;
  }

  void boot() {
    auto box = BootedContainer::boot(root_dir_, "ug-audit-" + std::to_string(::getpid()), tmp_ / "console.log");
    ASSERT_TRUE(box) << box.error().to_string();
    box_ = std::move(*box);
    std::printf("[ boot     ] running after %lld ms\n", static_cast<long long>(box_->boot_time().count()));
  }

  base::ProcessResult exec(const std::vector<std::string>& argv, int timeout = 60) { return box_->exec(argv, timeout); }
  std::string output(const std::vector<std::string>& argv) { return std::string(base::trim(exec(argv).out)); }
  std::string unit_log() { return exec({"journalctl", "-u", "upgrade-guard-audit.service", "--no-pager"}).out; }

  // Starts the audit service and waits for it (a oneshot: start returns when it has run).
  base::ProcessResult start_audit() {
    auto start = std::chrono::steady_clock::now();
    auto r = exec({"systemctl", "start", "upgrade-guard-audit.service"}, 900);
    std::printf("[ audit    ] the service ran in %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - start)
                                           .count()));
    return r;
  }

  // The container's textfile, read from the host through the container's root.
  std::string textfile() { return read_file(root_dir_ + kTextfile); }

  // The newest audit journal entry's fields, e.g. at("UG_FINDINGS_NEW") == "0".
  nlohmann::json last_audit_entry() {
    auto r = exec({"journalctl", std::string("MESSAGE_ID=") + kAuditMessageId, "-o", "json", "-n", "1", "--no-pager"});
    try {
      return nlohmann::json::parse(base::trim(r.out));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "no audit journal entry: " << e.what() << "\n" << r.out << r.err;
      return nlohmann::json::object();
    }
  }

  TempDir tmp_{"ug-boot-audit"};
  std::string root_dir_;
  std::unique_ptr<BootedContainer> box_;  // declared after tmp_: ended before the dir goes
};

TEST_F(AuditBootTest, TheTimerRunsTheAuditWhichWritesTheTextfileAndFailsOnANewBlockingFinding) {
  make_dirs(root_dir_ + kTextfileDir, 0755);  // as Debian's prometheus-node-exporter leaves it
  ASSERT_NO_FATAL_FAILURE(boot());

  EXPECT_EQ(output({"systemctl", "is-enabled", "upgrade-guard-audit.timer"}), "enabled");
  EXPECT_EQ(output({"systemctl", "is-active", "upgrade-guard-audit.timer"}), "active");
  auto timers = exec({"systemctl", "list-timers", "--all", "--no-pager"});
  EXPECT_NE(timers.out.find("upgrade-guard-audit.timer"), std::string::npos) << timers.out;
  EXPECT_NE(timers.out.find("upgrade-guard-audit.service"), std::string::npos) << timers.out;
  // systemd 252 accepts every directive of both units.
  auto verify = exec({"systemd-analyze", "verify", "--man=no", "/etc/systemd/system/upgrade-guard-audit.service",
                      "/etc/systemd/system/upgrade-guard-audit.timer"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(verify.err.find("upgrade-guard-audit"), std::string::npos) << verify.err;
  EXPECT_EQ(output({"systemctl", "show", "-P", "Nice", "upgrade-guard-audit.service"}), "19");
  EXPECT_EQ(output({"systemctl", "show", "-P", "IOSchedulingClass", "upgrade-guard-audit.service"}), "3");

  // The healthy root's findings accepted, the service's audit passes and writes the textfile.
  auto accepted = exec({"upgrade-guard", "baseline", "accept"}, 900);
  ASSERT_EQ(accepted.exit_code, 0) << accepted.out << accepted.err;
  auto clean = start_audit();
  EXPECT_EQ(clean.exit_code, 0) << clean.err << unit_log();
  EXPECT_EQ(output({"systemctl", "show", "-P", "Result", "upgrade-guard-audit.service"}), "success");
  std::string text = textfile();
  EXPECT_NE(text.find("# TYPE upgrade_guard_last_audit_timestamp_seconds gauge\nupgrade_guard_last_audit_timestamp_seconds "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("upgrade_guard_audit_baseline 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("upgrade_guard_gate_closed 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("upgrade_guard_findings{check=\"package-hashes\",severity=\"block\",new=\"true\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("upgrade_guard_audit_duration_seconds "), std::string::npos) << text;
  auto entry = last_audit_entry();
  EXPECT_EQ(entry.value("UG_FINDINGS_BLOCKING", ""), "0") << entry.dump();
  EXPECT_EQ(entry.value("UG_GATE_CLOSED", ""), "0") << entry.dump();

  // A library removed by hand since: the next audit fails the unit and closes the gate.
  exec({"ln", "-s", "/nonexistent/libgone.so.1", "/usr/lib/x86_64-linux-gnu/libgone.so.1"});
  auto broken = start_audit();
  EXPECT_NE(broken.exit_code, 0) << "systemctl start of a failing oneshot fails";
  EXPECT_EQ(output({"systemctl", "is-failed", "upgrade-guard-audit.service"}), "failed") << unit_log();
  EXPECT_NE(exec({"systemctl", "--failed", "--no-pager"}).out.find("upgrade-guard-audit.service"), std::string::npos);
  auto status = exec({"upgrade-guard", "gate", "status"});
  EXPECT_EQ(status.exit_code, 1) << status.out;
  EXPECT_NE(status.out.find("by audit"), std::string::npos) << status.out;
  text = textfile();
  EXPECT_NE(text.find("upgrade_guard_findings{check=\"symlinks\",severity=\"block\",new=\"true\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("upgrade_guard_gate_closed 1\n"), std::string::npos) << text;
  entry = last_audit_entry();
  EXPECT_EQ(entry.value("UG_FINDINGS_BLOCKING", ""), "1") << entry.dump();
  EXPECT_EQ(entry.value("UG_GATE_CLOSED", ""), "1") << entry.dump();
  EXPECT_EQ(entry.value("SYSLOG_IDENTIFIER", ""), "upgrade-guard") << entry.dump();

  // No stray temp file for node-exporter to trip over.
  for (const auto& e : fs::directory_iterator(root_dir_ + kTextfileDir))
    EXPECT_EQ(e.path().filename(), "upgrade-guard.prom");
}

}  // namespace
}  // namespace guard::testing
