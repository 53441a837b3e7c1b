#include "policies/values.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <utility>

namespace guard::policies {

std::optional<std::int64_t> parse_duration(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return std::nullopt;
  }
  std::string_view digits = text.substr(0, text.size() - 1);
  std::int64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    if (n > (INT64_MAX / 86400 - 9) / 10) return std::nullopt;  // far beyond any sane duration
    n = n * 10 + (c - '0');
  }
  return n * unit;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t digits_end = 0;
  while (digits_end < text.size() && text[digits_end] >= '0' && text[digits_end] <= '9') ++digits_end;
  if (digits_end == 0) return std::nullopt;
  std::string_view suffix = text.substr(digits_end);
  int shift = -1;
  if (suffix == "B")
    shift = 0;
  else if (suffix == "K" || suffix == "KiB")
    shift = 10;
  else if (suffix == "M" || suffix == "MiB")
    shift = 20;
  else if (suffix == "G" || suffix == "GiB")
    shift = 30;
  else if (suffix == "T" || suffix == "TiB")
    shift = 40;
  if (shift < 0) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : text.substr(0, digits_end)) {
    if (n > (UINT64_MAX - 9) / 10) return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (shift > 0 && n > (UINT64_MAX >> shift)) return std::nullopt;
  return n << shift;
}

std::string format_duration(std::chrono::seconds d) {
  std::int64_t s = d.count();
  if (s > 0 && s % 86400 == 0) return fmt::format("{}d", s / 86400);
  if (s > 0 && s % 3600 == 0) return fmt::format("{}h", s / 3600);
  if (s > 0 && s % 60 == 0) return fmt::format("{}m", s / 60);
  return fmt::format("{}s", s);
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::pair<int, const char*> units[] = {{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}};
  for (const auto& [shift, name] : units) {
    std::uint64_t unit = 1ULL << shift;
    if (bytes > 0 && bytes % unit == 0) return fmt::format("{}{}", bytes / unit, name);
  }
  return fmt::format("{}B", bytes);
}

std::optional<std::string> path_problem(const std::string& path, bool prefix_ok) {
  if (path.empty()) return "empty path";
  if (path.find('\0') != std::string::npos) return fmt::format("'{}' contains a NUL byte", path);
  if (path[0] != '/') return fmt::format("'{}' is not an absolute path (it must start with '/')", path);
  if (path.size() > 1 && path.back() == '/' && !prefix_ok) {
    return fmt::format("'{}' ends with '/': write '{}'", path, path.substr(0, path.size() - 1));
  }
  std::string_view rest(path);
  rest.remove_prefix(1);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) return std::nullopt;
  std::size_t start = 0;
  while (start <= rest.size()) {
    std::size_t end = rest.find('/', start);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view part = rest.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return fmt::format("'{}' is not a normalized path (no '//', '.' or '..' components)", path);
    }
    start = end + 1;
  }
  return std::nullopt;
}

bool valid_unit_name(std::string_view name) {
  static constexpr std::string_view suffixes[] = {".service", ".socket", ".target", ".mount", ".automount", ".timer",
                                                  ".path",    ".swap",   ".device", ".slice", ".scope"};
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (c <= ' ' || c == '/' || c == 0x7f) return false;
  }
  return std::any_of(std::begin(suffixes), std::end(suffixes), [&](std::string_view suffix) {
    return name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  });
}

bool valid_custom_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (u < 0x20 || u == 0x7f)
      out += fmt::format("\\u{:04X}", u);
    else
      out += c;
  }
  return out + "\"";
}

std::string toml_strings(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += toml_string(items[i]);
  }
  return out + "]";
}

}  // namespace guard::policies
