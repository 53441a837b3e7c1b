// The apt-hooks, login-shells and interpreters checks on real debootstrapped Debian roots
// (scripts/test-root): no blocking finding on the healthy bookworm and trixie roots, and after
// a real breakage in a copy of the server root, `upgrade-guard --root COPY check --json` exits 1
// with the blocking finding naming the file and line (and the breakage is shown to be real).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "checks/check.h"
#include "tests/common/test_env.h"

namespace guard::checks {
namespace {

using guard::testing::TempDir;
using guard::testing::write_file;

const std::vector<std::string> kChecks = {"apt-hooks", "login-shells", "interpreters"};

// The cached root `variant` (built or waited for by scripts/test-root); "" when it cannot be had.
std::string cached_root(const std::string& variant, std::string* why) {
  auto built = guard::testing::run({std::string(UG_SOURCE_DIR) + "/scripts/test-root", variant}, 3600);
  if (!built.ok()) {
    *why = "scripts/test-root " + variant + " failed: " + built.err;
    return "";
  }
  return std::string(base::trim(built.out));
}

class ConfrefsExecHealthy : public ::testing::TestWithParam<std::string> {};

// Read-only on the cached root itself: the checks only read.
TEST_P(ConfrefsExecHealthy, NoBlockingFinding) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("reads /etc/shadow of a debootstrapped root: needs root");
  std::string why;
  std::string dir = cached_root(GetParam(), &why);
  ASSERT_FALSE(dir.empty()) << why;
  auto root = base::Root::open(dir);
  ASSERT_TRUE(root) << root.error().to_string();
  policies::Policy policy;
  CheckContext ctx{*root, policy, {}, nullptr, false, {}, {}, {}};
  auto report = run_checks(ctx, kChecks);
  ASSERT_TRUE(report) << report.error().to_string();
  std::string text;
  for (const auto& f : report->findings) text += f.check + " " + f.path + ": " + f.message + "\n";
  EXPECT_EQ(report->blocking_count(), 0u) << text;
  ASSERT_EQ(report->checks.size(), 3u);
  for (const auto& c : report->checks) {
    EXPECT_EQ(c.status, CheckStatus::passed) << c.id << ": " << c.note << "\n" << text;
    EXPECT_GT(c.items, 0u) << c.id;
  }
}

INSTANTIATE_TEST_SUITE_P(Roots, ConfrefsExecHealthy,
                         ::testing::Values("minbase", "server", "trixie-minbase", "trixie-server"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

struct Undo {
  std::function<void()> fn;
  ~Undo() { fn(); }
};

class ConfrefsExecServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!guard::testing::is_root()) return;
    dir_ = std::make_unique<TempDir>("ug-confrefs-exec");
    std::string src = cached_root("server", &why_);
    if (src.empty()) return;
    root_ = *dir_ / "server";
    auto cp = guard::testing::run({"cp", "-a", "--reflink=auto", src, root_}, 900);
    if (!cp.ok()) why_ = "cp -a failed: " + cp.err, root_.clear();
  }
  static void TearDownTestSuite() { dir_.reset(); }
  void SetUp() override {
    if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("copies a debootstrapped root with owners intact: needs root");
    ASSERT_FALSE(root_.empty()) << why_;
  }
  static std::string p(const std::string& rel) { return root_ + rel; }

