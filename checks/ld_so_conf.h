// ld.so.conf: the parser for one file's text, and the expansion of a root's whole
// configuration (include globs matched inside the root) into the directories ldconfig caches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"

namespace guard::checks {

// One meaningful line: a library directory ("/usr/local/lib") or an include pattern
// ("/etc/ld.so.conf.d/*.conf", or relative to the including file's directory).
struct LdConfLine {
  enum class Kind { directory, include };
  Kind kind = Kind::directory;
  std::string value;
  std::size_t line = 0;  // 1-based
};

// Parses one ld.so.conf-style file: '#' comments, blank lines, "include PATTERN..." (several
// patterns per line allowed), "hwcap ..." lines (ignored, as modern ldconfig does), and
// directories (an old "dir=TYPE" suffix is dropped). A relative directory, an include without a
// pattern or a NUL byte is an Error naming `file` and the line.
[[nodiscard]] base::Result<std::vector<LdConfLine>> parse_ld_so_conf(std::string_view text, const std::string& file);

// Matches an absolute glob `pattern` (fnmatch per component, directory listings read inside
// the root, never glob() on the host) and returns the root-relative matches sorted, e.g.
// "/etc/ld.so.conf.d/*.conf" -> {"/etc/ld.so.conf.d/libc.conf", ...}. A pattern without magic
// characters is returned as it is when it exists. When a step of the match reaches more than
// `max_paths` candidates, nothing is returned and `*truncated` (when given) is set.
[[nodiscard]] std::vector<std::string> glob_in_root(const base::Root& root, std::string_view pattern,
                                                    std::size_t max_paths = SIZE_MAX, bool* truncated = nullptr);

// The root's library directories in ldconfig's order, from /etc/ld.so.conf and its includes.
// `problems` receives each file that could not be read or parsed (the rest is still used).
struct LdConfDirs {
  std::vector<std::string> dirs;       // e.g. {"/usr/local/lib", "/lib/x86_64-linux-gnu", ...}
  std::vector<base::Error> problems;
};
[[nodiscard]] LdConfDirs load_ld_so_conf(const base::Root& root, const std::string& file = "/etc/ld.so.conf");

}  // namespace guard::checks
