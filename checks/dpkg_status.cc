#include "checks/dpkg_status.h"

#include <fnmatch.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <unordered_map>

#include "base/strings.h"

namespace guard::checks {
namespace {

constexpr std::array<const char*, 5> kWants = {"unknown", "install", "hold", "deinstall", "purge"};
constexpr std::array<const char*, 8> kStates = {"not-installed",   "config-files",     "half-installed",
                                                "unpacked",        "half-configured",  "triggers-awaited",
                                                "triggers-pending", "installed"};

template <typename E, std::size_t N>
std::optional<E> lookup(const std::array<const char*, N>& names, std::string_view word) {
  for (std::size_t i = 0; i < N; ++i) {
    if (word == names[i]) return static_cast<E>(i);
  }
  return std::nullopt;
}

// Iterates the lines of `bytes` (without '\n'), counting from 1.
class Lines {
 public:
  explicit Lines(std::string_view bytes) : rest_(bytes) {}
  bool next(std::string_view& line) {
    if (done_) return false;
    std::size_t nl = rest_.find('\n');
    if (nl == std::string_view::npos) {
      done_ = true;
      if (rest_.empty()) return false;
      line = rest_;
    } else {
      line = rest_.substr(0, nl);
      rest_.remove_prefix(nl + 1);
    }
    ++number_;
    return true;
  }
  [[nodiscard]] std::size_t number() const { return number_; }

