// /etc/fstab as plain data: the lines libmount parses (formats/mount_table.h), the ones it
// cannot, and the lookups the checks, the snapshot layout and the boot trial make in it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "formats/mount_table.h"

namespace guard::formats {

struct Fstab {
  std::vector<MountEntry> entries;     // in file order
  std::vector<std::size_t> bad_lines;  // 1-based numbers of lines libmount could not parse

  // The entry mounted at `target` (the last one, as mount would), or nullptr. e.g. "/boot".
  [[nodiscard]] const MountEntry* find_target(std::string_view target) const;
  // The filesystem UUID of the `/` entry when its source is UUID=…, e.g.
  // "UUID=1b2c-aaaa / btrfs subvol=@ 0 0" -> "1b2c-aaaa"; nullopt for no `/` entry or another source.
  [[nodiscard]] std::optional<std::string> root_uuid() const;
};

// Parses fstab bytes: every line libmount parses, in order; a line it cannot parse is skipped
// and numbered in bad_lines. Fails only when libmount cannot run.
// e.g. parse_fstab(root.read_file("/etc/fstab")) -> {entries={{"UUID=1b2c…", "/", "ext4", …}}}.
[[nodiscard]] base::Result<Fstab> parse_fstab(std::string_view bytes);

// The value of tag `tag` in an fstab source, quotes removed, or nullopt for another source.
// e.g. ("UUID=1b2c-aaaa", "UUID") -> "1b2c-aaaa"; ("LABEL=\"root fs\"", "LABEL") -> "root fs";
// ("/dev/sda1", "UUID") -> nullopt.
[[nodiscard]] std::optional<std::string> source_tag(std::string_view source, std::string_view tag);

}  // namespace guard::formats
