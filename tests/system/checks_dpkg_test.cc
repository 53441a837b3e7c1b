// The dpkg checks on copies of real debootstrapped Debian 12 roots (scripts/test-root): a
// fresh root has no blocking finding, and each kind of damage gives the right one.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/root.h"
#include "base/strings.h"
#include "checks/check.h"
#include "tests/common/test_env.h"

namespace guard::checks {
namespace {

using guard::testing::TempDir;

const std::vector<std::string> kDpkgChecks = {"dpkg-state", "package-files", "package-hashes"};

// The cached root of `variant`, or "" (with `why`) when it cannot be had.
std::string cached_root(const std::string& variant, std::string& why) {
  auto r = guard::testing::run({std::string(UG_SOURCE_DIR) + "/scripts/test-root", variant}, 1800);
  if (r.exit_code != 0) {
    why = "scripts/test-root " + variant + " failed: " + r.err;
    return {};
  }
  return std::string(base::trim(r.out));
}

// A private copy of a cached root, removed with the test suite.
struct RootCopy {
  std::unique_ptr<TempDir> dir;
  std::string path;
};

std::string copy_root(const std::string& variant, RootCopy& copy, std::string& why) {
  std::string src = cached_root(variant, why);
  if (src.empty()) return {};
  copy.dir = std::make_unique<TempDir>("ug-dpkg-sys");
  copy.path = *copy.dir / "root";
  auto r = guard::testing::run({"cp", "-a", "--reflink=auto", src, copy.path}, 1800);
  if (r.exit_code != 0) {
    why = "cp -a failed: " + r.err;
    return {};
  }
  return copy.path;
}

Report check(const std::string& dir, const std::vector<std::string>& ids = kDpkgChecks, Scope scope = {}) {
  auto root = base::Root::open(dir);
  EXPECT_TRUE(root) << root.error().to_string();
  policies::Policy policy;
  CheckContext ctx{*root, policy, std::move(scope), nullptr, false, {}, {}, {}};
  auto report = run_checks(ctx, ids);
  EXPECT_TRUE(report) << report.error().to_string();
  return report ? *report : Report{};
}

std::string dump(const Report& r) {
  std::string s;
  for (const auto& f : r.findings)
    s += std::string(policies::to_string(f.severity)) + " " + f.check + " " + f.path + " [" + f.package + "] " +
         f.message + "\n";
  for (const auto& c : r.checks) s += "check " + c.id + " " + to_string(c.status) + " " + c.note + "\n";
  return s;
}

const Finding* find(const Report& r, std::string_view check, std::string_view path) {
  auto it = std::find_if(r.findings.begin(), r.findings.end(),
                         [&](const Finding& f) { return f.check == check && f.path == path; });
  return it == r.findings.end() ? nullptr : &*it;
}

TEST(ChecksDpkgSystem, FreshMinbaseRootHasNoBlockingFinding) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root to copy the debootstrapped root");
  RootCopy copy;
  std::string why;
  std::string dir = copy_root("minbase", copy, why);
  if (dir.empty()) UG_SKIP_OR_FAIL(why);
  Report r = check(dir);
  EXPECT_EQ(r.blocking_count(), 0u) << dump(r);
  EXPECT_EQ(r.verdict, Verdict::pass) << dump(r);
  ASSERT_EQ(r.checks.size(), 3u);
  for (const auto& c : r.checks) EXPECT_GT(c.items, 0u) << c.id;
}

// One copy of the server root shared by the damage tests; each test undoes its damage.
class ChecksDpkgServerRoot : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!guard::testing::is_root()) return;
    copy_ = new RootCopy;
    dir_ = copy_root("server", *copy_, why_);
  }
  static void TearDownTestSuite() {
    delete copy_;
    copy_ = nullptr;
  }
  void SetUp() override {
    if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root to copy the debootstrapped root");
    if (dir_.empty()) UG_SKIP_OR_FAIL(why_);
  }
  static std::string at(const std::string& rel) { return dir_ + rel; }

  // Saves a file's bytes (or link) and puts them back when the test ends.
  struct Restore {
    std::string path;
    std::string saved;
    ~Restore() { guard::testing::run({"cp", "-a", saved, path}); }
  };
  std::unique_ptr<Restore> save(const std::string& rel) {
    std::string saved = *copy_->dir / ("saved-" + std::to_string(++saves_));
    auto r = guard::testing::run({"cp", "-a", at(rel), saved});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::make_unique<Restore>(Restore{at(rel), saved});
  }

  static inline RootCopy* copy_ = nullptr;
  static inline std::string dir_;
  static inline std::string why_;
  static inline int saves_ = 0;
};

