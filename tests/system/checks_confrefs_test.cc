// The pam, nss and preload checks on real debootstrapped roots (scripts/test-root): no
// blocking finding on the healthy bookworm and trixie roots, and in a copy of the server root
// the blocking finding naming the configuration file and line after each breakage, through the
// CLI (`upgrade-guard --root COPY --json check` exits 1).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/root.h"
#include "base/strings.h"
#include "checks/check.h"
#include "tests/common/test_env.h"
#include "tests/system/guarded_root.h"

namespace guard::checks {
namespace {

using guard::testing::TempDir;

const std::vector<std::string> kConfigChecks = {"pam", "nss", "preload", "libraries"};

std::string cached_root(const std::string& variant, std::string& why) {
  auto r = guard::testing::run({std::string(UG_SOURCE_DIR) + "/scripts/test-root", variant}, 3600);
  if (r.exit_code != 0) why = "scripts/test-root " + variant + " failed: " + r.err;
  return r.exit_code == 0 ? std::string(base::trim(r.out)) : std::string();
}

// Healthy roots are only read (every path through base::Root): no copy needed.
class ChecksConfigHealthy : public ::testing::TestWithParam<std::string> {};

TEST_P(ChecksConfigHealthy, NoBlockingFinding) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("reads debootstrapped roots with root-only files: needs root");
  std::string why;
  std::string dir = cached_root(GetParam(), why);
  ASSERT_FALSE(dir.empty()) << why;
  auto root = base::Root::open(dir);
  ASSERT_TRUE(root) << root.error().to_string();
  policies::Policy policy;
  CheckContext ctx{*root, policy, {}, nullptr, false, {}, {}, {}};
  auto r = run_checks(ctx, kConfigChecks);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->blocking_count(), 0u) << render_human(*r, false);
  for (const auto& c : r->checks) {
    EXPECT_NE(c.status, CheckStatus::error) << c.id << ": " << c.note;
    EXPECT_TRUE(c.note.empty()) << c.id << " skipped: " << c.note;
    if (c.id == "pam" || c.id == "nss") {
      EXPECT_GT(c.items, 0u) << c.id;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Roots, ChecksConfigHealthy,
                         ::testing::Values("minbase", "server", "trixie-minbase", "trixie-server"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

class ChecksConfigServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!guard::testing::is_root()) return;
    std::string src = cached_root("server", why_);
    if (src.empty()) return;
    dir_ = std::make_unique<TempDir>("ug-confrefs");
    auto cp = guard::testing::run({"cp", "-a", "--reflink=auto", src, *dir_ / "root"}, 1800);
    if (cp.exit_code != 0) {
      why_ = "cp -a failed: " + cp.err;
      return;
    }
    root_ = *dir_ / "root";
  }
  static void TearDownTestSuite() { dir_.reset(); }
  // Each breakage registers its repair, run after the test even when it fails, so no breakage
  // leaks into the next test.
  void TearDown() override {
    for (auto it = repairs_.rbegin(); it != repairs_.rend(); ++it) (*it)();
  }
  void SetUp() override {
    if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("copies a debootstrapped root with owners intact: needs root");
    ASSERT_FALSE(root_.empty()) << why_;
  }
  static std::string p(const std::string& rel) { return root_ + rel; }

  // `upgrade-guard --root COPY --json check [--checks ids]`: its exit code and JSON.
  static std::pair<int, nlohmann::json> guard_check(const std::string& checks = "") {
    TempDir state("ug-confrefs-state");
    std::vector<std::string> args{"--root", root_, "--state-dir", state.path(), "--json", "check"};
    if (!checks.empty()) args.insert(args.end(), {"--checks", checks});
    auto r = guard::testing::run_guard(args, 900);
    return {r.exit_code, guard::testing::parse_json(r)};
  }
  // The first blocking finding of `check` at `path`, or null.
  static nlohmann::json blocking(const nlohmann::json& report, const std::string& check, const std::string& path) {
    for (const auto& f : report["findings"])
      if (f["check"] == check && f["path"] == path && f["severity"] == "block" && !f.value("known", false)) return f;
    return nullptr;
  }

  // The 1-based number of the first line of `file` (host path) containing `text`, or 0.
  static std::size_t line_with(const std::string& file, const std::string& text) {
    std::ifstream in(file);
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n)
      if (line.find(text) != std::string::npos && line.find('#') != 0) return n;
    return 0;
  }

  std::vector<std::function<void()>> repairs_;
  static inline std::unique_ptr<TempDir> dir_;
  static inline std::string root_;
  static inline std::string why_;
};

