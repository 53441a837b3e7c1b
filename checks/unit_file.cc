#include "checks/unit_file.h"

#include "base/strings.h"

namespace guard::checks {
namespace {

bool is_comment(std::string_view trimmed) {
  return !trimmed.empty() && (trimmed.front() == '#' || trimmed.front() == ';');
}

}  // namespace

UnitFile parse_unit_file(std::string_view bytes) {
  UnitFile out;
  std::string section;

  auto finish = [&](std::string_view logical, std::size_t start_line) {
    std::string_view l = base::trim(logical);
    if (l.empty() || is_comment(l)) return;
    if (l.front() == '[') {
      if (l.back() == ']') section = std::string(l.substr(1, l.size() - 2));
      return;
    }
    std::size_t eq = l.find('=');
    if (eq == std::string_view::npos) return;
    std::string_view key = base::trim(l.substr(0, eq));
    if (key.empty()) return;
    out.assignments.push_back(
        UnitAssignment{section, std::string(key), std::string(base::trim(l.substr(eq + 1))), start_line});
  };

  std::vector<std::string_view> lines = base::split(bytes, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::string pending;
  std::size_t pending_line = 0;
  bool continuing = false;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view raw = lines[i];
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    std::string_view t = base::trim(raw);
    if (!continuing) {
      if (t.empty() || is_comment(t) || t.front() == '[') {
        finish(t, i + 1);
        continue;
      }
      pending.clear();
      pending_line = i + 1;
    } else if (is_comment(t)) {
      continue;  // comment lines inside a continuation are skipped
    }
    if (!raw.empty() && raw.back() == '\\') {
      pending.append(raw.substr(0, raw.size() - 1));
      pending += ' ';
      continuing = true;
      continue;
    }
    pending.append(raw);
    continuing = false;
    finish(pending, pending_line);
  }
  if (continuing) finish(pending, pending_line);  // a backslash on the last line
  return out;
}

std::vector<UnitValue> unit_assignments(const std::vector<UnitFile>& files, std::string_view section,
                                        std::string_view key) {
  std::vector<UnitValue> values;
  for (std::size_t i = 0; i < files.size(); ++i) {
    for (const auto& a : files[i].assignments) {
      if (a.section != section || a.key != key) continue;
      if (a.value.empty()) {
        values.clear();
      } else {
        values.push_back({i, &a});
      }
    }
  }
  return values;
}

std::vector<std::string> unit_values(const std::vector<UnitFile>& files, std::string_view section,
                                     std::string_view key) {
  std::vector<std::string> values;
  for (const auto& v : unit_assignments(files, section, key)) values.push_back(v.assignment->value);
  return values;
}

}  // namespace guard::checks
