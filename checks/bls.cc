#include "checks/bls.h"

#include "base/strings.h"

namespace guard::checks {

BlsEntry parse_bls_entry(std::string_view bytes) {
  BlsEntry e;
  for (std::string_view raw : base::split(bytes, '\n')) {
    std::string_view line = base::trim(raw);
    if (line.empty() || line.front() == '#') continue;
    std::size_t sp = line.find_first_of(" \t");
    std::string_view key = line.substr(0, sp);
    std::string value(sp == std::string_view::npos ? std::string_view() : base::trim(line.substr(sp)));
    if (key == "title") {
      e.title = value;
    } else if (key == "version") {
      e.version = value;
    } else if (key == "machine-id") {
      e.machine_id = value;
    } else if (key == "sort-key") {
      e.sort_key = value;
    } else if (key == "linux") {
      e.kernel = value;
    } else if (key == "initrd") {
      // One line may name several initrds separated by spaces (systemd-boot accepts that too).
      for (auto part : base::split_ws(value)) e.initrd.emplace_back(part);
    } else if (key == "efi") {
      e.efi = value;
    } else if (key == "options") {
      e.options.push_back(value);
    } else if (key == "devicetree") {
      e.devicetree = value;
    }
  }
  return e;
}

}  // namespace guard::checks