TEST_F(ChecksConfigServer, RemovedPamUnixBlocksNamingCommonAuthAndItsLine) {
  const std::string mod = "/usr/lib/x86_64-linux-gnu/security/pam_unix.so";
  std::filesystem::rename(p(mod), p(mod + ".away"));
  repairs_.push_back([=] { std::filesystem::rename(p(mod + ".away"), p(mod)); });
  std::size_t line = line_with(p("/etc/pam.d/common-auth"), "pam_unix.so");
  ASSERT_GT(line, 0u);
  auto [code, report] = guard_check();  // every check, as an administrator runs it
  EXPECT_EQ(code, 1) << report.dump(1);
  auto f = blocking(report, "pam", "/etc/pam.d/common-auth");
  ASSERT_FALSE(f.is_null()) << report.dump(1);
  std::string msg = f["message"];
  EXPECT_EQ(msg.rfind("line " + std::to_string(line) + ": auth ", 0), 0u) << msg;
  EXPECT_NE(msg.find(mod + " is not installed"), std::string::npos) << msg;
  EXPECT_EQ(f["id"], "module:pam_unix.so");
  EXPECT_NE(std::string(f["hint"]).find("apt-get install --reinstall libpam-modules"), std::string::npos) << f["hint"];
}

TEST_F(ChecksConfigServer, LdapInPasswdWithoutItsModuleBlocks) {
  const std::string conf = p("/etc/nsswitch.conf");
  std::string before = guard::testing::read_file(conf);
  repairs_.push_back([=] { guard::testing::write_file(conf, before); });
  std::string after;
  std::size_t line = 0, n = 0;
  for (auto l : base::split(before, '\n')) {
    ++n;
    std::string s(l);
    if (s.rfind("passwd:", 0) == 0) {
      s += " ldap";
      line = n;
    }
    after += s + (n < base::split(before, '\n').size() ? "\n" : "");
  }
  ASSERT_GT(line, 0u);
  guard::testing::write_file(conf, after);
  auto [code, report] = guard_check("nss");
  EXPECT_EQ(code, 1) << report.dump(1);
  auto f = blocking(report, "nss", "/etc/nsswitch.conf");
  ASSERT_FALSE(f.is_null()) << report.dump(1);
  std::string msg = f["message"];
  EXPECT_EQ(msg.rfind("line " + std::to_string(line) + ": passwd: files ldap: libnss_ldap.so.2 is not installed", 0),
            0u)
      << msg;
  EXPECT_EQ(f["id"], "passwd:ldap");
}

TEST_F(ChecksConfigServer, PreloadOfAMissingLibraryBlocks) {
  guard::testing::write_file(p("/etc/ld.so.preload"), "# added by a vendor agent\n/usr/lib/libvendorhook.so\n");
  repairs_.push_back([] { std::filesystem::remove(p("/etc/ld.so.preload")); });
  auto [code, report] = guard_check("preload");
  EXPECT_EQ(code, 1) << report.dump(1);
  auto f = blocking(report, "preload", "/etc/ld.so.preload");
  ASSERT_FALSE(f.is_null()) << report.dump(1);
  EXPECT_EQ(std::string(f["message"]).rfind("line 2: /usr/lib/libvendorhook.so: ", 0), 0u) << f["message"];
}

TEST_F(ChecksConfigServer, PreloadedLibraryWhoseDependencyIsGoneBlocks) {
  // A real package's library, preloaded, then its dependency removed: every program would die.
  const std::string dep = "/usr/lib/x86_64-linux-gnu/libaudit.so.1.0.0";
  ASSERT_TRUE(std::filesystem::exists(p(dep)));
  guard::testing::write_file(p("/etc/ld.so.preload"), "/usr/lib/x86_64-linux-gnu/libpam.so.0\n");
  std::filesystem::rename(p(dep), p(dep + ".away"));
  repairs_.push_back([=] {
    std::filesystem::rename(p(dep + ".away"), p(dep));
    std::filesystem::remove(p("/etc/ld.so.preload"));
  });
  auto [code, report] = guard_check("preload");
  EXPECT_EQ(code, 1) << report.dump(1);
  auto f = blocking(report, "preload", "/etc/ld.so.preload");
  ASSERT_FALSE(f.is_null()) << report.dump(1);
  EXPECT_NE(std::string(f["message"]).find("needs libaudit.so.1"), std::string::npos) << f["message"];
}

}  // namespace
}  // namespace guard::checks
