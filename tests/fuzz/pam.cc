// A PAM stack file (/etc/pam.d/*) from any bytes.
#include "checks/pam.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (const auto& line : guard::checks::parse_pam_stack(guard::fuzz::bytes(data, size))) (void)line.text();
  return 0;
}
