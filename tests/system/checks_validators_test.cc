// The validators check on copies of the cached server roots (openssh-server installed), through
// the built binary: a healthy root passes sshd -t in the sandbox; an sshd_config sshd refuses is
// a blocking finding carrying sshd's own error; the same breakage already in the baseline is
// known, not blocking; a validator that hangs is killed at its timeout and reported. After each
// run the host's mount table is what it was: the sandbox leaves nothing behind.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/process.h"
#include "base/strings.h"
#include "tests/common/test_env.h"

namespace guard {
namespace {

using guard::testing::TempDir;
using nlohmann::json;

// The mount points of this process's namespace (mountinfo without the ids that change).
std::string mount_table() {
  std::ifstream in("/proc/self/mountinfo");
  std::string out;
  for (std::string line; std::getline(in, line);) {
    auto fields = base::split_ws(line);
    if (fields.size() > 4) out += std::string(fields[4]) + " " + std::string(fields[3]) + "\n";
  }
  return out;
}

class ValidatorsOnServerRoot : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!guard::testing::is_root()) {
      UG_SKIP_OR_FAIL("needs root to copy the root and build the sandbox");
    }
    auto built = guard::testing::run({std::string(UG_SOURCE_DIR) + "/scripts/test-root", GetParam()}, 3600);
    if (!built.ok()) {
      UG_SKIP_OR_FAIL(std::string("scripts/test-root ") + GetParam() + " failed: " + built.err);
    }
    root_ = dir_ / "root";
    auto cp = guard::testing::run({"cp", "-a", "--reflink=auto", std::string(base::trim(built.out)), root_}, 900);
    ASSERT_TRUE(cp.ok()) << cp.err;
    mounts_before_ = mount_table();
  }
  void TearDown() override {
    if (!root_.empty()) {
      EXPECT_EQ(mount_table(), mounts_before_) << "a mount was left behind";
    }
  }

  // `upgrade-guard --root ROOT --state-dir S check --checks validators --json ARGS...`.
  json check(const std::vector<std::string>& args, int* exit_code) {
    std::vector<std::string> argv = {"--root", root_, "--state-dir", dir_ / "state", "--log-dir", dir_ / "log"};
    if (!policy_.empty()) argv.insert(argv.end(), {"--policy", policy_});
    argv.insert(argv.end(), {"check", "--checks", "validators", "--json"});
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = guard::testing::run_guard(argv, 300);
    *exit_code = r.exit_code;
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  }
  void append(const std::string& rel, const std::string& text) {
    std::ofstream out(root_ + rel, std::ios::app);
    out << text;
  }

  TempDir dir_;
  std::string root_;
  std::string policy_;
  std::string mounts_before_;
};

const json* finding(const json& report, const std::string& id) {
  for (const auto& f : report.at("findings"))
    if (f.value("id", "") == id) return &f;
  return nullptr;
}

TEST_P(ValidatorsOnServerRoot, HealthySshdConfigPassesInTheSandbox) {
  int rc = -1;
  auto t0 = std::chrono::steady_clock::now();
  json j = check({}, &rc);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(rc, 0) << j.dump(2);
  EXPECT_TRUE(j.at("findings").empty()) << j.dump(2);
  ASSERT_EQ(j.at("checks").size(), 1u);
  EXPECT_EQ(j.at("checks")[0].at("status"), "passed") << j.dump(2);
  EXPECT_EQ(j.at("checks")[0].at("items"), 1) << "sshd -t ran";
  RecordProperty("wall_ms", std::to_string(ms));
  std::printf("validators check on %s: %lld ms\n", GetParam(), static_cast<long long>(ms));
}

TEST_P(ValidatorsOnServerRoot, AConfigSshdRefusesBlocksWithSshdsError) {
  append("/etc/ssh/sshd_config", "\nCiphers no-such-cipher\n");
  int rc = -1;
  json j = check({}, &rc);
  EXPECT_EQ(rc, 1) << j.dump(2);
  const json* f = finding(j, "validator:sshd");
  ASSERT_NE(f, nullptr) << j.dump(2);
  EXPECT_EQ(f->at("check"), "validators");
  EXPECT_EQ(f->at("path"), "/usr/sbin/sshd");
  EXPECT_EQ(f->at("severity"), "block");
  EXPECT_TRUE(f->at("blocking").get<bool>());
  const std::string message = f->at("message");
  EXPECT_NE(message.find("/etc/ssh/sshd_config line"), std::string::npos) << message;
  EXPECT_NE(message.find("no-such-cipher"), std::string::npos) << message;
}

TEST_P(ValidatorsOnServerRoot, ABreakageInTheBaselineIsKnownNotBlocking) {
  append("/etc/ssh/sshd_config", "\nNoSuchKeyword yes\n");
  int rc = -1;
  json saved = check({"--baseline", "save"}, &rc);
  EXPECT_EQ(rc, 1) << saved.dump(2);
  json compared = check({"--baseline", "compare"}, &rc);
  EXPECT_EQ(rc, 0) << compared.dump(2);
  const json* f = finding(compared, "validator:sshd");
  ASSERT_NE(f, nullptr) << compared.dump(2);
  EXPECT_TRUE(f->at("known").get<bool>());
  EXPECT_FALSE(f->at("blocking").get<bool>());

  // A validator that starts failing after the baseline blocks.
  std::ofstream(dir_ / "policy.toml") << "[[validator]]\nname = \"false\"\nprogram = \"/bin/false\"\n"
                                         "argv = [\"/bin/false\"]\n";
  policy_ = dir_ / "policy.toml";
  json later = check({"--baseline", "compare"}, &rc);
  EXPECT_EQ(rc, 1) << later.dump(2);
  const json* added = finding(later, "validator:false");
  ASSERT_NE(added, nullptr) << later.dump(2);
  EXPECT_TRUE(added->at("blocking").get<bool>());
}