  // `upgrade-guard --root COPY check --json`: its exit code and the blocking finding of `check`
  // on `path` (null when none).
  static nlohmann::json check_json(int* exit_code) {
    TempDir state("ug-confrefs-state");
    auto r = guard::testing::run({guard::testing::binary(), "--root", root_, "--state-dir", state.path(), "check",
                                  "--json"},
                                 900);
    *exit_code = r.exit_code;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  static const nlohmann::json* blocking(const nlohmann::json& j, const std::string& check, const std::string& path) {
    if (!j.is_object() || !j.contains("findings")) return nullptr;
    for (const auto& f : j["findings"])
      if (f.value("check", "") == check && f.value("path", "") == path && f.value("blocking", false)) return &f;
    return nullptr;
  }

  // Runs the check, expects exit 1 and a blocking finding of `check` on `path`, and returns it
  // (null when there is none).
  static nlohmann::json expect_blocking(const std::string& check, const std::string& path) {
    int rc = 0;
    auto j = check_json(&rc);
    EXPECT_EQ(rc, 1) << j.dump(2);
    const auto* f = blocking(j, check, path);
    EXPECT_NE(f, nullptr) << j.dump(2);
    return f != nullptr ? *f : nlohmann::json();
  }
  // Writes a file into the copy, removed again when the returned Undo goes.
  static Undo add_file(const std::string& rel, const std::string& text, mode_t mode = 0644) {
    write_file(p(rel), text, mode);
    return Undo{[rel] { std::filesystem::remove(p(rel)); }};
  }

  static inline std::unique_ptr<TempDir> dir_;
  static inline std::string root_;
  static inline std::string why_;
};

TEST_F(ConfrefsExecServer, AptHookNamingARemovedProgramBlocks) {
  const std::string conf = "/etc/apt/apt.conf.d/99gone-tool";
  Undo undo = add_file(conf, "// added by the test\nAPT::Update::Pre-Invoke {\"/usr/bin/gone-tool\";};\n");
  auto f = expect_blocking("apt-hooks", conf);
  ASSERT_FALSE(f.is_null());
  EXPECT_EQ(f.value("message", "").rfind("line 2: APT::Update::Pre-Invoke runs /usr/bin/gone-tool", 0), 0u) << f.dump();
  // Real: apt runs the hook before it fetches anything and fails (network or not).
  auto apt = guard::testing::run({"chroot", root_, "apt-get", "-o", "Acquire::Retries=0", "-o",
                                  "Acquire::http::Timeout=5", "update"},
                                 300);
  EXPECT_NE(apt.exit_code, 0);
  EXPECT_NE((apt.out + apt.err).find("Problem executing scripts APT::Update::Pre-Invoke '/usr/bin/gone-tool'"),
            std::string::npos)
      << apt.out << apt.err;
}

TEST_F(ConfrefsExecServer, AptSyntaxErrorBlocks) {
  const std::string conf = "/etc/apt/apt.conf.d/98broken";
  Undo undo = add_file(conf, "APT::Get::Assume-Yes \"true\";\nAPT::Get::Fix-Broken \"true\" oops;\n");
  auto f = expect_blocking("apt-hooks", conf);
  ASSERT_FALSE(f.is_null());
  EXPECT_EQ(f.value("message", "").rfind("line 2: ", 0), 0u) << f.dump();
  // Real: apt refuses the same file at the same line.
  auto apt = guard::testing::run({"chroot", root_, "apt-config", "dump"}, 60);
  EXPECT_NE(apt.exit_code, 0);
  EXPECT_NE(apt.err.find("Syntax error " + conf + ":2"), std::string::npos) << apt.err;
}

TEST_F(ConfrefsExecServer, RootsMissingLoginShellBlocks) {
  std::string passwd = guard::testing::read_file(p("/etc/passwd"));
  Undo undo{[&] { write_file(p("/etc/passwd"), passwd); }};
  std::string changed = passwd;
  std::size_t at = changed.find(":/root:/bin/bash");
  ASSERT_NE(at, std::string::npos) << passwd;
  changed.replace(at, 16, ":/root:/usr/bin/zsh");
  write_file(p("/etc/passwd"), changed);
  ASSERT_FALSE(std::filesystem::exists(p("/usr/bin/zsh")));
  auto f = expect_blocking("login-shells", "/etc/passwd");
  ASSERT_FALSE(f.is_null());
  EXPECT_EQ(f.value("message", ""), "line 1: user root: login shell /usr/bin/zsh is not installed");
  EXPECT_EQ(f.value("id", ""), "shell:root");
  // Real: a login as root cannot start its shell.
  auto su = guard::testing::run({"chroot", root_, "su", "-l", "root", "-c", "true"}, 60);
  EXPECT_NE(su.exit_code, 0) << su.out << su.err;
}

TEST_F(ConfrefsExecServer, EnabledUnitScriptWithMissingInterpreterBlocks) {
  const std::string script = "/usr/local/sbin/ug-test-daemon";
  const std::string unit = "/etc/systemd/system/ug-test.service";
  const std::string link = "/etc/systemd/system/multi-user.target.wants/ug-test.service";
  Undo undo_script = add_file(script, "#!/usr/bin/perl-missing -w\nsleep 1;\n", 0755);
  Undo undo_unit = add_file(unit, "[Unit]\nDescription=test\n\n[Service]\nExecStart=" + script +
                                      " --foreground\n\n[Install]\nWantedBy=multi-user.target\n");
  std::filesystem::create_symlink(unit, p(link));
  Undo undo_link{[&] { std::filesystem::remove(p(link)); }};
  auto f = expect_blocking("interpreters", script);
  ASSERT_FALSE(f.is_null());
  std::string msg = f.value("message", "");
  EXPECT_EQ(msg.rfind("line 1: interpreter /usr/bin/perl-missing does not exist", 0), 0u) << msg;
  EXPECT_NE(msg.find(unit + " line 5: ExecStart= of the enabled unit ug-test.service"), std::string::npos) << msg;
  // Real: the program cannot be executed.
  auto run = guard::testing::run({"chroot", root_, script}, 60);
  EXPECT_NE(run.exit_code, 0);
}

}  // namespace
}  // namespace guard::checks
