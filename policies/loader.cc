// The toml++ adapter: the only file that includes <toml++/toml.h>. It turns TOML documents
// into Policy layers and every toml::parse_error or bad value into a base::Error that names
// FILE:LINE:COLUMN and the dotted key.
#include "policies/loader.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>

#include "base/unique_fd.h"

namespace guard::policies {
namespace {

using base::Error;
using base::Result;

constexpr std::size_t kMaxPolicyBytes = 1 << 20;  // a policy file is text an admin writes
constexpr std::int64_t kMaxDurationDays = 3650;   // beyond this a duration is a typo, not a policy

std::string position(const std::string& file, const toml::source_region& region) {
  return fmt::format("{}:{}:{}", file, region.begin.line, region.begin.column);
}

// "FILE:LINE:COLUMN: KEY: what is wrong", as the error's message; path = the file.
tl::unexpected<Error> error_at(const std::string& file, const toml::source_region& region, const std::string& key,
                               const std::string& what) {
  return base::fail(Error{"policy", file, 0, fmt::format("{}: {}: {}", position(file, region), key, what)});
}

const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// Why `path` is not an acceptable absolute path, or nothing. `prefix_ok` allows a trailing
// '/' (an ignore prefix).
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

// Parses "90s", "5m", "6h", "2d" (no spaces, no fractions) into seconds.
std::optional<std::int64_t> parse_duration_text(std::string_view text) {
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

// Parses "512MiB", "1GiB", "10G", "4096B" (powers of 1024; no spaces, no fractions) into bytes.
std::optional<std::uint64_t> parse_size_text(std::string_view text) {
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

std::optional<Severity> severity_from(std::string_view s) {
  if (s == "off") return Severity::off;
  if (s == "info") return Severity::info;
  if (s == "warn") return Severity::warn;
  if (s == "block") return Severity::block;
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

// Applies one parsed document to a Policy (a copy the caller commits only on success).
class Layer {
 public:
  Layer(Policy& policy, const std::string& file) : p_(policy), file_(file) {}

  Result<void> apply(const toml::table& doc) {
    const Handlers handlers = {
        {"on_fail", [this](const std::string& k, const toml::node& n) { return on_fail(k, n, p_.on_fail); }},
        {"command_timeout",
         [this](const std::string& k, const toml::node& n) {
           return duration(k, n, p_.command_timeout, /*zero_ok=*/false);
         }},
        {"checks", [this](const std::string& k, const toml::node& n) { return checks(k, n); }},
        {"preserve",
         [this](const std::string& k, const toml::node& n) {
           return table(k, n, {{"paths", [this](const std::string& k2, const toml::node& n2) {
                                  return path_array(k2, n2, p_.preserve, /*prefix_ok=*/false, /*root_ok=*/false);
                                }}});
         }},
        {"services",
         [this](const std::string& k, const toml::node& n) {
           return table(k, n, {{"required", [this](const std::string& k2, const toml::node& n2) {
                                  return units(k2, n2, p_.required_services);
                                }}});
         }},
        {"snapshot", [this](const std::string& k, const toml::node& n) { return snapshot(k, n); }},
        {"preflight",
         [this](const std::string& k, const toml::node& n) {
           return table(
               k, n,
               {{"lock_timeout",
                 [this](const std::string& k2, const toml::node& n2) {
                   return duration(k2, n2, p_.preflight.lock_timeout, /*zero_ok=*/true);
                 }},
                {"min_free_root", [this](const std::string& k2,
                                         const toml::node& n2) { return size(k2, n2, p_.preflight.min_free_root); }},
                {"min_free_boot", [this](const std::string& k2, const toml::node& n2) {
                   return size(k2, n2, p_.preflight.min_free_boot);
                 }}});
         }},
        {"backup", [this](const std::string& k, const toml::node& n) { return backup(k, n); }},
        {"boot_check",
         [this](const std::string& k, const toml::node& n) {
           return table(k, n,
                        {{"settle_timeout",
                          [this](const std::string& k2, const toml::node& n2) {
                            return duration(k2, n2, p_.boot_check.settle_timeout, /*zero_ok=*/false);
                          }},
                         {"rollback", [this](const std::string& k2, const toml::node& n2) {
                            return boolean(k2, n2, p_.boot_check.rollback);
                          }}});
         }},
        {"hook",
         [this](const std::string& k, const toml::node& n) {
           return table(k, n, {{"on_fail", [this](const std::string& k2, const toml::node& n2) {
                                  return on_fail(k2, n2, p_.hook.on_fail);
                                }}});
         }},
        {"audit",
         [this](const std::string& k, const toml::node& n) {
           return table(k, n, {{"close_gate", [this](const std::string& k2, const toml::node& n2) {
                                  return boolean(k2, n2, p_.audit.close_gate);
                                }}});
         }},
        {"custom", [this](const std::string& k, const toml::node& n) { return custom(k, n); }},
    };
    return dispatch("", doc, handlers);
  }

 private:
  using Handler = std::function<Result<void>(const std::string&, const toml::node&)>;
  using Handlers = std::vector<std::pair<std::string, Handler>>;

  static std::string dotted(const std::string& prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
  }

  void origin(const std::string& key, const toml::node& node) { p_.origins[key] = position(file_, node.source()); }

  Result<void> dispatch(const std::string& prefix, const toml::table& tbl, const Handlers& handlers) {
    for (auto&& [k, node] : tbl) {
      std::string_view name = k.str();
      std::string key = dotted(prefix, name);
      auto it = std::find_if(handlers.begin(), handlers.end(), [&](const auto& h) { return h.first == name; });
      if (it == handlers.end()) {
        std::vector<std::string> names;
        for (const auto& h : handlers) names.push_back(h.first);
        return error_at(file_, k.source(), key, fmt::format("unknown key (expected one of: {})", join(names, ", ")));
      }
      if (auto r = it->second(key, node); !r) return r;
    }
    return {};
  }

  Result<void> table(const std::string& key, const toml::node& node, const Handlers& handlers) {
    const toml::table* tbl = node.as_table();
    if (!tbl) return error_at(file_, node.source(), key, fmt::format("expected a table, got {}", type_name(node)));
    return dispatch(key, *tbl, handlers);
  }

  Result<std::string> string(const std::string& key, const toml::node& node, std::string_view expected = "a string") {
    const auto* v = node.as_string();
    if (!v) return error_at(file_, node.source(), key, fmt::format("expected {}, got {}", expected, type_name(node)));
    return v->get();
  }

  Result<void> on_fail(const std::string& key, const toml::node& node, OnFail& out) {
    auto s = string(key, node, "a string (rollback|block-reboot|warn)");
    if (!s) return tl::unexpected(s.error());
    if (*s == "rollback")
      out = OnFail::rollback;
    else if (*s == "block-reboot")
      out = OnFail::block_reboot;
    else if (*s == "warn")
      out = OnFail::warn;
    else
      return error_at(file_, node.source(), key,
                      fmt::format("unknown action '{}' (expected rollback, block-reboot or warn)", *s));
    origin(key, node);
    return {};
  }

  Result<Severity> severity_value(const std::string& key, const toml::node& node) {
    auto s = string(key, node, "a string (off|info|warn|block)");
    if (!s) return tl::unexpected(s.error());
    auto sev = severity_from(*s);
    if (!sev) {
      return error_at(file_, node.source(), key,
                      fmt::format("unknown severity '{}' (expected off, info, warn or block)", *s));
    }
    return *sev;
  }

  Result<void> severity(const std::string& key, const toml::node& node, Severity& out) {
    auto sev = severity_value(key, node);
    if (!sev) return tl::unexpected(sev.error());
    out = *sev;
    origin(key, node);
    return {};
  }

  Result<std::chrono::seconds> duration_value(const std::string& key, const toml::node& node, bool zero_ok) {
    std::int64_t seconds = 0;
    if (const auto* i = node.as_integer()) {
      seconds = i->get();
      if (seconds < 0) return error_at(file_, node.source(), key, fmt::format("negative duration {}", seconds));
    } else if (const auto* s = node.as_string()) {
      auto parsed = parse_duration_text(s->get());
      if (!parsed) {
        return error_at(file_, node.source(), key,
                        fmt::format("bad duration '{}' (write whole seconds as an integer, or a whole number "
                                    "followed by s, m, h or d, e.g. \"90s\", \"5m\", \"6h\", \"2d\")",
                                    s->get()));
      }
      seconds = *parsed;
    } else {
      return error_at(
          file_, node.source(), key,
          fmt::format("expected a duration (integer seconds or a string like \"5m\"), got {}", type_name(node)));
    }
    if (seconds == 0 && !zero_ok) return error_at(file_, node.source(), key, "the duration must be greater than 0");
    if (seconds > kMaxDurationDays * 86400) {
      return error_at(file_, node.source(), key, fmt::format("the duration is longer than {} days", kMaxDurationDays));
    }
    return std::chrono::seconds(seconds);
  }

  Result<void> duration(const std::string& key, const toml::node& node, std::chrono::seconds& out, bool zero_ok) {
    auto d = duration_value(key, node, zero_ok);
    if (!d) return tl::unexpected(d.error());
    out = *d;
    origin(key, node);
    return {};
  }

  Result<void> size(const std::string& key, const toml::node& node, std::uint64_t& out) {
    if (const auto* i = node.as_integer()) {
      if (i->get() < 0) return error_at(file_, node.source(), key, fmt::format("negative size {}", i->get()));
      out = static_cast<std::uint64_t>(i->get());
    } else if (const auto* s = node.as_string()) {
      auto parsed = parse_size_text(s->get());
      if (!parsed) {
        return error_at(file_, node.source(), key,
                        fmt::format("bad size '{}' (write bytes as an integer, or a whole number followed by B, "
                                    "K/KiB, M/MiB, G/GiB or T/TiB, all powers of 1024, e.g. \"512MiB\", \"1GiB\")",
                                    s->get()));
      }
      out = *parsed;
    } else {
      return error_at(
          file_, node.source(), key,
          fmt::format("expected a size (integer bytes or a string like \"1GiB\"), got {}", type_name(node)));
    }
    origin(key, node);
    return {};
  }

  Result<void> boolean(const std::string& key, const toml::node& node, bool& out) {
    const auto* b = node.as_boolean();
    if (!b)
      return error_at(file_, node.source(), key,
                      fmt::format("expected a boolean (true|false), got {}", type_name(node)));
    out = b->get();
    origin(key, node);
    return {};
  }

  // An array of strings, each checked by `check` (which returns why an entry is bad).
  Result<std::vector<std::string>> strings(const std::string& key, const toml::node& node,
                                           const std::function<std::optional<std::string>(const std::string&)>& check) {
    const toml::array* arr = node.as_array();
    if (!arr)
      return error_at(file_, node.source(), key, fmt::format("expected an array of strings, got {}", type_name(node)));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::node& item = *arr->get(i);
      const auto* s = item.as_string();
      if (!s) {
        return error_at(file_, item.source(), key,
                        fmt::format("entry {}: expected a string, got {}", i + 1, type_name(item)));
      }
      if (auto problem = check(s->get())) {
        return error_at(file_, item.source(), key, fmt::format("entry {}: {}", i + 1, *problem));
      }
      out.push_back(s->get());
    }
    return out;
  }

  Result<void> path_array(const std::string& key, const toml::node& node, std::vector<std::string>& out, bool prefix_ok,
                          bool root_ok) {
    auto paths = strings(key, node, [&](const std::string& p) -> std::optional<std::string> {
      if (auto problem = path_problem(p, prefix_ok)) return problem;
      if (!root_ok && p == "/") return std::string("'/' is not allowed here (it would cover the whole system)");
      return std::nullopt;
    });
    if (!paths) return tl::unexpected(paths.error());
    out = std::move(*paths);
    origin(key, node);
    return {};
  }

  Result<void> units(const std::string& key, const toml::node& node, std::vector<std::string>& out) {
    auto names = strings(key, node, [](const std::string& name) -> std::optional<std::string> {
      if (valid_unit_name(name)) return std::nullopt;
      return fmt::format("'{}' is not a systemd unit name with its type suffix (e.g. \"nginx.service\")", name);
    });
    if (!names) return tl::unexpected(names.error());
    out = std::move(*names);
    origin(key, node);
    return {};
  }

  // An argv: strings, argv[0] an absolute path; empty only when `empty_ok`.
  Result<std::vector<std::string>> argv_value(const std::string& key, const toml::node& node, bool empty_ok) {
    bool first = true;
    auto argv = strings(key, node, [&](const std::string& arg) -> std::optional<std::string> {
      if (!std::exchange(first, false)) return std::nullopt;
      if (auto problem = path_problem(arg, false)) return "the program " + *problem;
      return std::nullopt;
    });
    if (!argv) return argv;
    if (argv->empty() && !empty_ok) {
      return error_at(file_, node.source(), key, "the command must not be empty (e.g. [\"/usr/sbin/nginx\", \"-t\"])");
    }
    return argv;
  }

  Result<void> checks(const std::string& key, const toml::node& node) {
    const toml::table* tbl = node.as_table();
    if (!tbl) return error_at(file_, node.source(), key, fmt::format("expected a table, got {}", type_name(node)));
    const auto& ids = known_check_ids();
    for (auto&& [k, check_node] : *tbl) {
      std::string id(k.str());
      std::string check_key = dotted(key, id);
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
        return error_at(file_, k.source(), check_key, fmt::format("unknown check id (known: {})", join(ids, ", ")));
      }
      CheckPolicy& cp = p_.checks[id];
      Handlers handlers = {
          {"severity",
           [&cp, this](const std::string& k2, const toml::node& n2) { return severity(k2, n2, cp.severity); }},
          {"paths",
           [&cp, this](const std::string& k2, const toml::node& n2) {
             return path_array(k2, n2, cp.paths, /*prefix_ok=*/false, /*root_ok=*/true);
           }},
          {"ignore",
           [&cp, this](const std::string& k2, const toml::node& n2) {
             return path_array(k2, n2, cp.ignore, /*prefix_ok=*/true, /*root_ok=*/true);
           }},
      };
      if (id == "package-hashes") {
        handlers.emplace_back("conffiles", [this](const std::string& k2, const toml::node& n2) {
          return severity(k2, n2, p_.conffiles);
        });
      }
      if (auto r = table(check_key, check_node, handlers); !r) return r;
    }
    return {};
  }

  Result<void> snapshot(const std::string& key, const toml::node& node) {
    return table(key, node,
                 {{"backend",
                   [this](const std::string& k, const toml::node& n) -> Result<void> {
                     auto s = string(k, n, "a string (auto|btrfs|copy|none)");
                     if (!s) return tl::unexpected(s.error());
                     if (*s == "auto")
                       p_.snapshot.backend = SnapshotBackendKind::automatic;
                     else if (*s == "btrfs")
                       p_.snapshot.backend = SnapshotBackendKind::btrfs;
                     else if (*s == "copy")
                       p_.snapshot.backend = SnapshotBackendKind::copy;
                     else if (*s == "none")
                       p_.snapshot.backend = SnapshotBackendKind::none;
                     else
                       return error_at(file_, n.source(), k,
                                       fmt::format("unknown backend '{}' (expected auto, btrfs, copy or none)", *s));
                     origin(k, n);
                     return {};
                   }},
                  {"required",
                   [this](const std::string& k, const toml::node& n) { return boolean(k, n, p_.snapshot.required); }},
                  {"min_free", [this](const std::string& k,
                                      const toml::node& n) { return size(k, n, p_.snapshot.min_free_bytes); }},
                  {"keep", [this](const std::string& k, const toml::node& n) -> Result<void> {
                     const auto* i = n.as_integer();
                     if (!i)
                       return error_at(file_, n.source(), k, fmt::format("expected an integer, got {}", type_name(n)));
                     if (i->get() < 0 || i->get() > INT_MAX) {
                       return error_at(file_, n.source(), k, fmt::format("must be 0 or more, got {}", i->get()));
                     }
                     p_.snapshot.keep = static_cast<int>(i->get());
                     origin(k, n);
                     return {};
                   }}});
  }

  Result<void> backup(const std::string& key, const toml::node& node) {
    return table(key, node,
                 {{"max_age",
                   [this](const std::string& k, const toml::node& n) -> Result<void> {
                     auto d = duration_value(k, n, /*zero_ok=*/false);
                     if (!d) return tl::unexpected(d.error());
                     p_.backup.max_age = *d;
                     origin(k, n);
                     return {};
                   }},
                  {"marker",
                   [this](const std::string& k, const toml::node& n) -> Result<void> {
                     auto s = string(k, n);
                     if (!s) return tl::unexpected(s.error());
                     if (!s->empty()) {
                       if (auto problem = path_problem(*s, false)) return error_at(file_, n.source(), k, *problem);
                     }
                     p_.backup.marker = *s;
                     origin(k, n);
                     return {};
                   }},
                  {"command", [this](const std::string& k, const toml::node& n) -> Result<void> {
                     auto argv = argv_value(k, n, /*empty_ok=*/true);
                     if (!argv) return tl::unexpected(argv.error());
                     p_.backup.command = std::move(*argv);
                     origin(k, n);
                     return {};
                   }}});
  }

  Result<void> custom(const std::string& key, const toml::node& node) {
    const toml::array* arr = node.as_array();
    if (!arr) {
      return error_at(file_, node.source(), key,
                      fmt::format("expected an array of tables ([[custom]]), got {}", type_name(node)));
    }
    std::vector<std::string> seen;  // names given in this file
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::node& item = *arr->get(i);
      std::string item_key = fmt::format("{}[{}]", key, i);
      const toml::table* tbl = item.as_table();
      if (!tbl)
        return error_at(file_, item.source(), item_key, fmt::format("expected a table, got {}", type_name(item)));
      CustomCheck check;
      Origins origins;
      bool has_command = false;
      for (auto&& [k, n] : *tbl) {
        std::string field(k.str());
        std::string field_key = fmt::format("{}.{}", item_key, field);
        if (field == "name") {
          auto s = string(field_key, n);
          if (!s) return tl::unexpected(s.error());
          if (!valid_custom_name(*s)) {
            return error_at(file_, n.source(), field_key,
                            fmt::format("bad name '{}' (1 to 64 letters, digits, '-', '_' or '.')", *s));
          }
          if (std::find(seen.begin(), seen.end(), *s) != seen.end()) {
            return error_at(file_, n.source(), field_key,
                            fmt::format("a custom check named '{}' is already defined in this file", *s));
          }
          check.name = *s;
          origins[""] = position(file_, n.source());
        } else if (field == "command") {
          auto argv = argv_value(field_key, n, /*empty_ok=*/false);
          if (!argv) return tl::unexpected(argv.error());
          check.command = std::move(*argv);
          has_command = true;
          origins["command"] = position(file_, n.source());
        } else if (field == "timeout") {
          auto d = duration_value(field_key, n, /*zero_ok=*/false);
          if (!d) return tl::unexpected(d.error());
          check.timeout = *d;
          origins["timeout"] = position(file_, n.source());
        } else if (field == "severity") {
          auto sev = severity_value(field_key, n);
          if (!sev) return tl::unexpected(sev.error());
          check.severity = *sev;
          origins["severity"] = position(file_, n.source());
        } else {
          return error_at(file_, k.source(), field_key,
                          "unknown key (expected one of: name, command, timeout, severity)");
        }
      }
      if (check.name.empty()) return error_at(file_, item.source(), item_key, "missing required key 'name'");
      if (!has_command) return error_at(file_, item.source(), item_key, "missing required key 'command'");
      seen.push_back(check.name);

      // A later layer's entry with the same name replaces the earlier one in place.
      std::string base = "custom." + check.name;
      auto it =
          std::find_if(p_.custom.begin(), p_.custom.end(), [&](const CustomCheck& c) { return c.name == check.name; });
      if (it != p_.custom.end())
        *it = check;
      else
        p_.custom.push_back(check);
      for (const char* field : {"", "command", "timeout", "severity"}) {
        std::string okey = *field ? base + "." + field : base;
        auto o = origins.find(field);
        p_.origins[okey] = o != origins.end() ? o->second : "built-in";
      }
    }
    return {};
  }

  Policy& p_;
  const std::string& file_;
};

// ---- files and permissions ----------------------------------------------------------------

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// The StrictModes rule on an already opened file's stat.
Result<void> check_mode(const struct stat& st, const std::string& path, const std::vector<uid_t>& owners) {
  if (std::find(owners.begin(), owners.end(), st.st_uid) == owners.end()) {
    std::vector<std::string> names;
    names.reserve(owners.size());
    for (uid_t uid : owners) names.push_back(uid == 0 ? "root (uid 0)" : fmt::format("uid {}", uid));
    return base::fail(Error{"policy permissions", path, 0,
                            fmt::format("{} is owned by uid {}, not by {}: run chown root {}", path, st.st_uid,
                                        join(names, " or "), path)});
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    return base::fail(Error{"policy permissions", path, 0,
                            fmt::format("{} is writable by group or other: run chmod go-w {}", path, path)});
  }
  return {};
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// Opens `name` relative to `dirfd`; an empty fd (no error) when it does not exist and
// `missing_ok`. O_NONBLOCK so that a FIFO cannot hang the open.
Result<base::UniqueFd> open_at(int dirfd, const std::string& name, const std::string& shown, int flags,
                               bool missing_ok) {
  base::UniqueFd fd(::openat(dirfd, name.c_str(), flags | O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT && missing_ok) return base::UniqueFd();
    return base::fail_errno("open", shown, errno, "cannot open the policy");
  }
  return fd;
}

Result<struct stat> stat_fd(int fd, const std::string& shown) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return base::fail_errno("fstat", shown);
  return st;
}

Result<std::string> read_all(int fd, const std::string& shown) {
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::fail_errno("read", shown);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxPolicyBytes) {
      return base::fail(Error{"policy", shown, 0, fmt::format("{} is larger than 1 MiB; it is not a policy", shown)});
    }
  }
  return text;
}

