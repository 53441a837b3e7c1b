#include "checks/elf_symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "base/unique_fd.h"
#include "checks/libraries.h"
#include "tests/unit/checks/fixture_root.h"

namespace guard::checks {
namespace {

using namespace guard::testing;

constexpr const char* kFooBar = "int foo(void) { return 1; }\nint bar(void) { return 2; }\n";
constexpr const char* kFooOnly = "int foo(void) { return 1; }\n";
constexpr const char* kFooHiddenBar =
    "int foo(void) { return 1; }\n__attribute__((visibility(\"hidden\"))) int bar(void) { return 2; }\n";
constexpr const char* kUseBoth = "int foo(void); int bar(void);\nint main(void) { return foo() + bar(); }\n";
// Version scripts: both functions at FOO_1, then FOO_1 without bar.
const std::string kMapBoth = "FOO_1 { global: foo; bar; local: *; };\n", kMapFoo = "FOO_1 { global: foo; local: *; };\n";
constexpr const char* kLibDir = "/usr/lib/x86_64-linux-gnu";

class ElfSymbolsTest : public ::testing::Test {
 protected:
  ElfSymbolsTest() : root_(dir_ / "root"), build_(dir_ / "build") {
    for (const char* d : {"/v1", "/v2"}) make_dirs(build_ + d);
    make_base_root(root_);
  }
  std::vector<Finding> run() { return run_one(LibrariesCheck(), root_); }
  // libfoo.so.1 built from `v1` for linking `prog` at `prog_path`, then replaced in the root by `v2`.
  void install(const char* v1, const char* v2, const std::string& map1, const std::string& map2,
               const std::string& prog_path, const std::string& prog_source, std::vector<std::string> flags = {}) {
    build_lib(build_ + "/v1/libfoo.so.1", "libfoo.so.1", v1, map1);
    build_lib(build_ + "/v2/libfoo.so.1", "libfoo.so.1", v2, map2);
    flags.insert(flags.begin(), build_ + "/v1/libfoo.so.1");
    make_dirs(std::string(std::filesystem::path(root_ + prog_path).parent_path()));
    build_exe(root_ + prog_path, prog_source, flags);
    copy_in(build_ + "/v2/libfoo.so.1", root_ + kLibDir + "/libfoo.so.1");
  }

  TempDir dir_;
  std::string root_;
  std::string build_;
};

TEST_F(ElfSymbolsTest, HealthyProgramHasNoFindings) {
  install(kFooBar, kFooBar, "", "", "/usr/bin/prog", kUseBoth);
  auto fs = run();
  EXPECT_TRUE(fs.empty()) << dump(fs);
}

TEST_F(ElfSymbolsTest, RemovedUnversionedSymbolBlocks) {
  install(kFooBar, kFooOnly, "", "", "/usr/bin/prog", kUseBoth);
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/bin/prog", "symbol:bar");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->check, "libraries");
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_NE(f->message.find("undefined symbol bar (needed by /usr/bin/prog)"), std::string::npos) << f->message;
  EXPECT_EQ(find_finding(fs, "/usr/bin/prog", "symbol:foo"), nullptr) << dump(fs);
  EXPECT_EQ(fs.size(), 1u) << dump(fs);
}

TEST_F(ElfSymbolsTest, RemovedVersionedSymbolBlocksAndNamesTheLibrary) {
  install(kFooBar, kFooOnly, kMapBoth, kMapFoo, "/usr/bin/prog", kUseBoth);
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/bin/prog", "symbol:libfoo.so.1:bar");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_NE(f->message.find("undefined symbol bar@FOO_1 (needed by /usr/bin/prog): not defined by "
                            "/usr/lib/x86_64-linux-gnu/libfoo.so.1"),
            std::string::npos)
      << f->message;
  EXPECT_NE(f->hint.find("dpkg -S /usr/lib/x86_64-linux-gnu/libfoo.so.1"), std::string::npos) << f->hint;
  EXPECT_EQ(fs.size(), 1u) << dump(fs);
}

TEST_F(ElfSymbolsTest, VersionedReferenceBindsToAnUnversionedDefinition) {
  // check_match: a library without symbol versions satisfies a versioned reference (no
  // version finding either: ld.so accepts a library that defines no versions).
  install(kFooBar, kFooBar, kMapBoth, "", "/usr/bin/prog", kUseBoth);
  auto fs = run();
  EXPECT_TRUE(fs.empty()) << dump(fs);
}

