// An initramfs image (cpio segments, compressed or not, concatenated) from any bytes, with
// limits small enough that every input stays quick: what exceeds them is a too_large problem.
#include "checks/decompress.h"
#include "checks/initramfs.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace guard::checks;
  auto text = guard::fuzz::bytes(data, size);
  (void)detect_compression(text);
  (void)detect_unsupported_compression(text);
  InitramfsLimits limits;
  limits.max_output = 8u << 20;
  limits.max_entries = 4096;
  std::uint64_t seen = 0;
  auto scan = scan_initramfs(
      bytes_source(text), [&](const InitramfsEntry& e) {
        ++seen;
        UG_FUZZ_CHECK(e.name.size() <= limits.max_name);
      },
      limits);
  UG_FUZZ_CHECK(scan.entries == seen);
  UG_FUZZ_CHECK(scan.output_bytes <= limits.max_output + (1u << 20));
  return 0;
}
