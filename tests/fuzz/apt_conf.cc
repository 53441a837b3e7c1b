// One apt configuration file (/etc/apt/apt.conf.d/*) from any bytes, with #include refused
// (reading other files is load_apt_config's, over a root), and the hook commands found in it.
#include <string>

#include "checks/apt_hooks_conf.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace guard::checks;
  AptConfig conf;
  auto include = [](const std::string&, unsigned) { return false; };
  (void)parse_apt_config(guard::fuzz::bytes(data, size), "/etc/apt/apt.conf.d/99fuzz", conf, 0, include);
  for (const auto& hook : apt_hooks(conf)) (void)shell_programs(hook.command);
  return 0;
}
