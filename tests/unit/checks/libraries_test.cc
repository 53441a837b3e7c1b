#include "checks/libraries.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "checks/elf_resolver.h"
#include "tests/unit/checks/fixture_root.h"

namespace guard::checks {
namespace {

using namespace guard::testing;

constexpr const char* kLibV1 = "int x1(void) { return 1; }\n";
constexpr const char* kMapV1 = "X_1.0 { global: x1; local: *; };\n";
constexpr const char* kLibV2 = "int x1(void) { return 1; }\nint x2(void) { return 2; }\n";
constexpr const char* kMapV2 = "X_1.0 { global: x1; local: *; };\nX_2.0 { global: x2; } X_1.0;\n";

class LibrariesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_ / "root";
    build_ = dir_ / "build";
    make_dirs(build_);
    make_base_root(root_);
  }
  std::vector<Finding> run() { return run_one(LibrariesCheck(), root_); }

  TempDir dir_;
  std::string root_;
  std::string build_;
};

TEST_F(LibrariesTest, HealthyFixtureHasNoFindings) {
  build_lib(build_ + "/libx.so", "libx.so.1", kLibV1, kMapV1);
  copy_in(build_ + "/libx.so", root_ + "/usr/lib/x86_64-linux-gnu/libx.so.1");
  build_exe(root_ + "/usr/bin/prog", "int x1(void); int main(void) { return x1(); }\n", {build_ + "/libx.so"});
  std::uint64_t items = 0;
  auto fs = run_one(LibrariesCheck(), root_, &items);
  EXPECT_TRUE(fs.empty()) << dump(fs);
  EXPECT_GE(items, 4u);  // libc, ld.so, libx, prog
}

TEST_F(LibrariesTest, MissingSymbolVersionBlocks) {
  build_lib(build_ + "/libx.so", "libx.so.1", kLibV2, kMapV2);
  build_exe(root_ + "/usr/bin/prog", "int x2(void); int main(void) { return x2(); }\n", {build_ + "/libx.so"});
  build_lib(build_ + "/old/libx.so", "libx.so.1", kLibV1, kMapV1);
  copy_in(build_ + "/old/libx.so", root_ + "/usr/lib/x86_64-linux-gnu/libx.so.1");
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/bin/prog", "version:libx.so.1:X_2.0");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_EQ(f->check, "libraries");
  EXPECT_NE(f->message.find("needs X_2.0 from libx.so.1, which defines only up to X_1.0"), std::string::npos)
      << f->message;
  EXPECT_TRUE(f->package.empty());
}

TEST_F(LibrariesTest, MissingLibraryBlocksAndMissingInterpreterBlocks) {
  build_lib(build_ + "/libx.so", "libx.so.1", kLibV1, kMapV1);
  build_exe(root_ + "/usr/bin/prog", "int x1(void); int main(void) { return x1(); }\n", {build_ + "/libx.so"});
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/bin/prog", "needed:libx.so.1");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_NE(f->message.find("needs libx.so.1"), std::string::npos);

  std::filesystem::remove(root_ + "/usr/lib64/ld-linux-x86-64.so.2");
  fs = run();
  f = find_finding(fs, "/usr/bin/prog", "interp:");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
}

TEST_F(LibrariesTest, RunpathWithOriginIsFound) {
  build_lib(root_ + "/opt/app/lib/liby.so.1", "liby.so.1", "int y(void) { return 0; }\n");
  build_exe(root_ + "/opt/app/bin/tool", "int y(void); int main(void) { return y(); }\n",
            {root_ + "/opt/app/lib/liby.so.1", "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags"});
  auto fs = run();
  EXPECT_TRUE(fs.empty()) << dump(fs);
  std::filesystem::remove(root_ + "/opt/app/lib/liby.so.1");
  fs = run();
  const Finding* f = find_finding(fs, "/opt/app/bin/tool", "needed:liby.so.1");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
}

