// /etc/ld.so.cache (old and new formats, glibc-hwcaps extension) from any bytes.
#include "checks/ld_so_cache.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)guard::checks::parse_ld_so_cache(guard::fuzz::bytes(data, size), "/etc/ld.so.cache");
  return 0;
}
