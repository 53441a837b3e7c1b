#include "checks/ld_so_cache.h"

#include <elf.h>
#include <gtest/gtest.h>

#include "tests/unit/checks/fixture_root.h"

namespace guard::checks {
namespace {

using testing::build_cache;
using testing::CacheSpec;

TEST(LdSoCache, ParsesNewFormatEntriesInOrder) {
  auto bytes = build_cache({{"libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"}, {"libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0x0003}});
  auto entries = parse_ld_so_cache(bytes);
  ASSERT_TRUE(entries) << entries.error().to_string();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].soname, "libz.so.1");
  EXPECT_EQ((*entries)[0].path, "/lib/x86_64-linux-gnu/libz.so.1");
  EXPECT_EQ((*entries)[0].flags, 0x0303);
  EXPECT_EQ((*entries)[0].hwcaps, "");
  EXPECT_EQ((*entries)[1].flags, 0x0003);
}

TEST(LdSoCache, ParsesHwcapsExtension) {
  auto bytes = build_cache({{"libh.so.1", "/usr/lib/glibc-hwcaps/x86-64-v3/libh.so.1", 0x0303, 1},
                            {"libh.so.1", "/usr/lib/libh.so.1"}},
                           {"x86-64-v2", "x86-64-v3"});
  auto entries = parse_ld_so_cache(bytes);
  ASSERT_TRUE(entries) << entries.error().to_string();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].hwcaps, "x86-64-v3");
  EXPECT_EQ((*entries)[1].hwcaps, "");
}

TEST(LdSoCache, AcceptsOldHeaderInFront) {
  auto bytes = build_cache({{"libz.so.1", "/lib/libz.so.1"}}, {}, /*old=*/true);
  auto entries = parse_ld_so_cache(bytes);
  ASSERT_TRUE(entries) << entries.error().to_string();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].soname, "libz.so.1");
}

TEST(LdSoCache, MalformedInputIsAnErrorWithOffset) {
  auto good = build_cache({{"libz.so.1", "/lib/libz.so.1"}}, {"x86-64-v2"});
  for (std::size_t cut : {std::size_t{0}, std::size_t{10}, std::size_t{47}, std::size_t{60}, good.size() - 30}) {
    auto r = parse_ld_so_cache(good.substr(0, cut), "/etc/ld.so.cache");
    ASSERT_FALSE(r) << "cut at " << cut;
    EXPECT_EQ(r.error().path, "/etc/ld.so.cache");
    EXPECT_NE(r.error().message.find("offset"), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(parse_ld_so_cache("not a cache at all, but long enough to have a header......"));
  // An entry naming a string past the end.
  std::string bad = build_cache({{"libz.so.1", "/lib/libz.so.1"}});
  std::uint32_t far = 1u << 30;
  std::memcpy(&bad[48 + 4], &far, 4);
  EXPECT_FALSE(parse_ld_so_cache(bad));
  // A hwcaps index past the table.
  std::string bad_hw = build_cache({{"libz.so.1", "/lib/libz.so.1", 0x0303, 5}}, {"x86-64-v2"});
  EXPECT_FALSE(parse_ld_so_cache(bad_hw));
}

TEST(LdSoCache, ExpectedFlags) {
  EXPECT_EQ(expected_cache_flags(ELFCLASS64, EM_X86_64), 0x0303);
  EXPECT_EQ(expected_cache_flags(ELFCLASS32, EM_386), 0x0003);
  EXPECT_EQ(expected_cache_flags(ELFCLASS64, EM_AARCH64), 0x0a03);
}

// A cache written by the real ldconfig for a fixture root. ldconfig -r chroots: root only.
TEST(LdSoCache, ParsesCacheWrittenByLdconfig) {
  if (!testing::is_root()) UG_SKIP_OR_FAIL("ldconfig -r chroots into the fixture: needs root");
  testing::TempDir dir;
  std::string root = dir / "root";
  testing::make_base_root(root);
  testing::build_lib(root + "/opt/lc/libq.so.1", "libq.so.1", "int q(void) { return 1; }\n");
  testing::write_file(root + "/etc/ld.so.conf", "/opt/lc\n/usr/lib/x86_64-linux-gnu\n");
  auto r = testing::run({"ldconfig", "-C", "/etc/ld.so.cache", "-f", "/etc/ld.so.conf", "-r", root});
  ASSERT_TRUE(r.ok()) << r.out << r.err;
  auto bytes = testing::read_file(root + "/etc/ld.so.cache");
  auto entries = parse_ld_so_cache(bytes);
  ASSERT_TRUE(entries) << entries.error().to_string();
  bool found = false;
  for (const auto& e : *entries) {
    if (e.soname != "libq.so.1") continue;
    found = true;
    EXPECT_EQ(e.path, "/opt/lc/libq.so.1");
    EXPECT_EQ(e.flags, 0x0303);
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace guard::checks

namespace guard::checks {
namespace {

// Random corruption of a valid cache: an Error or entries, never a crash or a hang.
TEST(LdSoCache, SurvivesRandomCorruption) {
  auto good = testing::build_cache({{"libz.so.1", "/lib/libz.so.1"}, {"libh.so.1", "/lib/h/libh.so.1", 0x0303, 0}},
                                   {"x86-64-v2"}, /*old=*/true);
  std::uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = good;
    int flips = 1 + static_cast<int>(next() % 4);
    for (int k = 0; k < flips; ++k) bytes[next() % bytes.size()] = static_cast<char>(next() >> 16);
    if (next() % 8 == 0) bytes.resize(next() % bytes.size());
    auto r = parse_ld_so_cache(bytes);
    if (r) {
      for (const auto& e : *r) EXPECT_LE(e.path.size(), bytes.size());
    }
  }
}

}  // namespace
}  // namespace guard::checks