// app -> liba -> libb, both libraries in /opt/r/lib, found through app's search path only.
void build_chain(const std::string& root, const std::string& build, bool runpath) {
  build_lib(build + "/libb.so.1", "libb.so.1", "int b(void) { return 0; }\n");
  build_lib(build + "/liba.so.1", "liba.so.1", "int b(void); int a(void) { return b(); }\n", "", {build + "/libb.so.1"});
  copy_in(build + "/libb.so.1", root + "/opt/r/lib/libb.so.1");
  copy_in(build + "/liba.so.1", root + "/opt/r/lib/liba.so.1");
  build_exe(root + "/opt/r/bin/app", "int a(void); int main(void) { return a(); }\n",
            {build + "/liba.so.1", "-Wl,-rpath-link," + build, "-Wl,-rpath,$ORIGIN/../lib",
             runpath ? "-Wl,--enable-new-dtags" : "-Wl,--disable-new-dtags"});
}

TEST_F(LibrariesTest, RpathIsInheritedByDependencies) {
  build_chain(root_, build_, /*runpath=*/false);
  auto fs = run();
  EXPECT_TRUE(fs.empty()) << dump(fs);
}

TEST_F(LibrariesTest, RunpathIsNotInherited) {
  build_chain(root_, build_, /*runpath=*/true);
  auto fs = run();
  const Finding* f = find_finding(fs, "/opt/r/lib/liba.so.1", "needed:libb.so.1");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_EQ(find_finding(fs, "/opt/r/bin/app"), nullptr) << dump(fs);
}

TEST_F(LibrariesTest, WrongClassCandidateIsSkipped) {
  build_lib(build_ + "/libx.so", "libx.so.1", kLibV1, kMapV1);
  copy_in(build_ + "/libx.so", root_ + "/usr/lib/x86_64-linux-gnu/libx.so.1");
  // A "32-bit" libx.so.1 earlier in the search path (e_ident[EI_CLASS] patched): ld.so skips it.
  copy_in(build_ + "/libx.so", root_ + "/opt/first/libx.so.1");
  {
    std::fstream f(root_ + "/opt/first/libx.so.1", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4);
    f.put(1);  // ELFCLASS32
  }
  write_file(root_ + "/etc/ld.so.conf", "/opt/first\n");
  build_exe(root_ + "/usr/bin/prog", "int x1(void); int main(void) { return x1(); }\n", {build_ + "/libx.so"});
  auto fs = run();
  EXPECT_EQ(find_finding(fs, "/usr/bin/prog"), nullptr) << dump(fs);
  EXPECT_EQ(blocking(fs), 0u) << dump(fs);

  auto root = base::Root::open(root_);
  ASSERT_TRUE(root);
  LibraryResolver resolver(*root);
  const ElfObject* prog = resolver.load("/usr/bin/prog");
  ASSERT_NE(prog, nullptr);
  auto r = resolver.resolve(LoadedElf{"/usr/bin/prog", prog}, "libx.so.1", {});
  ASSERT_TRUE(r);
  // The first default directory, /lib/x86_64-linux-gnu (an alias of /usr/lib/...), not /opt/first.
  EXPECT_EQ(r->path, "/lib/x86_64-linux-gnu/libx.so.1");
}

TEST_F(LibrariesTest, TruncatedElfIsAWarningNotACrash) {
  build_lib(build_ + "/libx.so", "libx.so.1", kLibV2, kMapV2);
  std::string bytes = read_file(build_ + "/libx.so");
  for (std::size_t cut : {std::size_t{64}, std::size_t{200}, bytes.size() / 2, bytes.size() - 100}) {
    write_file(root_ + "/usr/lib/x86_64-linux-gnu/libt" + std::to_string(cut) + ".so.1", bytes.substr(0, cut));
  }
  auto fs = run();
  std::size_t malformed = 0;
  for (const auto& f : fs) {
    EXPECT_NE(f.severity, Severity::block) << dump(fs);
    if (f.id == "malformed-elf") ++malformed;
  }
  EXPECT_GE(malformed, 2u) << dump(fs);
}

