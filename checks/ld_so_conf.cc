#include "checks/ld_so_conf.h"

#include <fnmatch.h>

#include <fmt/format.h>
#include <algorithm>

#include "base/dir.h"
#include "base/strings.h"

namespace guard::checks {
namespace {

bool has_magic(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

// ldconfig follows includes recursively without loop detection; we stop at this depth.
constexpr int kMaxIncludeDepth = 8;

void load_file(const base::Root& root, const std::string& file, int depth, LdConfDirs& out) {
  auto text = root.read_file(file, 1 << 20);
  if (!text) {
    // A missing /etc/ld.so.conf is fine (ldconfig uses its built-in dirs); a missing include
    // match cannot happen (globs only return what exists).
    if (text.error().err != ENOENT) out.problems.push_back(text.error());
    return;
  }
  auto lines = parse_ld_so_conf(*text, file);
  if (!lines) {
    out.problems.push_back(lines.error());
    return;
  }
  for (auto& l : *lines) {
    if (l.kind == LdConfLine::Kind::directory) {
      std::string dir = base::normalize_path(l.value);
      if (std::find(out.dirs.begin(), out.dirs.end(), dir) == out.dirs.end()) out.dirs.push_back(dir);
      continue;
    }
    if (depth >= kMaxIncludeDepth) {
      out.problems.push_back(base::Error{"ld.so.conf", file, 0,
                                         fmt::format("line {}: includes nested deeper than {}", l.line, kMaxIncludeDepth)});
      continue;
    }
    std::string pattern = l.value;
    if (pattern.front() != '/') pattern = base::join_path(base::dirname(file), pattern);
    for (const auto& match : glob_in_root(root, pattern)) load_file(root, match, depth + 1, out);
  }
}

}  // namespace

base::Result<std::vector<LdConfLine>> parse_ld_so_conf(std::string_view text, const std::string& file) {
  std::vector<LdConfLine> out;
  std::size_t lineno = 0;
  for (auto raw : base::split(text, '\n')) {
    ++lineno;
    auto bad = [&](const std::string& what) {
      return base::fail("ld.so.conf", file, fmt::format("line {}: {}", lineno, what));
    };
    if (raw.find('\0') != std::string_view::npos) return bad("contains a NUL byte");
    if (auto hash = raw.find('#'); hash != std::string_view::npos) raw = raw.substr(0, hash);
    std::string_view line = base::trim(raw);
    if (line.empty()) continue;
    auto words = base::split_ws(line);
    if (words[0] == "include") {
      if (words.size() < 2) return bad("\"include\" without a pattern");
      for (std::size_t i = 1; i < words.size(); ++i)
        out.push_back(LdConfLine{LdConfLine::Kind::include, std::string(words[i]), lineno});
      continue;
    }
    if (words[0] == "hwcap") continue;
    std::string_view dir = line;
    if (auto eq = dir.find('='); eq != std::string_view::npos) dir = base::trim(dir.substr(0, eq));
    if (dir.empty() || dir.front() != '/') return bad(fmt::format("relative directory '{}'", dir));
    out.push_back(LdConfLine{LdConfLine::Kind::directory, std::string(dir), lineno});
  }
  return out;
}

std::vector<std::string> glob_in_root(const base::Root& root, std::string_view pattern) {
  std::vector<std::string> current{"/"};
  auto parts = base::split(pattern, '/');
  for (auto part : parts) {
    if (part.empty() || part == ".") continue;
    std::vector<std::string> next;
    for (const auto& dir : current) {
      if (!has_magic(part)) {
        std::string p = base::join_path(dir, part);
        next.push_back(std::move(p));
        continue;
      }
      auto names = base::list_dir(root, dir);
      if (!names) continue;
      std::string pat(part);
      for (const auto& n : *names)
        if (::fnmatch(pat.c_str(), n.c_str(), FNM_PERIOD) == 0) next.push_back(base::join_path(dir, n));
    }
    current = std::move(next);
  }
  std::vector<std::string> out;
  for (auto& p : current) {
    auto ok = root.exists(p);
    if (ok && *ok) out.push_back(std::move(p));
  }
  return out;
}

LdConfDirs load_ld_so_conf(const base::Root& root, const std::string& file) {
  LdConfDirs out;
  load_file(root, file, 0, out);
  return out;
}

}  // namespace guard::checks
