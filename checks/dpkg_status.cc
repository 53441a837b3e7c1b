#include "checks/dpkg_status.h"

#include <fnmatch.h>
#include <fmt/format.h>

#include <array>
#include <optional>

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
  return base::Error{std::string(what), std::string(origin), 0, fmt::format("line {}: {}", line, msg)};
}

// Collects one paragraph's fields of interest.
struct Paragraph {
  std::size_t first_line = 0;
  std::size_t status_line = 0;
  std::optional<std::string_view> package, status, version, architecture, multi_arch;
  std::vector<std::pair<std::size_t, std::string_view>> conffile_lines;
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
    return tl::unexpected(parse_error("dpkg status", origin, number,
                                      fmt::format("Conffiles entry '{}' is not \"path md5\"", base::trim(line))));
  c.md5 = std::string(rest.substr(sp + 1));
  c.path = std::string(base::trim(rest.substr(0, sp)));
  if (c.path.empty() || c.path.front() != '/')
    return tl::unexpected(parse_error("dpkg status", origin, number,
                                      fmt::format("Conffiles path '{}' is not absolute", c.path)));
  return c;
}

base::Result<PackageRecord> finish(const Paragraph& p, std::string_view origin) {
  PackageRecord r;
  r.line = p.first_line;
  if (!p.package || base::trim(*p.package).empty())
    return tl::unexpected(parse_error("dpkg status", origin, p.first_line, "paragraph has no Package field"));
  r.name = std::string(base::trim(*p.package));
  if (!p.status)
    return tl::unexpected(parse_error("dpkg status", origin, p.first_line,
                                      fmt::format("package {} has no Status field", r.name)));
  auto words = base::split_ws(base::trim(*p.status));
  if (words.size() != 3)
    return tl::unexpected(parse_error("dpkg status", origin, p.status_line,
                                      fmt::format("package {}: Status '{}' is not \"want flag state\"", r.name,
                                                  base::trim(*p.status))));
  auto want = lookup<Want>(kWants, words[0]);
  auto state = lookup<DpkgState>(kStates, words[2]);
  std::optional<DpkgFlag> flag;
  if (words[1] == "ok") flag = DpkgFlag::ok;
  if (words[1] == "reinstreq") flag = DpkgFlag::reinstreq;
  if (!want || !flag || !state)
    return tl::unexpected(parse_error("dpkg status", origin, p.status_line,
                                      fmt::format("package {}: unknown Status '{}'", r.name, base::trim(*p.status))));
  r.want = *want;
  r.flag = *flag;
  r.state = *state;
  if (p.version) r.version = std::string(base::trim(*p.version));
  if (p.architecture) r.architecture = std::string(base::trim(*p.architecture));
  if (p.multi_arch) r.multi_arch = std::string(base::trim(*p.multi_arch));
  for (const auto& [number, line] : p.conffile_lines) {
    if (base::trim(line).empty()) continue;
    auto c = parse_conffile(line, origin, number);
    if (!c) return tl::unexpected(c.error());
    r.conffiles.push_back(std::move(*c));
  }
  return r;
}

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

}  // namespace

const char* to_string(DpkgState s) { return kStates[static_cast<std::size_t>(s)]; }
const char* to_string(Want w) { return kWants[static_cast<std::size_t>(w)]; }

bool has_files(DpkgState s) { return s >= DpkgState::unpacked; }

std::string PackageRecord::key() const {
  if (multi_arch == "same" && !architecture.empty()) return name + ':' + architecture;
  return name;
}

base::Result<std::vector<PackageRecord>> parse_status(std::string_view bytes, std::string_view origin) {
  std::vector<PackageRecord> out;
  Lines lines(bytes);
  std::string_view line;
  Paragraph p;
  auto flush = [&]() -> base::Result<void> {
    if (!p.has_field) return {};
    auto r = finish(p, origin);
    if (!r) return tl::unexpected(r.error());
    out.push_back(std::move(*r));
    p = Paragraph{};
    return {};
  };
  while (lines.next(line)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (base::trim(line).empty()) {
      if (auto r = flush(); !r) return tl::unexpected(r.error());
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      if (!p.has_field)
        return tl::unexpected(parse_error("dpkg status", origin, lines.number(),
                                          "continuation line without a field before it"));
      if (p.in_conffiles) p.conffile_lines.emplace_back(lines.number(), line);
      continue;
    }
    std::size_t colon = line.find(':');
    std::string_view name = colon == std::string_view::npos ? std::string_view{} : line.substr(0, colon);
    if (name.empty() || name.find_first_of(" \t") != std::string_view::npos)
      return tl::unexpected(parse_error("dpkg status", origin, lines.number(),
                                        fmt::format("'{}' is not a \"Field: value\" line",
                                                    line.substr(0, std::min<std::size_t>(line.size(), 60)))));
    std::string_view value = line.substr(colon + 1);
    if (!p.has_field) p.first_line = lines.number();
    p.has_field = true;
    p.in_conffiles = false;
    if (equals_ci(name, "Package")) {
      p.package = value;
    } else if (equals_ci(name, "Status")) {
      p.status = value;
      p.status_line = lines.number();
    } else if (equals_ci(name, "Version")) {
      p.version = value;
    } else if (equals_ci(name, "Architecture")) {
      p.architecture = value;
    } else if (equals_ci(name, "Multi-Arch")) {
      p.multi_arch = value;
    } else if (equals_ci(name, "Conffiles")) {
      p.in_conffiles = true;
      if (!base::trim(value).empty()) p.conffile_lines.emplace_back(lines.number(), value);
    }
  }
  if (auto r = flush(); !r) return tl::unexpected(r.error());
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
