// Small string helpers shared by the parsers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace guard::base {

// " a b " -> "a b" (spaces and tabs, \r and \n).
[[nodiscard]] std::string_view trim(std::string_view s);
// Splits on `sep`, keeping empty fields: split("a,,b", ',') -> {"a", "", "b"}.
[[nodiscard]] std::vector<std::string_view> split(std::string_view s, char sep);
// Splits on runs of spaces/tabs, dropping empty fields: "a  b\tc" -> {"a", "b", "c"}.
[[nodiscard]] std::vector<std::string_view> split_ws(std::string_view s);
// The items with `sep` between each two (empty items kept): join({"a", "", "b"}, ", ") -> "a, , b";
// join({}, ", ") -> "". e.g. an argv shown as one line: join(argv, " ") -> "apt-get dist-upgrade".
[[nodiscard]] std::string join(const std::vector<std::string>& items, std::string_view sep);
// A byte count for people: 1536 -> "1.5 KiB", 3221225472 -> "3.0 GiB".
[[nodiscard]] std::string human_bytes(std::uint64_t n);
// The 1-based line number of byte `offset` in `text`.
[[nodiscard]] std::size_t line_of(std::string_view text, std::size_t offset);

}  // namespace guard::base
