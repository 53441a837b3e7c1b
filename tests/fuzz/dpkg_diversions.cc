// /var/lib/dpkg/diversions from any bytes.
#include "checks/dpkg_status.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)guard::checks::parse_diversions(guard::fuzz::bytes(data, size), "diversions");
  return 0;
}
