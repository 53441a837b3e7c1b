#include "checks/preload.h"

#include <fmt/format.h>
#include <optional>

#include "base/input_limits.h"
#include "base/strings.h"
#include "checks/configured_objects.h"

namespace guard::checks {
namespace {

constexpr const char* kPreload = "/etc/ld.so.preload";

// Where ld.so looks for an entry: a name with a '/' is a path ($LIB and $PLATFORM expanded),
// a plain name goes through the library search like a DT_NEEDED. nullopt: not found (or a
// relative path, which depends on each program's working directory).
std::optional<std::string> locate(LibraryResolver& resolver, const std::optional<LoadedElf>& anchor,
                                  const std::string& name) {
  if (name.find('/') == std::string::npos) {
    if (!anchor) return std::nullopt;
    auto found = resolver.resolve(*anchor, name, {}, nullptr);
    return found ? std::optional<std::string>(found->path) : std::nullopt;
  }
  auto expanded = resolver.expand_search_path(name, "/", resolver.native());
  if (expanded.size() != 1) return std::nullopt;
  return expanded.front();
}

}  // namespace

std::vector<PreloadEntry> parse_ld_so_preload(std::string_view text) {
  std::vector<PreloadEntry> out;
  std::size_t number = 0;
  for (auto line : base::split(text, '\n')) {
    ++number;
    auto hash = line.find('#');
    if (hash != std::string_view::npos) line = line.substr(0, hash);
    std::size_t i = 0;
    auto sep = [](char c) { return c == ' ' || c == '\t' || c == ':'; };
    while (i < line.size()) {
      while (i < line.size() && sep(line[i])) ++i;
      std::size_t start = i;
      while (i < line.size() && !sep(line[i])) ++i;
      if (i > start) out.push_back({number, std::string(line.substr(start, i - start))});
    }
  }
  return out;
}

base::Result<CheckOutput> PreloadCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  auto text = ctx.root.read_file(kPreload, base::limits::kConfigFileBytes);
  if (!text) {
    int err = text.error().err;
    if (err == ENOENT || err == ENOTDIR) return out;  // the usual case: nothing is preloaded
    out.findings.push_back(make_finding("preload", Severity::warn, kPreload,
                                        "cannot be read: " + text.error().to_string(),
                                        "look at what the file is; ld.so reads it in every program", "unreadable"));
    return out;
  }
  LibraryResolver resolver(ctx.root);
  auto anchor = search_anchor(resolver);
  ReinstallHints hints(ctx.root);
  LineFindings found("preload");
  for (const auto& e : parse_ld_so_preload(*text)) {
    ++out.items;
    std::string id = "preload:" + e.name;
    std::string remove = fmt::format("remove {} from {}", e.name, kPreload);
    auto path = locate(resolver, anchor, e.name);
    if (!path) {
      std::string why = e.name.find('/') == std::string::npos
                            ? e.name + " is not in the library search path"
                            : e.name + " is a relative path, looked up from each program's working directory";
      found.add(Severity::block, kPreload, e.line, e.name,
                why + ": ld.so prints an error in every program that starts and runs it without the library",
                remove, id);
      continue;
    }
    for (const auto& failure : load_failures(resolver, *path)) {
      std::string effect = failure.missing || failure.id == "not-elf" || failure.id == "wrong-arch"
                               ? "ld.so prints an error in every program that starts and runs it without the library"
                               : "ld.so cannot load it: every program on the system fails to start";
      std::string hint = failure.missing ? hints.for_path(*path, remove) : failure.hint + "; or " + remove;
      found.add(Severity::block, kPreload, e.line, e.name, failure.message + ": " + effect, hint,
                id + (failure.missing ? "" : ":" + failure.id));
    }
  }
  out.findings = found.take();
  return out;
}

std::vector<std::string> preload_named_objects(const base::Root& root, LibraryResolver& resolver) {
  std::vector<std::string> out;
  auto text = root.read_file(kPreload, base::limits::kConfigFileBytes);
  if (!text) return out;
  auto anchor = search_anchor(resolver);
  for (const auto& e : parse_ld_so_preload(*text))
    if (auto p = locate(resolver, anchor, e.name)) out.push_back(*p);
  return out;
}

}  // namespace guard::checks
