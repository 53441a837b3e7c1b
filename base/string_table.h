// One table per enum instead of a pair of hand-written switches: the text each value is stored
// and shown as, and the way back. In the manner of systemd's string-table.h.
//
//   constexpr StringTable<RunPhase, 2> kPhases{{{RunPhase::command, "command"}, {RunPhase::done, "done"}}};
//   kPhases.name(RunPhase::done)       -> "done"
//   kPhases.parse("command", "run phase") -> RunPhase::command, or an error naming the text
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "base/error.h"

namespace guard::base {

template <typename Enum, std::size_t N>
struct StringTable {
  std::array<std::pair<Enum, std::string_view>, N> entries;

  // The text of `value`; "?" for a value missing from the table (a programming error the
  // table's unit test catches).
  [[nodiscard]] constexpr const char* name(Enum value) const {
    for (const auto& [v, text] : entries) {
      if (v == value) return text.data();
    }
    return "?";
  }

  // The value named `text`, or an error such as "unknown run phase 'bogus' in the state database".
  [[nodiscard]] base::Result<Enum> parse(std::string_view text, std::string_view kind) const {
    for (const auto& [v, name] : entries) {
      if (name == text) return v;
    }
    return base::fail("state", "",
                      "unknown " + std::string(kind) + " '" + std::string(text) + "' in the state database");
  }
};

}  // namespace guard::base