 private:
  std::string_view rest_;
  std::size_t number_ = 0;
  bool done_ = false;
};

base::Error parse_error(std::string_view what, std::string_view origin, std::size_t line, const std::string& msg) {
  return base::Error{std::string(what), std::string(origin), 0, fmt::format("{}:{}: {}", origin, line, msg)};
}

base::Error status_error(std::string_view origin, std::size_t line, const std::string& msg) {
  return parse_error("dpkg status", origin, line, msg);
}

// At most 60 bytes of `s`, for messages.
std::string_view clip(std::string_view s) { return s.substr(0, std::min<std::size_t>(s.size(), 60)); }

bool equals_ci(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A stanza has a few dozen fields; more is no dpkg database, and the duplicate-field scan
// stays linear.
constexpr std::size_t kMaxFields = 512;

// Collects one stanza's fields of interest.
struct Paragraph {
  std::size_t first_line = 0;
  std::size_t last_line = 0;
  std::size_t status_line = 0;
  std::size_t version_line = 0;
  std::size_t package_line = 0;
  std::optional<std::string_view> package, status, version, architecture, multi_arch, config_version,
      triggers_pending, triggers_awaited;
  std::vector<std::pair<std::size_t, std::string_view>> conffile_lines;
  std::vector<std::pair<std::string_view, std::size_t>> names;  // every field name and its line
  std::string_view field;                                        // the field being read
  bool in_conffiles = false;
  bool has_field = false;
};

base::Result<Conffile> parse_conffile(std::string_view line, std::string_view origin, std::size_t number) {
  Conffile c;
  std::string_view rest = base::trim(line);
  for (;;) {
    std::size_t sp = rest.find_last_of(" \t");
    if (sp == std::string_view::npos) break;
    std::string_view word = rest.substr(sp + 1);
    if (word == "obsolete") {
      c.obsolete = true;
    } else if (word == "remove-on-upgrade") {
      c.remove_on_upgrade = true;
    } else {
      break;
    }
    rest = base::trim(rest.substr(0, sp));
  }
  std::size_t sp = rest.find_last_of(" \t");
  if (sp == std::string_view::npos)
    return tl::unexpected(status_error(origin, number,
                                       fmt::format("Conffiles entry '{}' is not \"path md5\"", base::trim(line))));
  c.md5 = std::string(rest.substr(sp + 1));
  c.path = std::string(base::trim(rest.substr(0, sp)));
  if (c.path.empty() || c.path.front() != '/')
    return tl::unexpected(status_error(origin, number, fmt::format("Conffiles path '{}' is not absolute", c.path)));
  return c;
}

// Why dpkg refuses `name` as a package name (pkg_name_is_illegal), or empty.
std::string bad_package_name(std::string_view name) {
  if (!is_alnum(name.front())) return "must start with an alphanumeric character";
  for (char c : name) {
    if (!is_alnum(c) && c != '-' && c != '+' && c != '.' && c != '_')
      return fmt::format("character '{}' not allowed (only letters, digits and characters '-+._')",
                         c >= ' ' && c < 0x7f ? std::string(1, c) : fmt::format("\\x{:02x}", static_cast<unsigned char>(c)));
  }
  return {};
}

// Why dpkg refuses `v` as a version (parseversion's errors; its warnings, such as a version
// not starting with a digit, pass), or empty.
std::string bad_version(std::string_view v) {
  if (v.empty()) return "version string is empty";
  if (std::any_of(v.begin(), v.end(), is_blank)) return "version string has embedded spaces";
  std::size_t colon = v.find(':');
  if (colon != std::string_view::npos) {
    std::string_view epoch = v.substr(0, colon);
    if (epoch.empty()) return "epoch in version is empty";
    if (!std::all_of(epoch.begin(), epoch.end(), is_digit)) return "epoch in version is not number";
    while (epoch.size() > 1 && epoch.front() == '0') epoch.remove_prefix(1);
    if (epoch.size() > 10 || (epoch.size() == 10 && epoch > "2147483647")) return "epoch in version is too big";
    v.remove_prefix(colon + 1);
    if (v.empty()) return "nothing after colon in version number";
  }
  std::size_t hyphen = v.rfind('-');
  if (hyphen != std::string_view::npos) {
    if (hyphen + 1 == v.size()) return "revision number is empty";
    v = v.substr(0, hyphen);
  }
  if (v.empty()) return "version number is empty";
  return {};
}

// A missing or empty field that dpkg requires: its message, or empty when `value` is there.
std::string missing(const std::optional<std::string_view>& value, std::string_view field, std::string_view pkg,
                    std::size_t first_line) {
  if (value && !base::trim(*value).empty()) return {};
  return fmt::format("stanza of package '{}' (from line {}) ends without {} '{}' field (dpkg: {} '{}' field)", pkg,
                     first_line, value ? "a value for its" : "a", field, value ? "empty value for" : "missing",
                     field);
}

// What dpkg finds inconsistent between the state and the Triggers-Awaited/-Pending fields, or empty.
std::string trigger_mismatch(const Paragraph& p, const PackageRecord& r) {
  const bool awaited = p.triggers_awaited && !base::trim(*p.triggers_awaited).empty();
  const bool pending = p.triggers_pending && !base::trim(*p.triggers_pending).empty();
  if (awaited && (r.state <= DpkgState::config_files || r.state >= DpkgState::triggers_pending))
    return fmt::format("has status {} but triggers are awaited", to_string(r.state));
  if (!awaited && r.state == DpkgState::triggers_awaited) return "has status triggers-awaited but no Triggers-Awaited";
  if (pending && r.state != DpkgState::triggers_pending && r.state != DpkgState::triggers_awaited)
    return fmt::format("has status {} but triggers are pending", to_string(r.state));
  if (!pending && r.state == DpkgState::triggers_pending) return "has status triggers-pending but no Triggers-Pending";
  return {};
}

// dpkg's checks of one stanza (parse.c pkg_parse_verify, fields.c), turned into a record.
base::Result<PackageRecord> finish(const Paragraph& p, std::string_view origin) {
  PackageRecord r;
  r.line = p.first_line;
  if (!p.package)
    return tl::unexpected(status_error(
        origin, p.last_line,
        fmt::format("stanza from line {} ends without a 'Package' field (dpkg: missing 'Package' field)",
                    p.first_line)));
  r.name = std::string(base::trim(*p.package));
  if (r.name.empty())
    return tl::unexpected(status_error(origin, p.package_line, "empty value for 'Package' field"));
  if (std::string why = bad_package_name(r.name); !why.empty())
    return tl::unexpected(status_error(origin, p.package_line,
                                       fmt::format("invalid package name '{}' in 'Package' field: {}", clip(r.name), why)));
  if (std::string why = missing(p.status, "Status", r.name, p.first_line); !why.empty())
    return tl::unexpected(status_error(origin, p.last_line, why));
  auto words = base::split_ws(base::trim(*p.status));
  if (words.size() != 3)
    return tl::unexpected(status_error(origin, p.status_line,
                                       fmt::format("package '{}': Status '{}' is not \"want flag state\"", r.name,
                                                   clip(base::trim(*p.status)))));
  auto want = lookup<Want>(kWants, words[0]);
  auto state = lookup<DpkgState>(kStates, words[2]);
  std::optional<DpkgFlag> flag;
  if (words[1] == "ok") flag = DpkgFlag::ok;
  if (words[1] == "reinstreq") flag = DpkgFlag::reinstreq;
  if (!want || !flag || !state)
    return tl::unexpected(status_error(origin, p.status_line,
                                       fmt::format("package '{}': unknown Status '{}'", r.name,
                                                   clip(base::trim(*p.status)))));
  r.want = *want;
  r.flag = *flag;
  r.state = *state;
  const bool configured_at_all = r.state != DpkgState::not_installed && r.state != DpkgState::half_installed;
  if (configured_at_all) {
    if (std::string why = missing(p.version, "Version", r.name, p.first_line); !why.empty())
      return tl::unexpected(status_error(origin, p.last_line, why));
  }
  if (p.version) {
    r.version = std::string(base::trim(*p.version));
    if (std::string why = bad_version(r.version); !why.empty() && !r.version.empty())
      return tl::unexpected(status_error(origin, p.version_line,
                                         fmt::format("package '{}': invalid version '{}' in 'Version' field: {}",
                                                     r.name, clip(r.version), why)));
  }
  if (p.architecture) r.architecture = std::string(base::trim(*p.architecture));
  if (p.multi_arch) r.multi_arch = std::string(base::trim(*p.multi_arch));
  // dpkg only warns here, but has written Architecture for every package with files since
  // 1.16: without it the package's info files (pkg:arch.list) cannot be found.
  if (has_files(r.state)) {
    if (std::string why = missing(p.architecture, "Architecture", r.name, p.first_line); !why.empty())
      return tl::unexpected(status_error(origin, p.last_line, why));
    if (r.architecture == "all" && r.multi_arch == "same")
      return tl::unexpected(status_error(
          origin, p.first_line,
          fmt::format("package '{}' is marked 'Multi-Arch: same' but is architecture all (dpkg refuses it)", r.name)));
  }
  if (p.config_version && (r.state == DpkgState::installed || r.state == DpkgState::not_installed))
    return tl::unexpected(status_error(
        origin, p.first_line,
        fmt::format("package '{}': Config-Version for a package with Status {} (dpkg: Config-Version for package "
                    "with inappropriate Status)",
                    r.name, to_string(r.state))));
  if (std::string why = trigger_mismatch(p, r); !why.empty())
    return tl::unexpected(status_error(origin, p.first_line, fmt::format("package '{}' {} (dpkg refuses it)", r.name, why)));
  for (const auto& [number, line] : p.conffile_lines) {
    if (base::trim(line).empty()) continue;
    auto c = parse_conffile(line, origin, number);
    if (!c) return tl::unexpected(c.error());
    r.conffiles.push_back(std::move(*c));
  }
  return r;
}

// Reads one "Name: value" line into `p`; an error for what dpkg refuses.
base::Result<void> add_field(Paragraph& p, std::string_view line, std::size_t number, std::string_view origin) {
  std::size_t end = 0;
  while (end < line.size() && !is_blank(line[end]) && line[end] != ':') ++end;
  std::string_view name = line.substr(0, end);
  std::size_t colon = end;
  while (colon < line.size() && is_blank(line[colon])) ++colon;
  if (colon == line.size() || line[colon] != ':')
    return tl::unexpected(status_error(
        origin, number,
        fmt::format("'{}' is not a \"Field: value\" line (dpkg: field name '{}' must be followed by colon)", clip(line),
                    clip(name))));
  if (name.empty()) return tl::unexpected(status_error(origin, number, "empty field name (dpkg refuses it)"));
  if (name.size() < 2)
    return tl::unexpected(
        status_error(origin, number, fmt::format("user-defined field name '{}' too short (dpkg refuses it)", name)));
  if (p.names.size() >= kMaxFields)
    return tl::unexpected(status_error(origin, number, fmt::format("more than {} fields in one stanza", kMaxFields)));
  for (const auto& [seen, at] : p.names) {
    if (equals_ci(seen, name))
      return tl::unexpected(status_error(
          origin, number, fmt::format("duplicate value for '{}' field (the first is at line {})", clip(name), at)));
  }
  p.names.emplace_back(name, number);
  std::string_view value = line.substr(colon + 1);
  if (!p.has_field) p.first_line = number;
  p.has_field = true;
  p.in_conffiles = false;
  p.field = name;
  if (equals_ci(name, "Package")) {
    p.package = value;
    p.package_line = number;
  } else if (equals_ci(name, "Status")) {
    p.status = value;
    p.status_line = number;
  } else if (equals_ci(name, "Version")) {
    p.version = value;
    p.version_line = number;
  } else if (equals_ci(name, "Architecture")) {
    p.architecture = value;
  } else if (equals_ci(name, "Multi-Arch")) {
    p.multi_arch = value;
  } else if (equals_ci(name, "Config-Version")) {
    p.config_version = value;
  } else if (equals_ci(name, "Triggers-Pending")) {
    p.triggers_pending = value;
  } else if (equals_ci(name, "Triggers-Awaited")) {
    p.triggers_awaited = value;
  } else if (equals_ci(name, "Conffiles")) {
    p.in_conffiles = true;
    if (!base::trim(value).empty()) p.conffile_lines.emplace_back(number, value);
  }
  return {};
}

}  // namespace

const char* to_string(DpkgState s) { return kStates[static_cast<std::size_t>(s)]; }
const char* to_string(Want w) { return kWants[static_cast<std::size_t>(w)]; }

bool has_files(DpkgState s) { return s >= DpkgState::unpacked; }

std::string PackageRecord::key() const {
  if (multi_arch == "same" && !architecture.empty()) return name + ':' + architecture;
  return name;
}

base::Result<std::vector<PackageRecord>> parse_status(std::string_view bytes, std::string_view origin,
                                                      StatusFile kind) {
  std::vector<PackageRecord> out;
  auto line_of = [&bytes](std::size_t offset) {
    return static_cast<std::size_t>(std::count(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(offset), '\n')) + 1;
  };
  if (std::size_t nul = bytes.find('\0'); nul != std::string_view::npos)
    return tl::unexpected(status_error(origin, line_of(nul),
                                       "a NUL byte: the file is damaged (a crash can leave zero-filled blocks); dpkg "
                                       "cannot read it"));
  // A last line without its newline is the cut end of a truncated file: dpkg refuses it.
  std::string_view body = bytes, tail;
  if (!bytes.empty() && bytes.back() != '\n') {
    std::size_t nl = bytes.rfind('\n');
    body = nl == std::string_view::npos ? std::string_view() : bytes.substr(0, nl + 1);
    tail = bytes.substr(body.size());
  }
  Lines lines(body);
  std::string_view line;
  Paragraph p;
  std::unordered_map<std::string, std::size_t> stanzas;  // "name:arch" -> first line
  auto flush = [&]() -> base::Result<void> {
    if (!p.has_field) return {};
    auto r = finish(p, origin);
    if (!r) return tl::unexpected(r.error());
    auto [it, fresh] = stanzas.emplace(r->name + ':' + r->architecture, r->line);
    if (!fresh)
      return tl::unexpected(status_error(
          origin, r->line,
          fmt::format("a second stanza for package '{}'{} (the first is at line {}): dpkg keeps one", r->name,
                      r->architecture.empty() ? "" : " architecture " + r->architecture, it->second)));
    out.push_back(std::move(*r));
    p = Paragraph{};
    return {};
  };
  while (lines.next(line)) {
    if (line.empty()) {
      if (auto r = flush(); !r) return tl::unexpected(r.error());
      continue;
    }
    if (std::all_of(line.begin(), line.end(), is_blank))
      return tl::unexpected(status_error(
          origin, lines.number(),
          p.has_field ? fmt::format("a line of only blanks in field '{}' (dpkg: blank line in value of field '{}')",
                                    clip(p.field), clip(p.field))
                      : std::string("a line of only blanks between stanzas (dpkg refuses it)")));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (is_blank(line.front())) {
      if (!p.has_field)
        return tl::unexpected(status_error(origin, lines.number(), "continuation line without a field before it"));
      p.last_line = lines.number();
      if (p.in_conffiles) p.conffile_lines.emplace_back(lines.number(), line);
      continue;
    }
    if (auto r = add_field(p, line, lines.number(), origin); !r) return tl::unexpected(r.error());
    p.last_line = lines.number();
  }
  if (!tail.empty()) {
    std::string_view field = is_blank(tail.front()) ? p.field : tail.substr(0, tail.find(':'));
    return tl::unexpected(status_error(
        origin, lines.number() + 1,
        fmt::format("the file ends inside field '{}' without a final newline: it is truncated (dpkg: EOF during value "
                    "of field '{}' (missing final newline))",
                    clip(field), clip(field))));
  }
  const bool open_stanza = p.has_field;
  const std::size_t open_from = p.first_line;
  const std::size_t last_line = p.last_line;
  if (auto r = flush(); !r) return tl::unexpected(r.error());
  // dpkg writes a blank line after every stanza of its database (not of a journal entry): one
  // that is missing means the file was cut at a line end.
  if (open_stanza && kind == StatusFile::database)
    return tl::unexpected(status_error(
        origin, last_line,
        fmt::format("the file ends inside the stanza of package '{}' (from line {}) without the blank line dpkg writes "
                    "after every stanza: it is truncated",
                    out.back().name, open_from)));
  return out;
}

base::Result<std::vector<Diversion>> parse_diversions(std::string_view bytes, std::string_view origin) {
  std::vector<Diversion> out;
  Lines lines(bytes);
  std::string_view line;
  std::vector<std::string> triple;
  std::size_t start = 0;
  while (lines.next(line)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (triple.empty()) start = lines.number();
    if (triple.size() < 2 && (line.empty() || line.front() != '/'))
      return tl::unexpected(parse_error("dpkg diversions", origin, lines.number(),
                                        fmt::format("expected an absolute path, got '{}'", line)));
    if (triple.size() == 2 && line.empty())
      return tl::unexpected(parse_error("dpkg diversions", origin, lines.number(), "empty package name"));
    triple.emplace_back(line);
    if (triple.size() == 3) {
      out.push_back(Diversion{std::move(triple[0]), std::move(triple[1]), std::move(triple[2])});
      triple.clear();
    }
  }
  if (!triple.empty())
    return tl::unexpected(parse_error("dpkg diversions", origin, start,
                                      "incomplete diversion (expected three lines: from, to, package)"));
  return out;
}

void PathFilter::add_config(std::string_view bytes) {
  Lines lines(bytes);
  std::string_view line;
  while (lines.next(line)) {
    line = base::trim(line);
    if (line.empty() || line.front() == '#') continue;
    std::size_t sep = line.find_first_of("= \t");
    if (sep == std::string_view::npos) continue;
    std::string_view option = line.substr(0, sep);
    std::string_view value = base::trim(line.substr(sep + 1));
    if (value.empty()) continue;
    if (option == "path-exclude") add(false, std::string(value));
    if (option == "path-include") add(true, std::string(value));
  }
}

void PathFilter::add(bool include, std::string pattern) { filters_.push_back(Filter{include, std::move(pattern)}); }

bool PathFilter::excluded(const std::string& path) const {
  bool skip = false;
  for (const auto& f : filters_) {
    if (::fnmatch(f.pattern.c_str(), path.c_str(), 0) == 0) skip = !f.include;
  }
  return skip;
}

bool is_dpkg_config_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> parse_list(std::string_view bytes) {
  std::vector<std::string> out;
  Lines lines(bytes);
  std::string_view line;
  while (lines.next(line)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line == "/." || line == "/") continue;
    out.emplace_back(line);
  }
  return out;
}

base::Result<std::vector<Md5Entry>> parse_md5sums(std::string_view bytes, std::string_view origin) {
  std::vector<Md5Entry> out;
  Lines lines(bytes);
  std::string_view line;
  while (lines.next(line)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    bool ok = line.size() > 34 && line[32] == ' ' && (line[33] == ' ' || line[33] == '*');
    for (std::size_t i = 0; ok && i < 32; ++i) {
      char c = line[i];
      ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }
    if (!ok)
      return tl::unexpected(parse_error("dpkg md5sums", origin, lines.number(),
                                        fmt::format("'{}' is not \"md5  path\"",
                                                    line.substr(0, std::min<std::size_t>(line.size(), 60)))));
    Md5Entry e;
    e.md5.reserve(32);
    for (std::size_t i = 0; i < 32; ++i) {
      char c = line[i];
      e.md5 += (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    std::string_view path = line.substr(34);
    while (!path.empty() && path.front() == '/') path.remove_prefix(1);
    e.path = "/" + std::string(path);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace guard::checks
