// An info/<pkg>.list file and a dpkg.cfg.d path filter from any bytes.
#include <string>

#include "checks/dpkg_status.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = guard::fuzz::bytes(data, size);
  auto paths = guard::checks::parse_list(text);
  guard::checks::PathFilter filter;
  filter.add_config(text);  // the same bytes as path-include=/path-exclude= options
  std::size_t tried = 0;
  for (const auto& p : paths) {
    if (++tried > 64) break;  // fnmatch per filter and path: keep each input quick
    (void)filter.excluded(p);
  }
  return 0;
}