TEST_F(LibrariesTest, HwcapsOnlyLibraryFoundThroughTheCache) {
  build_lib(root_ + "/opt/h/glibc-hwcaps/x86-64-v2/libh.so.1", "libh.so.1", "int h(void) { return 0; }\n");
  build_exe(root_ + "/usr/bin/prog", "int h(void); int main(void) { return h(); }\n",
            {root_ + "/opt/h/glibc-hwcaps/x86-64-v2/libh.so.1"});
  auto fs = run();
  ASSERT_NE(find_finding(fs, "/usr/bin/prog", "needed:libh.so.1"), nullptr) << dump(fs);
  write_file(root_ + "/etc/ld.so.cache",
             build_cache({{"libh.so.1", "/opt/h/glibc-hwcaps/x86-64-v2/libh.so.1", 0x0303, 0}}, {"x86-64-v2"}));
  fs = run();
  EXPECT_TRUE(fs.empty()) << dump(fs);
}

TEST_F(LibrariesTest, CacheGeneratedByLdconfigIsUsed) {
  if (!is_root()) UG_SKIP_OR_FAIL("ldconfig -r chroots into the fixture: needs root");
  build_lib(root_ + "/opt/lc/libq.so.1", "libq.so.1", "int q(void) { return 0; }\n");
  build_exe(root_ + "/usr/bin/prog", "int q(void); int main(void) { return q(); }\n", {root_ + "/opt/lc/libq.so.1"});
  write_file(root_ + "/etc/ld.so.conf", "/opt/lc\n");
  auto r = testing::run({"ldconfig", "-C", "/etc/ld.so.cache", "-f", "/etc/ld.so.conf", "-r", root_});
  ASSERT_TRUE(r.ok()) << r.err;
  // Only the cache knows /opt/lc now.
  std::filesystem::remove(root_ + "/etc/ld.so.conf");
  auto fs = run();
  EXPECT_TRUE(fs.empty()) << dump(fs);
  std::filesystem::remove(root_ + "/etc/ld.so.cache");
  fs = run();
  EXPECT_NE(find_finding(fs, "/usr/bin/prog", "needed:libq.so.1"), nullptr) << dump(fs);
}

TEST_F(LibrariesTest, LdSoConfIncludeDirsAreSearched) {
  build_lib(root_ + "/opt/inc/libi.so.1", "libi.so.1", "int i(void) { return 0; }\n");
  build_exe(root_ + "/usr/bin/prog", "int i(void); int main(void) { return i(); }\n", {root_ + "/opt/inc/libi.so.1"});
  write_file(root_ + "/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n");
  write_file(root_ + "/etc/ld.so.conf.d/inc.conf", "/opt/inc\n");
  auto fs = run();
  EXPECT_TRUE(fs.empty()) << dump(fs);
}

TEST_F(LibrariesTest, OptionalPluginMissingLibraryIsAWarning) {
  build_lib(build_ + "/libx.so", "libx.so.1", kLibV1, kMapV1);
  build_lib(root_ + "/usr/lib/x86_64-linux-gnu/sasl2/libplugin.so", "libplugin.so",
            "int x1(void); int p(void) { return x1(); }\n", "", {build_ + "/libx.so"});
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/lib/x86_64-linux-gnu/sasl2/libplugin.so", "needed:libx.so.1");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::warn);
}

TEST_F(LibrariesTest, FindDependentsBySonameAndByPath) {
  build_lib(build_ + "/libx.so", "libx.so.1", kLibV1, kMapV1);
  copy_in(build_ + "/libx.so", root_ + "/usr/lib/x86_64-linux-gnu/libx.so.1.0.0");
  make_symlink("libx.so.1.0.0", root_ + "/usr/lib/x86_64-linux-gnu/libx.so.1");
  build_exe(root_ + "/usr/bin/prog", "int x1(void); int main(void) { return x1(); }\n", {build_ + "/libx.so"});
  build_exe(root_ + "/usr/bin/other", "int main(void) { return 0; }\n", {});
  auto root = base::Root::open(root_);
  ASSERT_TRUE(root);
  auto by_name = find_dependents(*root, {"libx.so.1"});
  ASSERT_TRUE(by_name);
  EXPECT_EQ(*by_name, std::vector<std::string>{"/usr/bin/prog"});
  auto by_path = find_dependents(*root, {"/usr/lib/x86_64-linux-gnu/libx.so.1.0.0"});
  ASSERT_TRUE(by_path);
  EXPECT_EQ(*by_path, std::vector<std::string>{"/usr/bin/prog"});
  auto libc = find_dependents(*root, {"libc.so.6"});
  ASSERT_TRUE(libc);
  EXPECT_NE(std::find(libc->begin(), libc->end(), "/usr/bin/prog"), libc->end());
  EXPECT_NE(std::find(libc->begin(), libc->end(), "/usr/bin/other"), libc->end());
}

