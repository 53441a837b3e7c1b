// The text forms of policy values: durations, sizes, paths, unit and custom-check names, and
// TOML strings. Pure functions over text, shared by the key table (reading) and `policy show`
// (writing); no toml++ here.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/strings.h"

namespace guard::policies {

using base::join;

// Beyond this a duration is a typo, not a policy.
inline constexpr std::int64_t kMaxDurationDays = 3650;

// "90s", "5m", "6h", "2d" (a whole number and one unit, no spaces) -> seconds; nothing when
// malformed or absurdly large. e.g. parse_duration("5m") -> 300, parse_duration("1h30m") -> nothing.
[[nodiscard]] std::optional<std::int64_t> parse_duration(std::string_view text);

// "512MiB", "1GiB", "10G", "4096B" (powers of 1024, no spaces, no fractions) -> bytes; nothing
// when malformed, ambiguous ("100MB") or overflowing. e.g. parse_size("10G") -> 10737418240.
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view text);

// The largest whole unit, as parse_duration reads it back: 5400s -> "90m", 0s -> "0s".
[[nodiscard]] std::string format_duration(std::chrono::seconds d);

// The largest whole binary unit, as parse_size reads it back: 3072 -> "3KiB", 1000 -> "1000B".
[[nodiscard]] std::string format_size(std::uint64_t bytes);

// Why `path` is not an absolute, normalized path, or nothing; `prefix_ok` allows a trailing '/'
// (an ignore prefix). e.g. path_problem("/usr/../etc", false) ->
// "'/usr/../etc' is not a normalized path (no '//', '.' or '..' components)".
[[nodiscard]] std::optional<std::string> path_problem(const std::string& path, bool prefix_ok);

// A systemd unit name with its type suffix, e.g. "postgresql@15-main.service"; not "nginx".
[[nodiscard]] bool valid_unit_name(std::string_view name);

// A [[custom]] check name: 1 to 64 of letters, digits, '-', '_', '.', e.g. "nginx-config".
[[nodiscard]] bool valid_custom_name(std::string_view name);

// A TOML basic string: toml_string("say \"hi\"") -> "\"say \\\"hi\\\"\"".
[[nodiscard]] std::string toml_string(std::string_view s);

// A TOML array of basic strings: {"/a", "/b"} -> "[\"/a\", \"/b\"]".
[[nodiscard]] std::string toml_strings(const std::vector<std::string>& items);


}  // namespace guard::policies