// Checks (when asked), reads and applies one policy file opened as `fd`.
Result<void> apply_file(Policy& policy, int fd, const std::string& shown, const LoadOptions& options,
                        const std::vector<uid_t>& owners) {
  auto st = stat_fd(fd, shown);
  if (!st) return tl::unexpected(st.error());
  if (!S_ISREG(st->st_mode)) return base::fail(Error{"policy", shown, 0, shown + " is not a regular file"});
  if (options.check_permissions) {
    if (auto r = check_mode(*st, shown, owners); !r) return r;
  }
  auto text = read_all(fd, shown);
  if (!text) return tl::unexpected(text.error());
  return apply_policy_toml(policy, *text, shown);
}

void set_builtin_origins(Policy& p) {
  auto set = [&p](const std::string& key) { p.origins[key] = "built-in"; };
  set("on_fail");
  set("command_timeout");
  for (const auto& id : known_check_ids()) {
    for (const char* field : {"severity", "paths", "ignore"}) set("checks." + id + "." + field);
  }
  set("checks.package-hashes.conffiles");
  set("preserve.paths");
  set("services.required");
  for (const char* k : {"backend", "required", "min_free", "keep"}) set(std::string("snapshot.") + k);
  for (const char* k : {"lock_timeout", "min_free_root", "min_free_boot"}) set(std::string("preflight.") + k);
  set("backup.marker");
  set("backup.command");
  set("boot_check.settle_timeout");
  set("boot_check.rollback");
  set("hook.on_fail");
  set("audit.close_gate");
}

