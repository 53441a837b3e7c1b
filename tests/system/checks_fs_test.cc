// The symlinks, libraries and critical checks on real debootstrapped Debian 12 roots
// (scripts/test-root), copied into a temp dir: zero blocking findings when healthy, and the
// right blocking finding after each kind of breakage.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "checks/check.h"
#include "tests/common/test_env.h"

namespace guard::checks {
namespace {

using guard::testing::TempDir;

// Copies the cached root `variant` (building it if needed) into a temp dir; "" when it cannot.
std::string copy_root(const TempDir& dir, const std::string& variant, std::string* why) {
  auto built = guard::testing::run({std::string(UG_SOURCE_DIR) + "/scripts/test-root", variant}, 1800);
  if (!built.ok()) {
    *why = "scripts/test-root " + variant + " failed: " + built.err;
    return "";
  }
  std::string src = std::string(base::trim(built.out));
  std::string dst = dir / variant;
  auto cp = guard::testing::run({"cp", "-a", "--reflink=auto", src, dst}, 900);
  if (!cp.ok()) {
    *why = "cp -a failed: " + cp.err;
    return "";
  }
  return dst;
}

Report run_fs_checks(const std::string& root_dir) {
  auto root = base::Root::open(root_dir);
  EXPECT_TRUE(root) << root.error().to_string();
  policies::Policy policy;  // defaults: every check blocks, default scan paths
  CheckContext ctx{*root, policy, {}, nullptr, false, {}, {}, {}};
  auto report = run_checks(ctx, {"libraries", "symlinks", "critical"});
  EXPECT_TRUE(report) << report.error().to_string();
  return report ? *report : Report{};
}

std::string blocking_text(const Report& r) {
  std::string out;
  for (const auto& f : r.findings)
    if (is_blocking(f)) out += f.check + " " + f.path + ": " + f.message + "\n";
  for (const auto& c : r.checks)
    if (c.status == CheckStatus::error) out += "check " + c.id + " errored: " + c.note + "\n";
  return out;
}

const Finding* find_blocking(const Report& r, const std::string& check, const std::string& path) {
  for (const auto& f : r.findings)
    if (f.check == check && f.path == path && is_blocking(f)) return &f;
  return nullptr;
}

// Runs `undo` when it goes out of scope, so one breakage never leaks into the next test.
struct Undo {
  std::function<void()> fn;
  ~Undo() { fn(); }
};

class ChecksFsServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!guard::testing::is_root()) return;
    dir_ = std::make_unique<TempDir>("ug-checks-fs");
    root_ = copy_root(*dir_, "server", &why_);
  }
  static void TearDownTestSuite() { dir_.reset(); }
  void SetUp() override {
    if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("copies a debootstrapped root with owners intact: needs root");
    ASSERT_FALSE(root_.empty()) << why_;
  }
  static std::string p(const std::string& rel) { return root_ + rel; }

  static inline std::unique_ptr<TempDir> dir_;
  static inline std::string root_;
  static inline std::string why_;
};

TEST(ChecksFsMinbase, HealthyRootHasNoBlockingFindings) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("copies a debootstrapped root with owners intact: needs root");
  TempDir dir("ug-checks-fs");
  std::string why;
  std::string root = copy_root(dir, "minbase", &why);
  ASSERT_FALSE(root.empty()) << why;
  Report r = run_fs_checks(root);
  EXPECT_EQ(r.blocking_count(), 0u) << blocking_text(r);
  ASSERT_EQ(r.checks.size(), 3u);
  for (const auto& c : r.checks) EXPECT_GT(c.items, 0u) << c.id;
}

TEST_F(ChecksFsServer, HealthyRootHasNoBlockingFindings) {
  Report r = run_fs_checks(root_);
  EXPECT_EQ(r.blocking_count(), 0u) << blocking_text(r);
  EXPECT_EQ(r.verdict, Verdict::pass);
  for (const auto& c : r.checks) EXPECT_NE(c.status, CheckStatus::error) << c.id << ": " << c.note;
}

TEST_F(ChecksFsServer, DeletedLibraryIsFound) {
  const std::string lib = "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13";
  std::filesystem::rename(p(lib), p(lib + ".away"));
  Undo undo{[&] { std::filesystem::rename(p(lib + ".away"), p(lib)); }};
  Report r = run_fs_checks(root_);
  EXPECT_NE(find_blocking(r, "symlinks", "/usr/lib/x86_64-linux-gnu/libz.so.1"), nullptr) << blocking_text(r);
  bool needs_libz = false;
  for (const auto& f : r.findings) needs_libz |= f.check == "libraries" && f.id == "needed:libz.so.1" && is_blocking(f);
  EXPECT_TRUE(needs_libz) << blocking_text(r);
  EXPECT_NE(find_blocking(r, "critical", "/usr/bin/apt-get"), nullptr) << blocking_text(r);  // through libapt-pkg
  EXPECT_EQ(r.verdict, Verdict::fail);
}

