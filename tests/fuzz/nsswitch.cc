// /etc/nsswitch.conf from any bytes.
#include "checks/nss.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (const auto& line : guard::checks::parse_nsswitch(guard::fuzz::bytes(data, size))) {
    (void)guard::checks::nss_identity_database(line.database);
  }
  return 0;
}
