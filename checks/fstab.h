// /etc/fstab read with libmount (this file pair is the only user of libmount.h in checks/).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace guard::checks {

// One fstab line. e.g. {"UUID=1b2c…", "/boot", "ext4", "defaults,nofail", …}.
struct FstabEntry {
  std::string source;   // as written (tags kept): "UUID=…", "/dev/sda1", "tmpfs", "srv:/export"
  std::string target;   // "/boot"; "none" or "swap" for swap
  std::string fstype;   // "ext4", "swap", "auto"…
  std::string options;  // "defaults,nofail"
  bool noauto = false;
  bool nofail = false;
  bool swap = false;  // fstype "swap"
};

struct Fstab {
  std::vector<FstabEntry> entries;     // in file order
  std::vector<std::size_t> bad_lines;  // 1-based numbers of lines libmount could not parse

  // The entry mounted at `target` (the last one, as mount would), or nullptr.
  [[nodiscard]] const FstabEntry* find_target(std::string_view target) const;
};

// Parses fstab bytes with libmount (mnt_table_parse_stream over fmemopen). Lines libmount
// cannot parse are skipped and listed in bad_lines. Fails only when libmount cannot run.
[[nodiscard]] base::Result<Fstab> parse_fstab(std::string_view bytes);

}  // namespace guard::checks
