#include "checks/initramfs.h"

#include <gtest/gtest.h>

#include <set>

#include "checks/decompress.h"
#include "checks/modules.h"
#include "tests/unit/checks/initramfs_fixture.h"

namespace guard::checks {
namespace {

using guard::testing::compress;
using guard::testing::CpioFile;
using guard::testing::microcode_cpio;
using guard::testing::newc;
using Kind = InitramfsProblem::Kind;

const std::vector<CpioFile> kMain{
    {"usr", "", 040755},
    {"usr/lib/modules/6.1.0-13-amd64/kernel/fs/btrfs/btrfs.ko", std::string(70000, 'b')},
    {"init", "#!/bin/sh\nexec /sbin/init\n", 0100755},
    {"bin", "usr/bin", 0120777},
};

struct Listed {
  InitramfsScan scan;
  std::vector<std::string> names;
};

Listed scan(const std::string& image, const InitramfsLimits& limits = {}) {
  Listed out;
  out.scan = scan_initramfs(bytes_source(image), [&](const InitramfsEntry& e) { out.names.emplace_back(e.name); },
                            limits);
  return out;
}

std::string describe(const InitramfsScan& s) {
  std::string out;
  for (const auto& seg : s.segments)
    out += fmt::format("{} at {}: {} in, {} out, {} entries\n", seg.format, seg.offset, seg.input_bytes,
                       seg.output_bytes, seg.entries);
  if (s.problem) out += fmt::format("problem at {}: {}\n", s.problem->offset, s.problem->message);
  return out;
}

TEST(Initramfs, MicrocodePrefixAndEachCompressionDebianWrites) {
  for (const char* format : {"zstd", "gzip", "xz", "lzma", "lz4"}) {
    auto main = compress(format, newc(kMain));
    if (!main) {
      if (guard::testing::in_ci()) ADD_FAILURE() << "no " << format << " tool (scripts/install-deps installs it)";
      continue;
    }
    std::string early = microcode_cpio();
    Listed l = scan(early + *main);
    ASSERT_FALSE(l.scan.problem) << format << "\n" << describe(l.scan);
    ASSERT_EQ(l.scan.segments.size(), 2U) << describe(l.scan);
    EXPECT_EQ(l.scan.segments[0].format, "cpio");
    EXPECT_EQ(l.scan.segments[0].entries, 4U);
    EXPECT_EQ(l.scan.segments[1].format, format);
    EXPECT_EQ(l.scan.segments[1].offset, early.size());
    EXPECT_EQ(l.scan.segments[1].entries, kMain.size());
    EXPECT_EQ(l.scan.input_bytes, early.size() + main->size());
    std::set<std::string> names(l.names.begin(), l.names.end());
    EXPECT_TRUE(names.count("init")) << format;
    EXPECT_TRUE(names.count("kernel/x86/microcode/GenuineIntel.bin")) << format;
    EXPECT_TRUE(names.count("usr/lib/modules/6.1.0-13-amd64/kernel/fs/btrfs/btrfs.ko")) << format;
  }
}

TEST(Initramfs, TruncatedCompressedDataIsFound) {
  auto main = compress("zstd", newc(kMain));
  ASSERT_TRUE(main);
  std::string image = microcode_cpio() + *main;
  for (std::size_t cut : {std::size_t{1}, std::size_t{16}, main->size() / 2}) {
    std::string truncated = image.substr(0, image.size() - cut);
    Listed l = scan(truncated);
    ASSERT_TRUE(l.scan.problem) << cut << "\n" << describe(l.scan);
    EXPECT_EQ(l.scan.problem->kind, Kind::truncated) << l.scan.problem->message;
    EXPECT_EQ(l.scan.problem->offset, truncated.size());
    EXPECT_NE(l.scan.problem->message.find("zstd data starting at offset " + std::to_string(microcode_cpio().size())),
              std::string::npos)
        << l.scan.problem->message;
  }
  auto gz = compress("gzip", newc(kMain));
  ASSERT_TRUE(gz);
  Listed l = scan(gz->substr(0, gz->size() - 4));  // the length field of the trailer is gone
  ASSERT_TRUE(l.scan.problem) << describe(l.scan);
  EXPECT_EQ(l.scan.problem->kind, Kind::truncated);
}

TEST(Initramfs, CorruptByteInTheMiddleIsFound) {
  for (const char* format : {"zstd", "gzip", "xz"}) {
    auto main = compress(format, newc(kMain));
    ASSERT_TRUE(main) << format;
    std::string image = microcode_cpio() + *main;
    std::size_t at = microcode_cpio().size() + main->size() / 2;
    image[at] = static_cast<char>(image[at] ^ 0x55);
    Listed l = scan(image);
    ASSERT_TRUE(l.scan.problem) << format << "\n" << describe(l.scan);
    EXPECT_EQ(l.scan.problem->kind, Kind::corrupt) << format << ": " << l.scan.problem->message;
    EXPECT_GE(l.scan.problem->offset, microcode_cpio().size()) << format;
  }
}

TEST(Initramfs, BrokenCpioIsFound) {
  // A truncated uncompressed archive: the kernel's view ends inside a member.
  std::string plain = newc(kMain);
  Listed l = scan(plain.substr(0, 400));
  ASSERT_TRUE(l.scan.problem) << describe(l.scan);
  EXPECT_EQ(l.scan.problem->kind, Kind::truncated);
  EXPECT_NE(l.scan.problem->message.find("inside the member usr/lib/modules"), std::string::npos)
      << l.scan.problem->message;
  // A header field that is not hex, inside compressed data.
  std::string bad = plain;
  bad[20] = 'x';
  auto z = compress("gzip", bad);
  ASSERT_TRUE(z);
  l = scan(*z);
  ASSERT_TRUE(l.scan.problem) << describe(l.scan);
  EXPECT_EQ(l.scan.problem->kind, Kind::corrupt);
  EXPECT_NE(l.scan.problem->message.find("not hexadecimal"), std::string::npos) << l.scan.problem->message;
  // Compressed data that stops inside a member (a cpio archive cut before compression).
  z = compress("gzip", plain.substr(0, 300));
  l = scan(*z);
  ASSERT_TRUE(l.scan.problem) << describe(l.scan);
  EXPECT_EQ(l.scan.problem->kind, Kind::corrupt);
  EXPECT_NE(l.scan.problem->message.find("ends inside the member"), std::string::npos) << l.scan.problem->message;
  // Not an initramfs at all.
  l = scan("hello world, this is text");
  ASSERT_TRUE(l.scan.problem);
  EXPECT_EQ(l.scan.problem->kind, Kind::corrupt);
  EXPECT_EQ(l.scan.problem->offset, 0U);
  // Junk after complete archives: the kernel stops there, what it unpacked stays.
  l = scan(plain + "JUNKJUNK");
  ASSERT_TRUE(l.scan.problem);
  EXPECT_EQ(l.scan.problem->kind, Kind::trailing);
  EXPECT_EQ(l.scan.problem->offset, plain.size());
  // A format the kernel reads that we do not.
  l = scan(plain + "BZh91AY&SY");
  ASSERT_TRUE(l.scan.problem);
  EXPECT_EQ(l.scan.problem->kind, Kind::unsupported);
}

TEST(Initramfs, LimitsStopTheScan) {
  auto z = compress("zstd", newc(kMain));
  ASSERT_TRUE(z);
  InitramfsLimits small;
  small.max_output = 1000;
  Listed l = scan(*z, small);
  ASSERT_TRUE(l.scan.problem);
  EXPECT_EQ(l.scan.problem->kind, Kind::too_large);
  InitramfsLimits few;
  few.max_entries = 2;
  l = scan(*z, few);
  ASSERT_TRUE(l.scan.problem);
  EXPECT_EQ(l.scan.problem->kind, Kind::too_large);
  EXPECT_EQ(l.names.size(), 2U);
  // A name size beyond PATH_MAX is refused before anything is buffered.
  std::string huge = newc({{std::string(5000, 'n'), "x"}});
  l = scan(huge);
  ASSERT_TRUE(l.scan.problem);
  EXPECT_NE(l.scan.problem->message.find("name size of 5001"), std::string::npos) << l.scan.problem->message;
}

// Hostile input: every cut and thousands of flipped bytes in each format end in a result
// (a problem or a clean scan), never a crash, a hang or unbounded output.
TEST(Initramfs, MutatedImagesNeverCrash) {
  std::uint32_t x = 2463534242U;
  auto next = [&x] { return x ^= x << 13, x ^= x >> 17, x ^= x << 5; };
  for (const char* format : {"zstd", "gzip", "xz", "lzma", "lz4"}) {
    auto main = compress(format, newc(kMain));
    if (!main) continue;
    std::string image = microcode_cpio() + *main;
    InitramfsLimits limits;
    limits.max_output = 1 << 20;
    for (std::size_t cut = 0; cut < image.size(); cut += 97) {
      Listed l = scan(image.substr(0, cut), limits);
      EXPECT_LE(l.scan.output_bytes, limits.max_output);
    }
    for (int i = 0; i < 300; ++i) {
      std::string m = image;
      for (int k = 0; k < 3; ++k) m[next() % m.size()] = static_cast<char>(next());
      Listed l = scan(m, limits);
      EXPECT_LE(l.scan.output_bytes, limits.max_output);
    }
  }
}

TEST(Initramfs, ArchiveWrittenByCpioItself) {
  if (!guard::testing::have_tool("cpio")) {
    if (guard::testing::in_ci()) FAIL() << "cpio is not installed (scripts/install-deps installs it)";
    GTEST_SKIP() << "cpio is not installed";
  }
  guard::testing::TempDir dir("ug-cpio");
  guard::testing::write_file(dir / "tree/init", "#!/bin/sh\n", 0755);
  guard::testing::write_file(dir / "tree/usr/lib/modules/6.1.0-13-amd64/modules.dep", "");
  auto r = guard::testing::run(
      {"sh", "-c", "cd " + dir / "tree" + " && find . | LC_ALL=C sort | cpio --quiet -o -H newc > ../out.cpio"});
  ASSERT_TRUE(r.ok()) << r.err;
  Listed l = scan(guard::testing::read_file(dir / "out.cpio"));
  EXPECT_FALSE(l.scan.problem) << describe(l.scan);
  std::set<std::string> names(l.names.begin(), l.names.end());
  EXPECT_TRUE(names.count("init"));
  EXPECT_TRUE(names.count("usr/lib/modules/6.1.0-13-amd64/modules.dep"));
}

TEST(Modules, VermagicFromACompiledModule) {
  std::string ko = guard::testing::fake_module("6.1.0-99-amd64 SMP mod_unload modversions ");
  ReadAt read = [&](std::uint64_t off, std::size_t n, std::string* out) {
    if (off > ko.size() || n > ko.size() - off) return false;
    out->assign(ko, off, n);
    return true;
  };
  auto magic = module_vermagic(read, ko.size());
  ASSERT_TRUE(magic) << magic.error().to_string();
  ASSERT_TRUE(*magic);
  EXPECT_EQ(**magic, "6.1.0-99-amd64 SMP mod_unload modversions ");
  // Cut before its section headers.
  auto cut = module_vermagic(read, ko.size() / 2);
  EXPECT_FALSE(cut);
  ReadAt text = [](std::uint64_t, std::size_t n, std::string* out) {
    *out = std::string(n, 'x');
    return true;
  };
  EXPECT_FALSE(module_vermagic(text, 4096));
  auto xz = compress("xz", ko);
  ASSERT_TRUE(xz);
  auto plain = decompress_all(Compression::xz, *xz, 1 << 20);
  ASSERT_TRUE(plain) << plain.error().to_string();
  EXPECT_EQ(*plain, ko);
  EXPECT_FALSE(decompress_all(Compression::xz, xz->substr(0, xz->size() - 8), 1 << 20));
  EXPECT_FALSE(decompress_all(Compression::xz, *xz, 100));  // over the limit
}

TEST(Modules, ModulesDepAndNames) {
  ModulesDep dep = parse_modules_dep(
      "kernel/fs/btrfs/btrfs.ko.xz: kernel/crypto/xor.ko.xz kernel/lib/raid6/raid6_pq.ko.xz\n"
      "kernel/lib/raid6/raid6_pq.ko.xz: kernel/lib/libcrc32c.ko.xz\n"
      "kernel/crypto/xor.ko.xz:\n"
      "garbage line\n"
      "kernel/drivers/md/dm-mod.ko.zst:\n");
  EXPECT_EQ(dep.bad_lines, std::vector<std::size_t>{4});
  EXPECT_EQ(dep.by_name.at("btrfs"), "kernel/fs/btrfs/btrfs.ko.xz");
  EXPECT_EQ(dep.by_name.at("dm_mod"), "kernel/drivers/md/dm-mod.ko.zst");
  EXPECT_EQ(dep_closure(dep, "kernel/fs/btrfs/btrfs.ko.xz"),
            (std::vector<std::string>{"kernel/fs/btrfs/btrfs.ko.xz", "kernel/crypto/xor.ko.xz",
                                      "kernel/lib/raid6/raid6_pq.ko.xz", "kernel/lib/libcrc32c.ko.xz"}));
  EXPECT_EQ(module_name("a/b/ext4.ko"), "ext4");
  EXPECT_EQ(module_name("a/b/README"), "");
  EXPECT_EQ(strip_module_compression("x/btrfs.ko.zst"), "x/btrfs.ko");
  EXPECT_EQ(strip_module_compression("x/btrfs.xz"), "x/btrfs.xz");
  EXPECT_EQ(parse_modules_builtin("kernel/fs/ext4/ext4.ko\nkernel/fs/vfat/vfat.ko\n").count("ext4"), 1U);
  EXPECT_EQ(find_alias("alias fs-ext2 ext4\nalias fs-ext3 ext4\n", "fs-ext3"), "ext4");
  EXPECT_FALSE(find_alias("alias fs-ext3 ext4\n", "fs-xfs"));
}

}  // namespace
}  // namespace guard::checks