TEST_F(ChecksDpkgServerRoot, FreshRootHasNoBlockingFinding) {
  Report r = check(dir_);
  EXPECT_EQ(r.blocking_count(), 0u) << dump(r);
  EXPECT_EQ(r.verdict, Verdict::pass) << dump(r);
}

TEST_F(ChecksDpkgServerRoot, DeletedBinaryBlocks) {
  auto restore = save("/usr/bin/curl");
  ASSERT_EQ(std::remove(at("/usr/bin/curl").c_str()), 0);
  Report r = check(dir_);
  const Finding* f = find(r, "package-files", "/usr/bin/curl");
  ASSERT_NE(f, nullptr) << dump(r);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_EQ(f->package, "curl");
  EXPECT_EQ(r.verdict, Verdict::fail);
  EXPECT_EQ(r.blocking_count(), 1u) << dump(r);
}

TEST_F(ChecksDpkgServerRoot, ChangedLibraryByteBlocks) {
  const std::string lib = "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13";
  auto restore = save(lib);
  {
    std::fstream f(at(lib), std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f);
    f.seekg(4096);
    char c = 0;
    f.get(c);
    f.seekp(4096);
    f.put(static_cast<char>(c ^ 0x01));
  }
  Report r = check(dir_);
  // zlib1g lists it under /lib, the merged-/usr alias.
  const Finding* f = find(r, "package-hashes", "/lib/x86_64-linux-gnu/libz.so.1.2.13");
  ASSERT_NE(f, nullptr) << dump(r);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_EQ(f->package, "zlib1g:amd64");
  EXPECT_EQ(r.verdict, Verdict::fail);
  EXPECT_EQ(r.blocking_count(), 1u) << dump(r);
}

TEST_F(ChecksDpkgServerRoot, RetargetedLinkBlocks) {
  const std::string link = "/usr/lib/x86_64-linux-gnu/libz.so.1";
  auto restore = save(link);
  ASSERT_EQ(std::remove(at(link).c_str()), 0);
  guard::testing::make_symlink("libz.so.1.9.99", at(link));
  Report r = check(dir_);
  const Finding* f = find(r, "package-files", "/lib/x86_64-linux-gnu/libz.so.1");
  ASSERT_NE(f, nullptr) << dump(r);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_EQ(f->package, "zlib1g:amd64");
  EXPECT_NE(f->message.find("libz.so.1.9.99"), std::string::npos);
  EXPECT_EQ(r.verdict, Verdict::fail);
}

