// A systemd unit file (or drop-in) from any bytes, and the lookups the services check makes.
#include <vector>

#include "checks/unit_file.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<guard::checks::UnitFile> files;
  files.push_back(guard::checks::parse_unit_file(guard::fuzz::bytes(data, size)));
  (void)guard::checks::unit_values(files, "Service", "ExecStart");
  (void)guard::checks::unit_assignments(files, "Unit", "Requires");
  return 0;
}
