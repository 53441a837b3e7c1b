// /var/lib/dpkg/status and a journal file of /var/lib/dpkg/updates/ from any bytes.
#include "checks/dpkg_status.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = guard::fuzz::bytes(data, size);
  auto records = guard::checks::parse_status(text, "status");
  if (records) {
    for (const auto& r : *records) (void)r.key();
  }
  (void)guard::checks::parse_status(text, "updates/0001", guard::checks::StatusFile::journal);
  return 0;
}
