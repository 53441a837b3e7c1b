// The preload check: every entry of /etc/ld.so.preload exists and loads, with its whole
// dependency tree, as a library of the root's native class. ld.so maps these into every
// program: a missing entry makes every program print an error (and run without it), a missing
// dependency of an entry makes every program fail to start. Both block.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "checks/check.h"
#include "checks/elf_resolver.h"

namespace guard::checks {

// One entry of ld.so.preload. e.g. "/usr/lib/x86_64-linux-gnu/libfoo.so" on line 2.
struct PreloadEntry {
  std::size_t line = 0;
  std::string name;  // as written, $LIB/$PLATFORM unexpanded
};

// Splits ld.so.preload bytes as glibc's rtld.c does: '#' starts a comment that ends at the end
// of the line; entries are separated by spaces, tabs, newlines or ':'.
[[nodiscard]] std::vector<PreloadEntry> parse_ld_so_preload(std::string_view text);

class PreloadCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "preload"; }
  [[nodiscard]] std::string_view summary() const override {
    return "libraries in /etc/ld.so.preload exist and load with all their libraries";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// The root-relative paths of the preload entries that exist (names without '/' as ld.so's
// search finds them).
[[nodiscard]] std::vector<std::string> preload_named_objects(const base::Root& root, LibraryResolver& resolver);

}  // namespace guard::checks