TEST_P(ValidatorsOnServerRoot, AHangingValidatorIsKilledAtItsTimeoutAndReported) {
  std::ofstream(dir_ / "policy.toml") << "[[validator]]\nname = \"hang\"\nprogram = \"/usr/bin/sleep\"\n"
                                         "argv = [\"/usr/bin/sleep\", \"1000\"]\ntimeout = 2\n";
  policy_ = dir_ / "policy.toml";
  int rc = -1;
  auto t0 = std::chrono::steady_clock::now();
  json j = check({}, &rc);
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 30);
  EXPECT_EQ(rc, 0) << "a timeout warns: " << j.dump(2);
  const json* f = finding(j, "validator:hang");
  ASSERT_NE(f, nullptr) << j.dump(2);
  EXPECT_EQ(f->at("severity"), "warn");
  EXPECT_NE(f->at("message").get<std::string>().find("timed out after 2s"), std::string::npos) << f->dump();
  auto left = guard::testing::run({"pgrep", "-f", "^/usr/bin/sleep 1000$"});
  EXPECT_NE(left.exit_code, 0) << "the validator survived its timeout: " << left.out;
}

TEST_P(ValidatorsOnServerRoot, TheSandboxHasNoNetworkAReadOnlyRootAndItsOwnRun) {
  // A validator that reports what it sees, failing so that its output lands in the finding.
  std::ofstream(dir_ / "policy.toml")
      << "[[validator]]\nname = \"probe\"\nprogram = \"/bin/sh\"\nruntime_dirs = [\"/run/a/b\"]\n"
         "argv = [\"/bin/sh\", \"-c\", \"touch /etc/x 2>/dev/null && w=rw || w=ro; "
         "echo $w $(ls /run) $(ls /run/a) $(tail -n +3 /proc/net/dev | cut -d: -f1); echo $(ls /dev); "
         "echo $(env | sort); exit 3\"]\n";
  policy_ = dir_ / "policy.toml";
  int rc = -1;
  json j = check({}, &rc);
  const json* f = finding(j, "validator:probe");
  ASSERT_NE(f, nullptr) << j.dump(2);
  const std::string m = f->at("message");
  EXPECT_NE(m.find("exited with status 3: ro a b lo | fd full null random stderr stdin stdout urandom zero | "
                   "LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PWD=/"),
            std::string::npos)
      << m;
  EXPECT_FALSE(std::ifstream(root_ + "/etc/x").good());
}

TEST_P(ValidatorsOnServerRoot, OutputIsBoundedAndTheRootStaysUntouched) {
  base::SystemCommandRunner runner;
  base::Command cmd;
  cmd.argv = {"/bin/sh", "-c", "head -c 10000000 /dev/zero | tr '\\0' x; mkdir /run/made /tmp/made; echo done; exit 4"};
  cmd.chroot = root_;
  cmd.sandbox = base::Sandbox{{"/run/x"}};
  cmd.timeout = std::chrono::seconds(60);
  auto r = runner.run(cmd);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->exit_code, 4);
  EXPECT_EQ(r->out.size(), base::kSandboxOutputMax);  // the rest was refused, not buffered
  EXPECT_EQ(r->out.substr(0, 3), "xxx");
  EXPECT_FALSE(std::ifstream(root_ + "/run/made").good());
  EXPECT_FALSE(std::ifstream(root_ + "/run/x").good());
  EXPECT_FALSE(std::ifstream(root_ + "/tmp/made").good());
}

// A validator's memory is bounded: sshd -t on an /etc/passwd that was /dev/zero grew to 10 GB
// before its timeout. The limit is in the sandboxed process's own view, and an allocation past
// it fails there instead of on the host.
TEST_P(ValidatorsOnServerRoot, AValidatorsAddressSpaceIsLimited) {
  base::SystemCommandRunner runner;
  base::Command cmd;
  cmd.argv = {"/bin/sh", "-c",
              "grep 'Max address space' /proc/self/limits; head -c 5000000000 /dev/zero | tail -c 4500000000 "
              ">/dev/null && echo allocated || echo refused"};
  cmd.chroot = root_;
  cmd.sandbox = base::Sandbox{{}};
  cmd.timeout = std::chrono::seconds(120);
  auto r = runner.run(cmd);
  ASSERT_TRUE(r) << r.error().to_string();
  const std::string limit = std::to_string(base::kSandboxAddressSpaceMax);
  const std::string line = r->out.substr(0, r->out.find('\n'));
  EXPECT_EQ(line.rfind("Max address space", 0), 0U) << r->out;
  EXPECT_NE(line.find(" " + limit + " "), std::string::npos) << line;  // soft
  EXPECT_NE(line.find(limit, line.find(limit) + limit.size()), std::string::npos) << line;  // hard
  EXPECT_NE(r->out.find("refused"), std::string::npos) << r->out;
}

INSTANTIATE_TEST_SUITE_P(Roots, ValidatorsOnServerRoot, ::testing::Values("server", "trixie-server"),
                         [](const auto& info) { return std::string(info.param) == "server" ? "bookworm" : "trixie"; });

}  // namespace
}  // namespace guard
