// A parser for glibc's /etc/ld.so.cache ("glibc-ld.so.cache1.1", optionally behind the old
// "ld.so-1.7.0" header), including the glibc-hwcaps extension.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace guard::checks {

// Entry flags as ldconfig writes them (glibc sysdeps/generic/ldconfig.h).
inline constexpr std::int32_t kCacheFlagTypeMask = 0x00ff;
inline constexpr std::int32_t kCacheFlagElfLibc6 = 0x0003;
inline constexpr std::int32_t kCacheFlagArchMask = 0xff00;

// One library in the cache, e.g. {soname="libz.so.1", path="/lib/x86_64-linux-gnu/libz.so.1",
// flags=0x0303 (ELF libc6, x86-64 lib64), hwcaps=""} or hwcaps="x86-64-v3" for an entry in a
// glibc-hwcaps subdirectory.
struct LdCacheEntry {
  std::string soname;
  std::string path;
  std::int32_t flags = 0;
  std::string hwcaps;  // the glibc-hwcaps subdirectory name, empty for a plain entry
};

// Parses the cache bytes; entries in file order (ldconfig sorts them, best first). Malformed
// input is an Error naming `file` and the offset, never a crash.
[[nodiscard]] base::Result<std::vector<LdCacheEntry>> parse_ld_so_cache(std::string_view bytes,
                                                                        const std::string& file = "/etc/ld.so.cache");

// The cache flags ldconfig gives a library of this ELF class (1 = 32-bit, 2 = 64-bit) and
// machine (EM_*), e.g. (2, EM_X86_64) -> 0x0303; -1 when unknown (then any libc6 entry fits).
[[nodiscard]] std::int32_t expected_cache_flags(unsigned elf_class, unsigned machine);

}  // namespace guard::checks
