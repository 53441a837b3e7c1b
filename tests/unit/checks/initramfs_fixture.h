// Fixtures in Debian's own kernel formats, built at test time: cpio "newc" archives as
// initramfs-tools writes them, compressed with the real tools, and kernel modules compiled
// as ELF relocatables with a .modinfo section.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/common/test_env.h"

namespace guard::testing {

struct CpioFile {
  std::string name;
  std::string data;
  std::uint32_t mode = 0100644;
};

// A newc archive (magic 070701) of `files` with its TRAILER!!!, padded to 512 bytes as cpio -o does.
inline std::string newc(const std::vector<CpioFile>& files) {
  std::string out;
  auto pad4 = [&out] {
    while (out.size() % 4 != 0) out.push_back('\0');
  };
  auto member = [&](const std::string& name, const std::string& data, std::uint32_t mode, std::uint32_t ino) {
    out += fmt::format("070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}", ino,
                       mode, 0, 0, 1, 0, data.size(), 0, 0, 0, 0, name.size() + 1, 0);
    out += name;
    out.push_back('\0');
    pad4();
    out += data;
    pad4();
  };
  std::uint32_t ino = 1;
  for (const auto& f : files) member(f.name, f.data, f.mode, ino++);
  member("TRAILER!!!", "", 0, 0);
  while (out.size() % 512 != 0) out.push_back('\0');
  return out;
}

// Debian's early microcode archive, as initramfs-tools prepends it uncompressed.
inline std::string microcode_cpio() {
  return newc({{"kernel", "", 040755},
               {"kernel/x86", "", 040755},
               {"kernel/x86/microcode", "", 040755},
               {"kernel/x86/microcode/GenuineIntel.bin", std::string(3000, '\x5a')}});
}

// True when `tool` is on the PATH.
inline bool have_tool(const std::string& tool) {
  return run({"sh", "-c", "command -v " + tool}).ok();
}

// `data` compressed by the real tool for `format` ("zstd", "gzip", "xz", "lzma", "lz4" as
// mkinitramfs runs it), or nullopt when the tool is missing.
inline std::optional<std::string> compress(const std::string& format, const std::string& data) {
  std::vector<std::string> argv;
  if (format == "zstd") argv = {"zstd", "-q", "-3"};
  if (format == "gzip") argv = {"gzip", "-n"};
  if (format == "xz") argv = {"xz", "--check=crc32"};
  if (format == "lzma") argv = {"xz", "--format=lzma"};
  if (format == "lz4") argv = {"lz4", "-q", "-l"};
  if (argv.empty() || !have_tool(argv[0])) return std::nullopt;
  TempDir dir("ug-compress");
  write_file(dir / "in", data);
  std::string cmd;
  for (const auto& a : argv) cmd += a + " ";
  auto r = run({"sh", "-c", cmd + "-c < " + dir / "in" + " > " + dir / "out"});
  EXPECT_TRUE(r.ok()) << format << ": " << r.err;
  return read_file(dir / "out");
}

// A kernel module: an ELF relocatable with `vermagic` in .modinfo, as modpost writes it.
inline std::string fake_module(const std::string& vermagic) {
  TempDir dir("ug-module");
  std::string source =
      "__attribute__((section(\".modinfo\"), used)) static const char license[] = \"license=GPL\";\n"
      "__attribute__((section(\".modinfo\"), used)) static const char v[] = \"vermagic=" +
      vermagic +
      "\";\n"
      "int init_module(void) { return 0; }\n";
  std::string log;
  bool ok = compile_c(source, dir / "m.ko", {"-c"}, &log);
  EXPECT_TRUE(ok) << log;
  return ok ? read_file(dir / "m.ko") : std::string();
}

}  // namespace guard::testing