// A status file cut at a line end inside a stanza (as a crash while dpkg wrote it could leave
// it): the CLI's check fails with a blocking dpkg-state finding naming the file and line, and
// the file checks cannot run on it (no package is silently left unchecked).
TEST_F(ChecksDpkgServerRoot, TruncatedStatusBlocksWithItsLine) {
  auto restore = save("/var/lib/dpkg/status");
  std::string status = guard::testing::read_file(at("/var/lib/dpkg/status"));
  auto stanza = status.find("Package: curl\n");
  ASSERT_NE(stanza, std::string::npos);
  auto version = status.find("\nVersion: ", stanza);
  ASSERT_NE(version, std::string::npos);
  status.resize(version + 1);  // ends after curl's Architecture..., before its Version
  const auto last_line = static_cast<std::size_t>(std::count(status.begin(), status.end(), '\n'));
  guard::testing::write_file(at("/var/lib/dpkg/status"), status);
  TempDir state("ug-state");
  auto r = guard::testing::run_guard({"--root", dir_, "--state-dir", state.path(), "check", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    FAIL() << "not JSON: " << e.what() << "\n" << r.out << r.err;
  }
  EXPECT_EQ(j.at("verdict"), "fail");
  const std::string prefix = "/var/lib/dpkg/status:" + std::to_string(last_line) + ": stanza of package 'curl'";
  bool found = false;
  for (const auto& f : j.at("findings")) {
    if (f.at("check") != "dpkg-state") continue;
    found = true;
    EXPECT_EQ(f.at("severity"), "block");
    EXPECT_EQ(f.at("path"), "/var/lib/dpkg/status");
    EXPECT_EQ(f.at("message").get<std::string>().rfind(prefix, 0), 0u) << f.at("message");
    EXPECT_NE(f.at("message").get<std::string>().find("'Version'"), std::string::npos) << f.at("message");
  }
  EXPECT_TRUE(found) << r.out;
  for (const auto& c : j.at("checks")) {
    if (c.at("id") == "package-files" || c.at("id") == "package-hashes") {
      EXPECT_EQ(c.at("status"), "error") << c;
    }
  }
}

TEST_F(ChecksDpkgServerRoot, HalfConfiguredPackageBlocks) {
  auto restore = save("/var/lib/dpkg/status");
  std::string status = guard::testing::read_file(at("/var/lib/dpkg/status"));
  const std::string from = "Package: curl\nStatus: install ok installed\n";
  auto pos = status.find(from);
  ASSERT_NE(pos, std::string::npos);
  status.replace(pos, from.size(), "Package: curl\nStatus: install ok half-configured\n");
  guard::testing::write_file(at("/var/lib/dpkg/status"), status);
  Report r = check(dir_);
  auto it = std::find_if(r.findings.begin(), r.findings.end(),
                         [](const Finding& f) { return f.check == "dpkg-state" && f.package == "curl"; });
  ASSERT_NE(it, r.findings.end()) << dump(r);
  EXPECT_EQ(it->severity, Severity::block);
  EXPECT_NE(it->message.find("half-configured"), std::string::npos);
  EXPECT_NE(it->hint.find("dpkg --configure -a"), std::string::npos);
  EXPECT_EQ(r.verdict, Verdict::fail);
  EXPECT_EQ(r.blocking_count(), 1u) << dump(r);
}

TEST_F(ChecksDpkgServerRoot, UpdatesJournalBlocks) {
  const std::string journal = at("/var/lib/dpkg/updates/0001");
  guard::testing::write_file(journal, "Package: curl\nStatus: install ok unpacked\n\n");
  Report r = check(dir_, {"dpkg-state"});
  std::remove(journal.c_str());
  const Finding* f = find(r, "dpkg-state", "/var/lib/dpkg/updates/0001");
  ASSERT_NE(f, nullptr) << dump(r);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_EQ(r.verdict, Verdict::fail);
}

TEST_F(ChecksDpkgServerRoot, ScopedCheckLooksOnlyAtTheChangedPackage) {
  auto restore = save("/usr/bin/curl");
  ASSERT_EQ(std::remove(at("/usr/bin/curl").c_str()), 0);
  Scope other;
  other.full = false;
  other.packages = {"bash"};
  Report r = check(dir_, {"package-files", "package-hashes"}, other);
  EXPECT_EQ(r.blocking_count(), 0u) << dump(r);
  Scope curl;
  curl.full = false;
  curl.packages = {"curl"};
  r = check(dir_, {"package-files", "package-hashes"}, curl);
  EXPECT_NE(find(r, "package-files", "/usr/bin/curl"), nullptr) << dump(r);
}

}  // namespace
}  // namespace guard::checks
