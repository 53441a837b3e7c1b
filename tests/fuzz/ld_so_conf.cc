// One ld.so.conf-style file from any bytes (the include fan-out over a root is bounded in
// load_ld_so_conf and tested by the unit tests; this is the line parser).
#include "checks/ld_so_conf.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto lines = guard::checks::parse_ld_so_conf(guard::fuzz::bytes(data, size), "/etc/ld.so.conf");
  if (lines) {
    for (const auto& l : *lines) UG_FUZZ_CHECK(!l.value.empty() && l.line >= 1);
  }
  return 0;
}