TEST_F(LibrariesTest, AliasedScanPathsAreScannedOnce) {
  auto root = base::Root::open(root_);
  ASSERT_TRUE(root);
  auto paths = canonical_scan_paths(*root, {"/bin", "/usr/bin", "/lib", "/usr/lib/x86_64-linux-gnu", "/nonexistent"});
  EXPECT_EQ(paths, (std::vector<std::string>{"/usr/bin", "/usr/lib"}));
}

// The baseline's full run writes the needed-index; the post-checks' scoped run then loads
// only the changed files and their users, and hands a failure over to a full scan.
TEST(LibrariesScope, ScopedRunWithTheNeededIndexLoadsOnlyTheUsersOfWhatChanged) {
  TempDir dir;
  std::string root = dir / "root", build = dir / "build", index = dir / "run-1.needed";
  make_dirs(build);
  make_base_root(root);
  const std::string lib_dir = root + "/usr/lib/x86_64-linux-gnu";
  build_lib(lib_dir + "/libx.so.1", "libx.so.1", "int x(void) { return 0; }\n");
  build_lib(lib_dir + "/liby.so.1", "liby.so.1", "int y(void) { return 0; }\n");
  build_exe(root + "/usr/bin/needs-x", "int x(void); int main(void) { return x(); }\n", {lib_dir + "/libx.so.1"});
  build_exe(root + "/usr/bin/needs-y", "int y(void); int main(void) { return y(); }\n", {lib_dir + "/liby.so.1"});
  auto r = base::Root::open(root);
  ASSERT_TRUE(r);
  policies::Policy policy;
  CheckContext ctx{*r, policy, {}, nullptr, false, {}, index, {}};
  auto full = LibrariesCheck().run(ctx);
  ASSERT_TRUE(full);
  EXPECT_EQ(blocking(full->findings), 0u) << dump(full->findings);
  std::string text = read_file(index);
  EXPECT_NE(text.find("/usr/bin/needs-y\tliby.so.1 "), std::string::npos) << text;

  // liby was upgraded: liby itself and needs-y are loaded, nothing else.
  ctx.scope.full = false;
  ctx.scope.paths = {"/usr/lib/x86_64-linux-gnu/liby.so.1"};
  auto scoped = LibrariesCheck().run(ctx);
  ASSERT_TRUE(scoped);
  EXPECT_EQ(scoped->items, 2u);
  EXPECT_LT(scoped->items, full->items);
  EXPECT_EQ(blocking(scoped->findings), 0u) << dump(scoped->findings);

  // libx was removed: needs-x is found through the index, and judged by a full scan.
  ASSERT_EQ(::unlink((lib_dir + "/libx.so.1").c_str()), 0);
  ctx.scope.paths = {"/usr/lib/x86_64-linux-gnu/libx.so.1"};
  auto broken = LibrariesCheck().run(ctx);
  ASSERT_TRUE(broken);
  EXPECT_NE(find_finding(broken->findings, "/usr/bin/needs-x", "needed:libx.so.1"), nullptr) << dump(broken->findings);
  EXPECT_EQ(find_finding(broken->findings, "/usr/bin/needs-y"), nullptr) << dump(broken->findings);

  // An unreadable or foreign index means a full scan, never a missed dependent.
  write_file(index, "not an index\n");
  auto foreign = LibrariesCheck().run(ctx);
  ASSERT_TRUE(foreign);
  EXPECT_NE(find_finding(foreign->findings, "/usr/bin/needs-x", "needed:libx.so.1"), nullptr);
}

}  // namespace
}  // namespace guard::checks