// ---- rendering ----------------------------------------------------------------------------

std::string quote(std::string_view s) {
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

std::string quote_all(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += quote(items[i]);
  }
  return out + "]";
}

class Renderer {
 public:
  explicit Renderer(const Policy& p) : p_(p) {}

  void line(const std::string& key, std::string_view name, const std::string& value) {
    auto it = p_.origins.find(key);
    std::string from = it == p_.origins.end() || it->second == "built-in" ? "# built-in" : "# from " + it->second;
    out_ += fmt::format("{} = {}  {}\n", name, value, from);
  }
  void raw(const std::string& text) { out_ += text; }
  std::string take() { return std::move(out_); }

 private:
  const Policy& p_;
  std::string out_;
};

}  // namespace

Policy default_policy() {
  Policy p;
  for (const auto& id : known_check_ids()) p.checks[id] = CheckPolicy{};
  p.checks["symlinks"].paths = {"/usr/bin", "/usr/sbin", "/usr/lib",       "/usr/libexec",
                                "/etc",     "/boot",     "/usr/local/bin", "/opt"};
  p.checks["libraries"].paths = {"/usr/bin",       "/usr/sbin",      "/usr/lib", "/usr/libexec",
                                 "/usr/local/bin", "/usr/local/lib", "/opt"};
  p.checks["critical"].paths = {"/sbin/init", "/bin/sh",    "/usr/bin/dpkg", "/usr/bin/apt-get",
                                "/bin/mount", "/bin/login", "/usr/sbin/sshd"};
  p.preserve = {"/home",          "/root",     "/srv",      "/var/log", "/var/lib/postgresql",
                "/var/lib/mysql", "/var/mail", "/var/spool"};
  set_builtin_origins(p);
  return p;
}

