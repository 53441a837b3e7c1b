// An info/<pkg>.md5sums file from any bytes.
#include "checks/dpkg_status.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto entries = guard::checks::parse_md5sums(guard::fuzz::bytes(data, size), "md5sums");
  if (entries) {
    for (const auto& e : *entries) UG_FUZZ_CHECK(!e.path.empty() && e.path.front() == '/');
  }
  return 0;
}
