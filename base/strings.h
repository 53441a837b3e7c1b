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

// Text from a root (a link target, a dpkg status line, a file name) made safe to print to a
// terminal: C0 controls but tab and line feed, DEL, C1 controls (U+0080..U+009F) and bytes that
// are not UTF-8 become \xNN (a backslash itself stays), so that no escape sequence in a root's
// contents reaches the terminal. e.g. "a\x1b[2Jb" -> "a\\x1b[2Jb" (printed: a\x1b[2Jb).
[[nodiscard]] std::string escape_control(std::string_view s);

}  // namespace guard::base