TEST_F(ElfSymbolsTest, WeakReferenceIsNotAFinding) {
  install(kFooBar, kFooOnly, "", "", "/usr/bin/prog",
          "int foo(void); extern int bar(void) __attribute__((weak));\n"
          "int main(void) { return foo() + (bar ? bar() : 0); }\n");
  auto fs = run();
  EXPECT_TRUE(fs.empty()) << dump(fs);
}

TEST_F(ElfSymbolsTest, SymbolFromASecondLibraryOfTheTreeIsFound) {
  // prog -> libfoo (loses bar), libbaz (defines bar): ld.so binds bar to libbaz.
  build_lib(build_ + "/libbaz.so.1", "libbaz.so.1", "int bar(void) { return 3; }\nint baz(void) { return 4; }\n");
  copy_in(build_ + "/libbaz.so.1", root_ + kLibDir + "/libbaz.so.1");
  install(kFooBar, kFooOnly, "", "", "/usr/bin/prog",
          "int foo(void); int bar(void); int baz(void);\nint main(void) { return foo() + bar() + baz(); }\n",
          {build_ + "/libbaz.so.1"});
  auto fs = run();
  EXPECT_TRUE(fs.empty()) << dump(fs);
}

TEST_F(ElfSymbolsTest, LibraryOfAProgramIsCheckedInItsScope) {
  // prog -> libmid -> libfoo; libfoo loses bar, which libmid (not prog) imports.
  build_lib(build_ + "/v1/libfoo.so.1", "libfoo.so.1", kFooBar, kMapBoth);
  build_lib(build_ + "/v2/libfoo.so.1", "libfoo.so.1", kFooOnly, kMapFoo);
  build_lib(build_ + "/libmid.so.1", "libmid.so.1", "int bar(void); int mid(void) { return bar(); }\n", "",
            {build_ + "/v1/libfoo.so.1"});
  copy_in(build_ + "/libmid.so.1", root_ + kLibDir + "/libmid.so.1");
  copy_in(build_ + "/v2/libfoo.so.1", root_ + kLibDir + "/libfoo.so.1");
  build_exe(root_ + "/usr/bin/prog", "int mid(void); int main(void) { return mid(); }\n",
            {build_ + "/libmid.so.1", "-Wl,-rpath-link," + build_ + "/v1"});
  auto fs = run();
  const Finding* f = find_finding(fs, std::string(kLibDir) + "/libmid.so.1", "symbol:libfoo.so.1:bar");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_NE(f->message.find("loaded by /usr/bin/prog"), std::string::npos) << f->message;
  EXPECT_EQ(fs.size(), 1u) << dump(fs);
}

TEST_F(ElfSymbolsTest, HiddenDefinitionDoesNotCount) {
  install(kFooBar, kFooHiddenBar, "", "", "/usr/bin/prog", kUseBoth);
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/bin/prog", "symbol:bar");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
}

TEST_F(ElfSymbolsTest, NonDefaultVersionDoesNotSatisfyAnotherVersion) {
  // v2 still has bar, but only as bar@FOO_0 (hidden, not the default): bar@FOO_1 is missing.
  install(kFooBar,
          "int foo(void) { return 1; }\nint bar0(void) { return 2; }\n__asm__(\".symver bar0,bar@FOO_0\");\n",
          kMapBoth, "FOO_0 { global: bar0; };\nFOO_1 { global: foo; local: *; } FOO_0;\n", "/usr/bin/prog", kUseBoth);
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/bin/prog", "symbol:libfoo.so.1:bar");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
}

TEST_F(ElfSymbolsTest, ProgramOutsideBinDirsWarnsWhenLazyAndBlocksWithBindNow) {
  install(kFooBar, kFooOnly, "", "", "/usr/lib/x86_64-linux-gnu/tool/helper", kUseBoth, {"-Wl,-z,lazy"});
  auto fs = run();
  const Finding* f = find_finding(fs, "/usr/lib/x86_64-linux-gnu/tool/helper", "symbol:bar");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::warn);
  EXPECT_NE(f->message.find("fails at the first call"), std::string::npos) << f->message;

  build_exe(root_ + "/usr/lib/x86_64-linux-gnu/tool/helper", kUseBoth, {build_ + "/v1/libfoo.so.1", "-Wl,-z,now"});
  fs = run();
  f = find_finding(fs, "/usr/lib/x86_64-linux-gnu/tool/helper", "symbol:bar");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_NE(f->message.find("fails to start"), std::string::npos) << f->message;
}