Result<void> apply_policy_toml(Policy& policy, std::string_view text, const std::string& file) {
  toml::table doc;
  try {
    doc = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    return base::fail(
        Error{"policy", file, 0, fmt::format("{}: syntax error: {}", position(file, e.source()), e.description())});
  }
  Policy next = policy;
  Layer layer(next, file);
  if (auto r = layer.apply(doc); !r) return r;
  policy = std::move(next);
  return {};
}

Result<void> check_policy_permissions(const std::string& path, unsigned owner_uid) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return base::fail_errno("stat", path, errno, "cannot check the policy's permissions");
  return check_mode(st, path, {static_cast<uid_t>(owner_uid)});
}

Result<Policy> load_policy(const LoadOptions& options) {
  Policy policy = default_policy();
  std::vector<uid_t> owners = {0};
  if (::geteuid() != 0) owners.push_back(::geteuid());

  if (!options.policy_file.empty()) {
    auto fd = open_at(AT_FDCWD, options.policy_file, options.policy_file, 0, /*missing_ok=*/false);
    if (!fd) return tl::unexpected(fd.error());
    if (auto r = apply_file(policy, fd->get(), options.policy_file, options, owners); !r)
      return tl::unexpected(r.error());
    return policy;
  }

  const std::string& dir = options.config_dir;
  auto dir_fd = open_at(AT_FDCWD, dir, dir, O_DIRECTORY, /*missing_ok=*/true);
  if (!dir_fd) return tl::unexpected(dir_fd.error());
  if (!*dir_fd) return policy;  // no configuration directory: the built-in defaults
  if (options.check_permissions) {
    auto st = stat_fd(dir_fd->get(), dir);
    if (!st) return tl::unexpected(st.error());
    if (auto r = check_mode(*st, dir, owners); !r) return tl::unexpected(r.error());
  }

  const std::string main_file = join_path(dir, "policy.toml");
  auto main_fd = open_at(dir_fd->get(), "policy.toml", main_file, 0, /*missing_ok=*/true);
  if (!main_fd) return tl::unexpected(main_fd.error());
  if (*main_fd) {
    if (auto r = apply_file(policy, main_fd->get(), main_file, options, owners); !r) return tl::unexpected(r.error());
  }

  const std::string drop_in_dir = join_path(dir, "policy.d");
  auto d_fd = open_at(dir_fd->get(), "policy.d", drop_in_dir, O_DIRECTORY, /*missing_ok=*/true);
  if (!d_fd) return tl::unexpected(d_fd.error());
  if (!*d_fd) return policy;
  if (options.check_permissions) {
    auto st = stat_fd(d_fd->get(), drop_in_dir);
    if (!st) return tl::unexpected(st.error());
    if (auto r = check_mode(*st, drop_in_dir, owners); !r) return tl::unexpected(r.error());
  }

  // Like systemd drop-ins: regular files ending in .toml, not hidden, in byte order of name.
  std::vector<std::string> names;
  {
    int listing = ::fcntl(d_fd->get(), F_DUPFD_CLOEXEC, 0);
    if (listing < 0) return base::fail_errno("fcntl", drop_in_dir);
    UniqueDir d(::fdopendir(listing));
    if (!d) {
      int err = errno;
      ::close(listing);
      return base::fail_errno("fdopendir", drop_in_dir, err);
    }
    errno = 0;
    while (const dirent* entry = ::readdir(d.get())) {
      std::string_view name(entry->d_name);
      if (name.size() > 5 && name.front() != '.' && name.substr(name.size() - 5) == ".toml") names.emplace_back(name);
      errno = 0;
    }
    if (errno != 0) return base::fail_errno("readdir", drop_in_dir);
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    std::string shown = join_path(drop_in_dir, name);
    auto fd = open_at(d_fd->get(), name, shown, 0, /*missing_ok=*/true);
    if (!fd) return tl::unexpected(fd.error());
    if (!*fd) continue;  // removed while we listed
    auto st = stat_fd(fd->get(), shown);
    if (!st) return tl::unexpected(st.error());
    if (S_ISDIR(st->st_mode)) continue;
    if (auto r = apply_file(policy, fd->get(), shown, options, owners); !r) return tl::unexpected(r.error());
  }
  return policy;
}

