// Whole-file decompression (modules: .ko.xz/.ko.zst/.ko.gz; the same decoders as the initramfs
// reader) from any bytes: the first byte picks the format, the rest is the data. The output
// bound holds: never more than max_output bytes.
#include "checks/decompress.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace guard::checks;
  if (size == 0) return 0;
  constexpr Compression kFormats[] = {Compression::gzip, Compression::zstd, Compression::xz, Compression::lzma,
                                      Compression::lz4_legacy};
  auto c = kFormats[data[0] % (sizeof(kFormats) / sizeof(kFormats[0]))];
  constexpr std::size_t kMax = 1u << 20;
  auto out = decompress_all(c, guard::fuzz::bytes(data + 1, size - 1), kMax);
  if (out) UG_FUZZ_CHECK(out->size() <= kMax);
  return 0;
}