TEST_F(ElfSymbolsTest, PluginNothingLinksWarns) {
  build_lib(build_ + "/v1/libfoo.so.1", "libfoo.so.1", kFooBar);
  build_lib(build_ + "/v2/libfoo.so.1", "libfoo.so.1", kFooOnly);
  copy_in(build_ + "/v2/libfoo.so.1", root_ + kLibDir + "/libfoo.so.1");
  std::string plugin = std::string(kLibDir) + "/app/plugins/plug.so";
  make_dirs(root_ + std::string(kLibDir) + "/app/plugins");
  build_lib(root_ + plugin, "plug.so", "int bar(void); int plug(void) { return bar(); }\n", "",
            {build_ + "/v1/libfoo.so.1"});
  auto fs = run();
  const Finding* f = find_finding(fs, plugin, "symbol:bar");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->severity, Severity::warn);
  EXPECT_NE(f->message.find("no program links"), std::string::npos) << f->message;

  // A plugin that links only the C library calls into its host by design (libthread_db's ps_*).
  std::string callback = std::string(kLibDir) + "/app/plugins/callback.so";
  build_lib(root_ + callback, "callback.so", "int host_cb(void); int plug(void) { return host_cb(); }\n");
  fs = run();
  const Finding* cb = find_finding(fs, callback, "symbol:host_cb");
  ASSERT_NE(cb, nullptr) << dump(fs);
  EXPECT_EQ(cb->severity, Severity::info);
  std::filesystem::remove(root_ + callback);

  // A host program that defines bar (exported) makes it a callback the host provides.
  build_exe(root_ + "/usr/bin/host", "int bar(void) { return 0; }\nint main(void) { return 0; }\n",
            {"-Wl,--export-dynamic"});
  fs = run();
  EXPECT_EQ(find_finding(fs, plugin), nullptr) << dump(fs);
}

TEST_F(ElfSymbolsTest, FindingsPerObjectAreCapped) {
  std::string v1, use = "int main(void) { return 0", decl;
  for (int i = 0; i < 30; ++i) {
    v1 += "int f" + std::to_string(i) + "(void) { return " + std::to_string(i) + "; }\n";
    decl += "int f" + std::to_string(i) + "(void);\n";
    use += " + f" + std::to_string(i) + "()";
  }
  install(v1.c_str(), kFooOnly, "", "", "/usr/bin/prog", decl + use + "; }\n");
  auto fs = run();
  EXPECT_EQ(fs.size(), 20u) << dump(fs);
  bool more = false;
  for (const auto& f : fs) more = more || f.message.find("and 10 more undefined symbols") != std::string::npos;
  EXPECT_TRUE(more) << dump(fs);
}

// prog -> libmid -> libfoo, then an upgrade replaces libfoo by one without bar (which libmid
// imports): the scoped post-check, with the baseline's needed-index, loads only libfoo and libmid,
// and hands the failure over to a full scan that judges libmid in prog's scope (blocking).
TEST_F(ElfSymbolsTest, ScopedRunFindsALibraryLosingASymbolItsUserImports) {
  build_lib(build_ + "/v1/libfoo.so.1", "libfoo.so.1", kFooBar, kMapBoth);
  build_lib(build_ + "/v2/libfoo.so.1", "libfoo.so.1", kFooOnly, kMapFoo);
  build_lib(build_ + "/libmid.so.1", "libmid.so.1", "int bar(void); int mid(void) { return bar(); }\n", "",
            {build_ + "/v1/libfoo.so.1"});
  build_lib(build_ + "/libother.so.1", "libother.so.1", "int other(void) { return 0; }\n");
  for (const char* l : {"/libmid.so.1", "/v1/libfoo.so.1", "/libother.so.1"})
    copy_in(build_ + l, root_ + kLibDir + "/" + std::string(std::filesystem::path(l).filename()));
  build_exe(root_ + "/usr/bin/prog", "int mid(void); int main(void) { return mid(); }\n",
            {build_ + "/libmid.so.1", "-Wl,-rpath-link," + build_ + "/v1"});
  auto r = base::Root::open(root_);
  ASSERT_TRUE(r);
  policies::Policy policy;
  CheckContext ctx{*r, policy, {}, nullptr, false, {}, dir_ / "needed", {}};
  auto full = LibrariesCheck().run(ctx);
  ASSERT_TRUE(full);
  EXPECT_TRUE(full->findings.empty()) << dump(full->findings);

  copy_in(build_ + "/v2/libfoo.so.1", root_ + kLibDir + "/libfoo.so.1");
  ctx.scope.full = false;
  ctx.scope.paths = {std::string(kLibDir) + "/libother.so.1"};  // a change outside prog's scope: nothing
  auto other = LibrariesCheck().run(ctx);
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->findings.empty()) << dump(other->findings);

  ctx.scope.paths = {std::string(kLibDir) + "/libfoo.so.1"};
  auto scoped = LibrariesCheck().run(ctx);
  ASSERT_TRUE(scoped);
  const Finding* f = find_finding(scoped->findings, std::string(kLibDir) + "/libmid.so.1", "symbol:libfoo.so.1:bar");
  ASSERT_NE(f, nullptr) << dump(scoped->findings);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_NE(f->message.find("loaded by /usr/bin/prog"), std::string::npos) << f->message;
}

