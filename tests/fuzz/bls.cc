// A Boot Loader Specification entry (/boot/loader/entries/*.conf) from any bytes.
#include "checks/bls.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)guard::checks::parse_bls_entry(guard::fuzz::bytes(data, size));
  return 0;
}