// A stub of the shared library at `real` (same soname, same version definitions, every exported
// function as an empty one) that lacks `drop`, compiled into `out`.
bool build_stub_without(const std::string& real, const std::string& soname, const std::string& drop,
                        const std::string& out, std::string* log) {
  auto nm = guard::testing::run({"nm", "-D", "--defined-only", real}, 60);
  if (!nm.ok()) {
    *log = "nm failed: " + nm.err;
    return false;
  }
  std::string source;
  std::map<std::string, std::vector<std::string>> nodes;  // version -> its symbols
  for (auto line : base::split(nm.out, '\n')) {
    auto f = base::split_ws(line);
    if (f.size() != 3) continue;
    std::string sym(f[2]), ver;
    if (auto at = sym.find('@'); at != std::string::npos) {
      ver = sym.substr(sym.find_first_not_of('@', at));
      sym = sym.substr(0, at);
    }
    if (f[1] == "A") {
      nodes[sym];
      continue;
    }
    if (sym == drop) continue;
    source += "void " + sym + "(void) {}\n";
    if (!ver.empty()) nodes[ver].push_back(sym);
  }
  std::string map;
  for (const auto& [v, syms] : nodes) {
    map += v + " { global: ";
    for (const auto& s : syms) map += s + "; ";
    map += "};\n";
  }
  guard::testing::write_file(out + ".map", map);
  return guard::testing::compile_c(source, out, {"-shared", "-fPIC", "-Wl,-soname," + soname,
                                                 "-Wl,--version-script," + out + ".map"},
                                   log);
}

// libz.so.1 replaced by a stub with its soname and versions but without gzdopen, which dpkg-deb
// (linked with BIND_NOW) imports: ld.so refuses to start it, and the libraries check says so.
TEST_F(ChecksFsServer, LibraryLosingASymbolIsFound) {
  const std::string lib = "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13";
  TempDir build("ug-stub");
  std::string log;
  ASSERT_TRUE(build_stub_without(p(lib), "libz.so.1", "gzdopen", build / "libz.so.1", &log)) << log;
  std::filesystem::rename(p(lib), p(lib + ".away"));
  Undo undo{[&] {
    std::filesystem::remove(p(lib));
    std::filesystem::rename(p(lib + ".away"), p(lib));
  }};
  std::filesystem::copy_file(build / "libz.so.1", p(lib));

  // Real: the dynamic linker fails to start the program.
  auto ran = guard::testing::run({"chroot", root_, "/usr/bin/dpkg-deb", "--version"}, 60);
  EXPECT_FALSE(ran.ok()) << ran.out;
  EXPECT_NE((ran.out + ran.err).find("undefined symbol: gzdopen"), std::string::npos) << ran.out << ran.err;

  TempDir state("ug-stub-state");
  auto r = guard::testing::run(
      {UG_BINARY, "--root", root_, "check", "--checks", "libraries", "--json", "--state-dir", state.path()}, 600);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto json = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << r.out;
  bool found = false;
  for (const auto& f : json["findings"]) {
    if (f["severity"] != "block") continue;
    // Nothing but the missing gzdopen blocks: the stub keeps every other symbol and version.
    EXPECT_EQ(f["id"], "symbol:gzdopen") << f.dump();
    if (f["path"] == "/usr/bin/dpkg-deb") {
      found = true;
      EXPECT_NE(f["message"].get<std::string>().find("undefined symbol gzdopen (needed by /usr/bin/dpkg-deb)"),
                std::string::npos)
          << f.dump();
      EXPECT_NE(f["message"].get<std::string>().find("fails to start"), std::string::npos) << f.dump();
    }
  }
  EXPECT_TRUE(found) << r.out;
}

TEST_F(ChecksFsServer, SonameLinkIntoNowhereIsFound) {
  const std::string link = "/usr/lib/x86_64-linux-gnu/libzstd.so.1";
  std::string old = std::filesystem::read_symlink(p(link)).string();
  std::filesystem::remove(p(link));
  std::filesystem::create_symlink("libzstd.so.1.9.99", p(link));
  Undo undo{[&] {
    std::filesystem::remove(p(link));
    std::filesystem::create_symlink(old, p(link));
  }};
  Report r = run_fs_checks(root_);
  const Finding* f = find_blocking(r, "symlinks", link);
  ASSERT_NE(f, nullptr) << blocking_text(r);
  bool needs = false;
  for (const auto& g : r.findings) needs |= g.check == "libraries" && g.id == "needed:libzstd.so.1" && is_blocking(g);
  EXPECT_TRUE(needs) << blocking_text(r);
}

TEST_F(ChecksFsServer, UsrSbinReplacedByLinkToUsrBinIsFound) {
  std::filesystem::rename(p("/usr/sbin"), p("/usr/sbin.away"));
  std::filesystem::create_symlink("bin", p("/usr/sbin"));
  Undo undo{[&] {
    std::filesystem::remove(p("/usr/sbin"));
    std::filesystem::rename(p("/usr/sbin.away"), p("/usr/sbin"));
  }};
  Report r = run_fs_checks(root_);
  EXPECT_NE(find_blocking(r, "symlinks", "/usr/sbin"), nullptr) << blocking_text(r);
  EXPECT_NE(find_blocking(r, "critical", "/usr/sbin/sshd"), nullptr) << blocking_text(r);
}

}  // namespace
}  // namespace guard::checks