// Points the .dynsym of the ELF64 file at `path` past its end, or the name of its first global
// definition outside .dynstr.
void corrupt_dynsym(const std::string& path, bool name) {
  std::string bytes = read_file(path);
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof(eh));
  for (std::size_t i = 0; i < eh.e_shnum; ++i) {
    std::size_t at = eh.e_shoff + i * eh.e_shentsize;
    Elf64_Shdr sh;
    std::memcpy(&sh, bytes.data() + at, sizeof(sh));
    if (sh.sh_type != SHT_DYNSYM) continue;
    if (name) {
      for (std::size_t k = 1; k < sh.sh_size / sizeof(Elf64_Sym); ++k) {
        Elf64_Sym sym;
        std::size_t s = sh.sh_offset + k * sizeof(Elf64_Sym);
        std::memcpy(&sym, bytes.data() + s, sizeof(sym));
        if (sym.st_name == 0 || sym.st_shndx == SHN_UNDEF || ELF64_ST_BIND(sym.st_info) != STB_GLOBAL) continue;
        sym.st_name = 0x7ffffff0;
        std::memcpy(bytes.data() + s, &sym, sizeof(sym));
        break;
      }
    } else {
      sh.sh_offset = bytes.size() + 4096;
      std::memcpy(bytes.data() + at, &sh, sizeof(sh));
    }
  }
  write_file(path, bytes);
}

TEST_F(ElfSymbolsTest, MalformedDynsymIsAClearFindingNotACrash) {
  for (bool name : {false, true}) {
    install(kFooBar, kFooBar, "", "", "/usr/bin/prog", kUseBoth);
    corrupt_dynsym(root_ + kLibDir + "/libfoo.so.1", name);
    auto fs = run();
    const Finding* f = find_finding(fs, std::string(kLibDir) + "/libfoo.so.1", "malformed-elf");
    ASSERT_NE(f, nullptr) << dump(fs);
    EXPECT_NE(f->message.find(name ? "name outside .dynstr" : "past the end of the file"), std::string::npos)
        << f->message;
    // The program's scope holds a malformed object: that finding says it; no symbol flood.
    for (const auto& g : fs) EXPECT_EQ(g.id.rfind("symbol:", 0), std::string::npos) << dump(fs);
  }
}

TEST(ElfSymbols, DefinesFollowsCheckMatch) {
  ElfObject lib;
  auto h = symbol_hash("f");
  auto v1 = static_cast<std::uint32_t>(symbol_hash("V_1")) | 1u;
  auto v2 = static_cast<std::uint32_t>(symbol_hash("V_2")) | 1u;
  lib.exports = {SymbolDef{h, v1, SymbolDef::kHidden}};  // f@V_1 only
  EXPECT_TRUE(defines(lib, SymbolRef{h, v1, 0, 0, 0}));
  EXPECT_FALSE(defines(lib, SymbolRef{h, v2, 0, 0, 0}));
  EXPECT_FALSE(defines(lib, SymbolRef{h, 0, 0, 0, 0}));  // unversioned: a hidden, newer version is not taken
  EXPECT_FALSE(defines(lib, SymbolRef{symbol_hash("g"), 0, 0, 0, 0}));
  lib.exports = {SymbolDef{h, v2, 0}};  // f@@V_2
  EXPECT_TRUE(defines(lib, SymbolRef{h, 0, 0, 0, 0}));
  EXPECT_FALSE(defines(lib, SymbolRef{h, v1, 0, 0, 0}));
  lib.exports = {SymbolDef{h, 0, SymbolDef::kOldest}};  // unversioned f
  EXPECT_TRUE(defines(lib, SymbolRef{h, v1, 0, 0, 0}));
  EXPECT_FALSE(defines(lib, SymbolRef{h, v1, 0, 0, SymbolRef::kHidden}));
}

}  // namespace
}  // namespace guard::checks
