#include "checks/elf_object.h"

#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "tests/unit/checks/fixture_root.h"

namespace guard::checks {
namespace {

using namespace guard::testing;

ElfObject read_path(const std::string& path) {
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(fd.valid()) << path;
  return read_elf(fd.get());
}

TEST(ElfObject, ReadsDynamicSectionAndVersions) {
  TempDir dir;
  build_lib(dir / "libx.so.1", "libx.so.1", "int x1(void) { return 1; }\nint x2(void) { return 2; }\n",
            "X_1.0 { global: x1; local: *; };\nX_2.0 { global: x2; } X_1.0;\n");
  build_exe(dir / "prog", "int x2(void); int main(void) { return x2(); }\n",
            {dir / "libx.so.1", "-Wl,-rpath,/opt/a:$ORIGIN/lib", "-Wl,--enable-new-dtags"});
  ElfObject lib = read_path(dir / "libx.so.1");
  EXPECT_TRUE(lib.error.empty()) << lib.error;
  EXPECT_EQ(lib.ident.elf_class, ELFCLASS64);
  EXPECT_EQ(lib.ident.type, ET_DYN);
  EXPECT_EQ(lib.soname, "libx.so.1");
  EXPECT_EQ(lib.verdef, (std::vector<std::string>{"X_1.0", "X_2.0"}));
  ElfObject prog = read_path(dir / "prog");
  EXPECT_TRUE(prog.error.empty()) << prog.error;
  EXPECT_TRUE(prog.has_interp);
  EXPECT_EQ(prog.interp, "/lib64/ld-linux-x86-64.so.2");
  EXPECT_TRUE(prog.has_runpath);
  EXPECT_FALSE(prog.has_rpath);
  EXPECT_EQ(prog.runpath, "/opt/a:$ORIGIN/lib");
  EXPECT_NE(std::find(prog.needed.begin(), prog.needed.end(), "libx.so.1"), prog.needed.end());
  bool x2 = false;
  for (const auto& vn : prog.verneed)
    if (vn.file == "libx.so.1") x2 = std::find(vn.versions.begin(), vn.versions.end(), "X_2.0") != vn.versions.end();
  EXPECT_TRUE(x2);
}

// The bytes entry point (the fuzz target's) reads what the file one reads, and a truncated
// image gives an error, not a crash.
TEST(ElfObject, ReadsTheSameFromBytes) {
  TempDir dir;
  build_lib(dir / "libx.so.1", "libx.so.1", "int x1(void) { return 1; }\nint x2(void) { return x1(); }\n",
            "X_1.0 { global: x1; local: *; };\nX_2.0 { global: x2; } X_1.0;\n");
  std::string bytes = read_file(dir / "libx.so.1");
  ElfObject from_file = read_path(dir / "libx.so.1");
  ElfObject from_bytes = read_elf_bytes(bytes);
  EXPECT_TRUE(from_bytes.error.empty()) << from_bytes.error;
  EXPECT_EQ(from_bytes.soname, from_file.soname);
  EXPECT_EQ(from_bytes.verdef, from_file.verdef);
  EXPECT_EQ(from_bytes.needed, from_file.needed);
  EXPECT_EQ(from_bytes.exports.size(), from_file.exports.size());
  EXPECT_EQ(from_bytes.imports.size(), from_file.imports.size());
  EXPECT_FALSE(read_elf_bytes(std::string_view(bytes).substr(0, 200)).error.empty());
  EXPECT_FALSE(read_elf_bytes("").error.empty());
}

// Random corruption of a real shared object: a result with or without `error`, never a crash.
TEST(ElfObject, SurvivesRandomCorruption) {
  TempDir dir;
  build_lib(dir / "libx.so.1", "libx.so.1", "int x1(void) { return 1; }\n", "X_1.0 { global: x1; local: *; };\n");
  std::string good = read_file(dir / "libx.so.1");
  std::uint32_t seed = 777;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  for (int i = 0; i < 300; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 8; ++k) {
      // Corrupt mostly the headers and the dynamic/version sections near the start.
      std::size_t at = (next() % 2 == 0) ? next() % 4096 : next() % bytes.size();
      if (at < bytes.size()) bytes[at] = static_cast<char>(next() >> 16);
    }
    if (next() % 4 == 0) bytes.resize(next() % bytes.size());
    write_file(dir / "fuzz.so", bytes);
    ElfObject o = read_path(dir / "fuzz.so");
    (void)o;
  }
}

}  // namespace
}  // namespace guard::checks
