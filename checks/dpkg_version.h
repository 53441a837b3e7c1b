// Debian version comparison, as dpkg orders versions (deb-version(7)).
#pragma once

#include <string_view>

namespace guard::checks {

// Compares two Debian versions "[epoch:]upstream[-revision]" the way dpkg does: numeric
// epoch, then upstream and revision with dpkg's verrevcmp (digit runs compared as numbers,
// letters before other characters, '~' before everything, even the end).
// Returns <0, 0 or >0. e.g. compare_versions("1.0~rc1-1", "1.0-1") < 0,
// compare_versions("1:0.9", "2.0") > 0. Never fails: any bytes give some total order.
[[nodiscard]] int compare_versions(std::string_view a, std::string_view b);

}  // namespace guard::checks