std::string render_policy(const Policy& p) {
  Renderer r(p);
  r.raw(
      "# The effective upgrade-guard policy. Each value says where it came from; this text is\n"
      "# itself a valid policy file.\n\n");
  r.line("on_fail", "on_fail", quote(to_string(p.on_fail)));
  r.line("command_timeout", "command_timeout", quote(format_duration(p.command_timeout)));

  std::vector<std::string> ids = known_check_ids();
  for (const auto& [id, cp] : p.checks) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  for (const auto& id : ids) {
    const CheckPolicy& cp = p.check(id);
    std::string prefix = "checks." + id;
    r.raw(fmt::format("\n[checks.{}]\n", id));
    r.line(prefix + ".severity", "severity", quote(to_string(cp.severity)));
    r.line(prefix + ".paths", "paths", quote_all(cp.paths));
    r.line(prefix + ".ignore", "ignore", quote_all(cp.ignore));
    if (id == "package-hashes") r.line(prefix + ".conffiles", "conffiles", quote(to_string(p.conffiles)));
  }

  r.raw("\n[preserve]\n");
  r.line("preserve.paths", "paths", quote_all(p.preserve));
  r.raw("\n[services]\n");
  r.line("services.required", "required", quote_all(p.required_services));

  r.raw("\n[snapshot]\n");
  r.line("snapshot.backend", "backend", quote(to_string(p.snapshot.backend)));
  r.line("snapshot.required", "required", p.snapshot.required ? "true" : "false");
  r.line("snapshot.min_free", "min_free", quote(format_size(p.snapshot.min_free_bytes)));
  r.line("snapshot.keep", "keep", std::to_string(p.snapshot.keep));

  r.raw("\n[preflight]\n");
  r.line("preflight.lock_timeout", "lock_timeout", quote(format_duration(p.preflight.lock_timeout)));
  r.line("preflight.min_free_root", "min_free_root", quote(format_size(p.preflight.min_free_root)));
  r.line("preflight.min_free_boot", "min_free_boot", quote(format_size(p.preflight.min_free_boot)));

  r.raw("\n[backup]\n");
  if (p.backup.max_age) {
    r.line("backup.max_age", "max_age", quote(format_duration(*p.backup.max_age)));
  } else {
    r.raw("# max_age is not set: the backup check is not configured\n");
  }
  r.line("backup.marker", "marker", quote(p.backup.marker));
  r.line("backup.command", "command", quote_all(p.backup.command));

  r.raw("\n[boot_check]\n");
  r.line("boot_check.settle_timeout", "settle_timeout", quote(format_duration(p.boot_check.settle_timeout)));
  r.line("boot_check.rollback", "rollback", p.boot_check.rollback ? "true" : "false");

  r.raw("\n[hook]\n");
  r.line("hook.on_fail", "on_fail", quote(to_string(p.hook.on_fail)));
  r.raw("\n[audit]\n");
  r.line("audit.close_gate", "close_gate", p.audit.close_gate ? "true" : "false");

  for (const auto& c : p.custom) {
    std::string base = "custom." + c.name;
    r.raw("\n[[custom]]\n");
    r.line(base, "name", quote(c.name));
    r.line(base + ".command", "command", quote_all(c.command));
    r.line(base + ".timeout", "timeout", quote(format_duration(c.timeout)));
    r.line(base + ".severity", "severity", quote(to_string(c.severity)));
  }
  return r.take();
}

}  // namespace guard::policies
