// GRUB's environment block (/boot/grub/grubenv): read and write, taking and giving bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace guard::checks {

// The size GRUB reads and writes: the block is always exactly this many bytes.
inline constexpr std::size_t kGrubEnvSize = 1024;
// The first line of every block.
inline constexpr std::string_view kGrubEnvHeader = "# GRUB Environment Block\n";

// The variables of a grubenv block in file order. e.g. {{"saved_entry", "gnulinux-advanced-…"}}.
class GrubEnv {
 public:
  // The value of `key`, or nullopt. e.g. get("next_entry").
  [[nodiscard]] std::optional<std::string> get(std::string_view key) const;
  // Sets (replacing in place) or appends `key`. Keys may not hold '=' or '\n' (caller's contract).
  void set(std::string_view key, std::string_view value);
  // Removes `key`; false when it was not there.
  bool erase(std::string_view key);
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& vars() const { return vars_; }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

// Parses a block: the header, then `key=value\n` lines (values with GRUB's escapes `\\` and
// `\n`), then '#' padding. Fails when the header is missing. A block of the wrong size is
// still read (GRUB itself would reject it; the boot check reports that separately).
[[nodiscard]] base::Result<GrubEnv> parse_grubenv(std::string_view bytes);

// Renders exactly kGrubEnvSize bytes, padded with '#'. Fails, changing nothing, when the
// variables do not fit: e.g. setting next_entry to a 2000-byte title.
[[nodiscard]] base::Result<std::string> render_grubenv(const GrubEnv& env);

}  // namespace guard::checks
