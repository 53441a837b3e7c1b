#include "checks/ld_so_cache.h"

#include <elf.h>

#include <bit>
#include <cstring>
#include <fmt/format.h>

namespace guard::checks {
namespace {

constexpr std::string_view kOldMagic = "ld.so-1.7.0";
constexpr std::string_view kNewMagic = "glibc-ld.so.cache1.1";
constexpr std::size_t kOldHeaderSize = 16;  // magic[11], pad, uint32 nlibs
constexpr std::size_t kOldEntrySize = 12;   // int32 flags, uint32 key, uint32 value
constexpr std::size_t kNewHeaderSize = 48;  // magic+version[20], nlibs, len_strings, flags, pad[3], ext offset, unused[3]
constexpr std::size_t kNewEntrySize = 24;   // flags, key, value, osversion, uint64 hwcap
constexpr std::uint32_t kExtensionMagic = static_cast<std::uint32_t>(-358342284);
constexpr std::uint32_t kExtensionTagHwcaps = 1;
constexpr std::uint64_t kHwcapExtension = 1ULL << 62;

template <typename T>
T load(std::string_view bytes, std::size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

}  // namespace

base::Result<std::vector<LdCacheEntry>> parse_ld_so_cache(std::string_view bytes, const std::string& file) {
  auto bad = [&](std::size_t offset, const std::string& what) {
    return base::fail("ld.so.cache", file, fmt::format("malformed cache at offset {}: {}", offset, what));
  };
  std::size_t base_off = 0;
  if (bytes.substr(0, kOldMagic.size()) == kOldMagic) {
    if (bytes.size() < kOldHeaderSize) return bad(0, "truncated old header");
    auto nlibs = load<std::uint32_t>(bytes, 12);
    std::uint64_t end = kOldHeaderSize + std::uint64_t{nlibs} * kOldEntrySize;
    end = (end + 7) & ~std::uint64_t{7};
    if (end > bytes.size()) return bad(12, "old entry table runs past the end");
    base_off = static_cast<std::size_t>(end);
  }
  std::string_view cache = bytes.substr(base_off);
  if (cache.size() < kNewHeaderSize || cache.substr(0, kNewMagic.size()) != kNewMagic)
    return bad(base_off, "no \"glibc-ld.so.cache1.1\" header (not a glibc cache, or an unsupported format)");

  auto nlibs = load<std::uint32_t>(cache, 20);
  auto len_strings = load<std::uint32_t>(cache, 24);
  auto endian = static_cast<std::uint8_t>(cache[28]) & 3;
  auto ext_offset = load<std::uint32_t>(cache, 32);
  // 0 = unknown (older ldconfig), 1 = invalid, 2 = little, 3 = big.
  bool little = std::endian::native == std::endian::little;
  if (endian == 1 || (endian == 2 && !little) || (endian == 3 && little))
    return bad(base_off + 28, "byte order does not match this machine");
  std::uint64_t entries_end = kNewHeaderSize + std::uint64_t{nlibs} * kNewEntrySize;
  if (entries_end > cache.size()) return bad(base_off + 20, fmt::format("{} entries run past the end", nlibs));
  if (entries_end + len_strings > cache.size())
    return bad(base_off + 24, "string table runs past the end");

  auto string_at = [&](std::uint32_t off, std::string* out) -> bool {
    if (off >= cache.size()) return false;
    std::size_t nul = cache.find('\0', off);
    if (nul == std::string_view::npos) return false;
    out->assign(cache.data() + off, nul - off);
    return true;
  };

  // glibc-hwcaps subdirectory names, indexed by the entries' hwcap low 32 bits.
  std::vector<std::string> hwcaps_names;
  if (ext_offset != 0) {
    if (ext_offset % 4 != 0 || std::uint64_t{ext_offset} + 8 > cache.size())
      return bad(base_off + 32, "extension directory offset out of range");
    if (load<std::uint32_t>(cache, ext_offset) == kExtensionMagic) {
      auto count = load<std::uint32_t>(cache, ext_offset + 4);
      if (std::uint64_t{ext_offset} + 8 + std::uint64_t{count} * 16 > cache.size())
        return bad(ext_offset, "extension sections run past the end");
      for (std::uint32_t i = 0; i < count; ++i) {
        std::size_t s = ext_offset + 8 + std::size_t{i} * 16;
        auto tag = load<std::uint32_t>(cache, s);
        auto offset = load<std::uint32_t>(cache, s + 8);
        auto size = load<std::uint32_t>(cache, s + 12);
        if (tag != kExtensionTagHwcaps) continue;
        if (size % 4 != 0 || std::uint64_t{offset} + size > cache.size())
          return bad(s, "glibc-hwcaps section out of range");
        for (std::uint32_t k = 0; k < size / 4; ++k) {
          std::string name;
          if (!string_at(load<std::uint32_t>(cache, offset + k * 4), &name))
            return bad(offset + k * 4, "glibc-hwcaps name out of range");
          hwcaps_names.push_back(std::move(name));
        }
      }
    }
  }

  std::vector<LdCacheEntry> out;
  out.reserve(nlibs);
  for (std::uint32_t i = 0; i < nlibs; ++i) {
    std::size_t e = kNewHeaderSize + std::size_t{i} * kNewEntrySize;
    LdCacheEntry entry;
    entry.flags = load<std::int32_t>(cache, e);
    if (!string_at(load<std::uint32_t>(cache, e + 4), &entry.soname) ||
        !string_at(load<std::uint32_t>(cache, e + 8), &entry.path))
      return bad(base_off + e, fmt::format("entry {} names a string out of range", i));
    auto hwcap = load<std::uint64_t>(cache, e + 16);
    if ((hwcap >> 32) == (kHwcapExtension >> 32)) {
      auto index = static_cast<std::uint32_t>(hwcap);
      if (index >= hwcaps_names.size())
        return bad(base_off + e + 16, fmt::format("entry {} names glibc-hwcaps index {} of {}", i, index,
                                                  hwcaps_names.size()));
      entry.hwcaps = hwcaps_names[index];
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::int32_t expected_cache_flags(unsigned elf_class, unsigned machine) {
  bool is64 = elf_class == ELFCLASS64;
  switch (machine) {
    case EM_X86_64: return is64 ? 0x0303 : 0x0803;
    case EM_386: return 0x0003;
    case EM_AARCH64: return is64 ? 0x0a03 : -1;
    case EM_PPC64: return 0x0503;
    case EM_S390: return is64 ? 0x0403 : 0x0003;
    case EM_RISCV: return is64 ? 0x1003 : -1;
    default: return -1;
  }
}

}  // namespace guard::checks