namespace guard::checks {
namespace {

using namespace guard::testing;

TEST(LibrariesScope, ChangeScopedRunReportsOnlyDependentsOfChangedFiles) {
  TempDir dir;
  std::string root = dir / "root", build = dir / "build";
  make_dirs(build);
  make_base_root(root);
  build_lib(build + "/libx.so.1", "libx.so.1", "int x(void) { return 0; }\n");
  build_lib(build + "/liby.so.1", "liby.so.1", "int y(void) { return 0; }\n");
  build_exe(root + "/usr/bin/needs-x", "int x(void); int main(void) { return x(); }\n", {build + "/libx.so.1"});
  build_exe(root + "/usr/bin/needs-y", "int y(void); int main(void) { return y(); }\n", {build + "/liby.so.1"});
  // Neither library is installed: a full run reports both programs.
  auto r = base::Root::open(root);
  ASSERT_TRUE(r);
  policies::Policy policy;
  CheckContext ctx{*r, policy, {}, nullptr, false, {}, {}, {}};
  auto full = LibrariesCheck().run(ctx);
  ASSERT_TRUE(full);
  EXPECT_EQ(blocking(full->findings), 2u) << dump(full->findings);
  // An upgrade that removed /usr/lib/x86_64-linux-gnu/libx.so.1: only needs-x is in scope.
  ctx.scope.full = false;
  ctx.scope.paths = {"/usr/lib/x86_64-linux-gnu/libx.so.1"};
  auto scoped = LibrariesCheck().run(ctx);
  ASSERT_TRUE(scoped);
  EXPECT_NE(find_finding(scoped->findings, "/usr/bin/needs-x", "needed:libx.so.1"), nullptr) << dump(scoped->findings);
  EXPECT_EQ(find_finding(scoped->findings, "/usr/bin/needs-y"), nullptr) << dump(scoped->findings);
}

}  // namespace
}  // namespace guard::checks

namespace guard::checks {
namespace {

using namespace guard::testing;

TEST_F(LibrariesTest, ProgramOrLinkedPrivateLibraryInPackageDirBlocks) {
  build_lib(build_ + "/libx.so.1", "libx.so.1", "int x(void) { return 0; }\n");
  // A helper program in /usr/lib/<package>/ (like systemd-journald): blocks.
  build_exe(root_ + "/usr/lib/foo/foo-helper", "int x(void); int main(void) { return x(); }\n", {build_ + "/libx.so.1"});
  // A private library in /usr/lib/<tuple>/foo/ that a program links against: blocks.
  build_lib(root_ + "/usr/lib/x86_64-linux-gnu/foo/libfoo-shared.so", "libfoo-shared.so",
            "int x(void); int fs(void) { return x(); }\n", "", {build_ + "/libx.so.1"});
  build_exe(root_ + "/usr/bin/foo", "int fs(void); int main(void) { return fs(); }\n",
            {root_ + "/usr/lib/x86_64-linux-gnu/foo/libfoo-shared.so", "-Wl,-rpath,/usr/lib/x86_64-linux-gnu/foo",
             "-Wl,-rpath-link," + build_});
  auto fs = run();
  const Finding* helper = find_finding(fs, "/usr/lib/foo/foo-helper", "needed:libx.so.1");
  ASSERT_NE(helper, nullptr) << dump(fs);
  EXPECT_EQ(helper->severity, Severity::block);
  const Finding* shared = find_finding(fs, "/usr/lib/x86_64-linux-gnu/foo/libfoo-shared.so", "needed:libx.so.1");
  ASSERT_NE(shared, nullptr) << dump(fs);
  EXPECT_EQ(shared->severity, Severity::block);
  EXPECT_EQ(find_finding(fs, "/usr/bin/foo"), nullptr) << dump(fs);
}

}  // namespace
}  // namespace guard::checks
