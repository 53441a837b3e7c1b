// grub.cfg from any bytes, and selecting entries by the menu paths it gives.
#include "formats/grub_cfg.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto config = guard::formats::parse_grub_cfg(guard::fuzz::bytes(data, size));
  std::size_t tried = 0;
  for (const auto& e : config.entries) {
    if (++tried > 16) break;
    (void)config.selects(guard::formats::GrubConfig::title_path(e));
    if (!e.id.empty()) (void)config.selects(e.id);
  }
  return 0;
}
