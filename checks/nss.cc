#include "checks/nss.h"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>
#include <optional>
#include <set>

#include "base/input_limits.h"
#include "base/strings.h"
#include "checks/configured_objects.h"

namespace guard::checks {
namespace {

constexpr const char* kNsswitch = "/etc/nsswitch.conf";

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The databases of glibc's nss/databases.def (2.36 and 2.41 alike).
bool glibc_database(std::string_view name) {
  static const std::set<std::string_view> dbs = {"aliases",  "ethers",   "group",     "gshadow", "hosts",
                                                 "initgroups", "netgroup", "networks", "passwd",  "protocols",
                                                 "publickey", "rpc",      "services", "shadow"};
  return dbs.count(name) != 0;
}

// Since glibc 2.34 "files" and "dns" live in libc itself; every other source is dlopen()ed.
bool built_in(std::string_view source) { return source == "files" || source == "dns"; }

// Checks one "[!STATUS=ACTION ...]" block (without the brackets); "" when glibc accepts it.
std::string check_actions(std::string_view body) {
  auto items = base::split_ws(body);
  if (items.empty()) return "an empty [] action";
  for (auto item : items) {
    if (!item.empty() && item[0] == '!') item.remove_prefix(1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) return fmt::format("\"{}\" is not STATUS=ACTION", item);
    std::string status = lower(item.substr(0, eq));
    std::string action = lower(item.substr(eq + 1));
    if (status != "success" && status != "notfound" && status != "unavail" && status != "tryagain")
      return fmt::format("unknown status \"{}\"", item.substr(0, eq));
    if (action != "return" && action != "continue" && action != "merge")
      return fmt::format("unknown action \"{}\"", item.substr(eq + 1));
  }
  return "";
}

}  // namespace

std::vector<NssLine> parse_nsswitch(std::string_view text) {
  std::vector<NssLine> out;
  std::size_t number = 0;
  for (auto raw : base::split(text, '\n')) {
    ++number;
    auto hash = raw.find('#');
    std::string_view line = base::trim(hash == std::string_view::npos ? raw : raw.substr(0, hash));
    if (line.empty()) continue;
    std::size_t name_end = 0;
    while (name_end < line.size() && !is_space(line[name_end]) && line[name_end] != ':') ++name_end;
    std::size_t colon = name_end;
    while (colon < line.size() && is_space(line[colon])) ++colon;
    if (name_end == 0 || colon >= line.size() || line[colon] != ':') continue;  // glibc skips it
    NssLine l;
    l.line = number;
    l.database = std::string(line.substr(0, name_end));
    if (!glibc_database(l.database)) continue;
    std::vector<std::string> words;
    for (auto w : base::split_ws(line)) words.emplace_back(w);
    l.text = base::join(words, " ");
    std::string_view spec = line.substr(colon + 1);
    std::size_t i = 0;
    while (i < spec.size() && l.problem.empty()) {
      if (is_space(spec[i])) {
        ++i;
        continue;
      }
      if (spec[i] == '[') {
        if (l.sources.empty()) {
          l.problem = "an action before any source";
          break;
        }
        auto close = spec.find(']', i);
        if (close == std::string_view::npos) {
          l.problem = "an unterminated [";
          break;
        }
        l.problem = check_actions(spec.substr(i + 1, close - i - 1));
        i = close + 1;
        continue;
      }
      std::size_t start = i;
      while (i < spec.size() && !is_space(spec[i]) && spec[i] != '[') ++i;
      l.sources.emplace_back(spec.substr(start, i - start));
    }
    out.push_back(std::move(l));
  }
  return out;
}

bool nss_identity_database(std::string_view db) {
  return db == "passwd" || db == "group" || db == "shadow" || db == "gshadow" || db == "initgroups";
}

namespace {

std::string module_name(std::string_view source) { return fmt::format("libnss_{}.so.2", source); }

// Where ld.so's search (as libc's dlopen does it) finds a source's module, or nullopt.
std::optional<std::string> find_module(LibraryResolver& resolver, const std::optional<LoadedElf>& anchor,
                                       std::string_view source) {
  if (!anchor) return std::nullopt;
  auto found = resolver.resolve(*anchor, module_name(source), {}, nullptr);
  if (!found) return std::nullopt;
  return found->path;
}

}  // namespace

base::Result<CheckOutput> NssCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  auto text = ctx.root.read_file(kNsswitch, base::limits::kConfigFileBytes);
  if (!text) {
    int err = text.error().err;
    if (err == ENOENT || err == ENOTDIR) return out;  // glibc's defaults: files only
    out.findings.push_back(make_finding("nss", Severity::warn, kNsswitch, "cannot be read: " + text.error().to_string(),
                                        "", "unreadable"));
    return out;
  }
  LibraryResolver resolver(ctx.root);
  auto anchor = search_anchor(resolver);
  LineFindings found("nss");
  for (const auto& l : parse_nsswitch(*text)) {
    bool identity = nss_identity_database(l.database);
    if (!l.problem.empty()) {
      found.add(Severity::warn, kNsswitch, l.line, l.text,
                fmt::format("glibc rejects its specification ({})", l.problem),
                "fix the line (see nsswitch.conf(5))", "malformed:" + l.database);
    }
    for (const auto& source : l.sources) {
      if (built_in(source)) continue;
      ++out.items;
      std::string id = l.database + ":" + source;
      std::string effect = identity ? fmt::format("glibc skips the source (UNAVAIL): the {} entries it provides "
                                                  "vanish and their logins fail",
                                                  l.database)
                                    : "glibc skips the source (UNAVAIL) and asks the next one";
      auto path = find_module(resolver, anchor, source);
      if (!path) {
        // Debian's default nsswitch.conf names "db" and "nis" for databases nobody depends on,
        // without installing their modules: for those databases a never-installed module is
        // expected; for the account databases it is not.
        found.add(identity ? Severity::block : Severity::info, kNsswitch, l.line, l.text,
                  fmt::format("{} is not installed (not in the library search path): {}", module_name(source), effect),
                  fmt::format("install the package that ships {} (often libnss-{}), or remove \"{}\" from the line",
                              module_name(source), source, source),
                  id);
        continue;
      }
      for (const auto& failure : load_failures(resolver, *path)) {
        found.add(identity ? Severity::block : Severity::warn, kNsswitch, l.line, l.text,
                  fmt::format("{}: {}", failure.message, effect), failure.hint + "; or remove \"" + source + "\"",
                  id + ":" + failure.id);
      }
    }
  }
  out.findings = found.take();
  return out;
}

std::vector<std::string> nss_named_objects(const base::Root& root, LibraryResolver& resolver) {
  std::vector<std::string> out;
  auto text = root.read_file(kNsswitch, base::limits::kConfigFileBytes);
  if (!text) return out;
  auto anchor = search_anchor(resolver);
  for (const auto& l : parse_nsswitch(*text))
    for (const auto& s : l.sources)
      if (!built_in(s))
        if (auto p = find_module(resolver, anchor, s)) out.push_back(*p);
  return out;
}

}  // namespace guard::checks
