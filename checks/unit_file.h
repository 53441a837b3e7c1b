// A parser for systemd unit files and drop-ins (the syntax of systemd.syntax(7)), taking bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace guard::checks {

// One `Key=Value` line, continuation lines already joined. e.g. {"Service", "ExecStart",
// "/usr/sbin/sshd -D $SSHD_OPTS", 12} from /lib/systemd/system/ssh.service.
struct UnitAssignment {
  std::string section;
  std::string key;
  std::string value;     // trimmed; empty for a reset like `ExecStart=`
  std::size_t line = 0;  // 1-based line where the assignment starts
};

// The assignments of one unit file in file order.
struct UnitFile {
  std::vector<UnitAssignment> assignments;
};

// Parses unit file bytes. Never fails: lines that are neither a section header, a comment
// (`#` or `;`) nor `Key=Value` are ignored, as systemd ignores them with a warning. A line
// ending in a backslash continues on the next line (joined with a space); comment lines inside
// a continuation are skipped.
[[nodiscard]] UnitFile parse_unit_file(std::string_view bytes);

// The effective values of `section`/`key` after applying `files` in order (the unit file,
// then its drop-ins): each assignment appends, an empty assignment resets the list.
// e.g. ExecStart of ssh.service -> {"/usr/sbin/sshd -D $SSHD_OPTS"}.
[[nodiscard]] std::vector<std::string> unit_values(const std::vector<UnitFile>& files, std::string_view section,
                                                   std::string_view key);

// The same with where each value comes from: the index in `files` and the assignment (its line).
struct UnitValue {
  std::size_t file = 0;
  const UnitAssignment* assignment = nullptr;
};
[[nodiscard]] std::vector<UnitValue> unit_assignments(const std::vector<UnitFile>& files, std::string_view section,
                                                      std::string_view key);

}  // namespace guard::checks
