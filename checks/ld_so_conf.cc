#include "checks/ld_so_conf.h"

#include <fnmatch.h>

#include <fmt/format.h>
#include <algorithm>
#include <cstdint>
#include <unordered_set>

#include "base/dir.h"
#include "base/input_limits.h"
#include "base/strings.h"

namespace guard::checks {
namespace {

bool has_magic(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

// ldconfig follows includes recursively without loop detection; we stop at this depth.
constexpr int kMaxIncludeDepth = 8;
// Debian ships about five files in /etc/ld.so.conf.d; a configuration reaching more distinct
// files than this is damaged or hostile, and the rest of it is not read (each file is read at
// most once, so this also bounds the time: a glob like "/*/*/*" cannot make us read the tree).
constexpr std::size_t kMaxIncludedFiles = 1024;
// Far above any real system (tens of directories), low enough that the resolver's search of
// them for every soname stays cheap.
constexpr std::size_t kMaxLibraryDirs = 4096;
// Include patterns expanded in all, each one a glob over directory listings: bounds the work a
// file of a million "include /*/*/*" lines could cause (a real system has one or two).
constexpr std::size_t kMaxIncludePatterns = 4096;

// Expands the configuration once per file: a file included a second time (through a loop or
// from two places) adds no directory the first expansion did not, so it is skipped, which keeps
// the expansion linear in the number of distinct files, whatever the fan-out of the includes.
class Loader {
 public:
  Loader(const base::Root& root, LdConfDirs& out) : root_(root), out_(out) {}

  void load(const std::string& file, int depth) {
    loaded_.insert(file);
    reading_.push_back(file);
    load_lines(file, depth);
    reading_.pop_back();
  }

 private:
  void problem(const std::string& file, std::size_t line, const std::string& what) {
    out_.problems.push_back(base::Error{"ld.so.conf", file, 0, fmt::format("line {}: {}", line, what)});
  }

  // Stops the whole expansion: what was read so far is used, the rest is reported once.
  void cap(const std::string& file, std::size_t line, const std::string& what) {
    problem(file, line, what + "; the rest of the configuration is not read");
    capped_ = true;
  }

  void load_lines(const std::string& file, int depth) {
    auto text = root_.read_file(file, base::limits::kConfigFileBytes);
    if (!text) {
      // A missing /etc/ld.so.conf is fine (ldconfig uses its built-in dirs); a missing include
      // match cannot happen (globs only return what exists).
      if (text.error().err != ENOENT) out_.problems.push_back(text.error());
      return;
    }
    auto lines = parse_ld_so_conf(*text, file);
    if (!lines) {
      out_.problems.push_back(lines.error());
      return;
    }
    for (auto& l : *lines) {
      if (capped_) return;
      if (l.kind == LdConfLine::Kind::directory) {
        std::string dir = base::normalize_path(l.value);
        if (dirs_seen_.contains(dir)) continue;
        if (out_.dirs.size() >= kMaxLibraryDirs) {
          if (!dirs_capped_)
            problem(file, l.line, fmt::format("more than {} library directories; the rest are ignored", kMaxLibraryDirs));
          dirs_capped_ = true;
          continue;
        }
        dirs_seen_.insert(dir);
        out_.dirs.push_back(std::move(dir));
        continue;
      }
      if (depth >= kMaxIncludeDepth) {
        problem(file, l.line, fmt::format("includes nested deeper than {}", kMaxIncludeDepth));
        continue;
      }
      if (++patterns_ > kMaxIncludePatterns) {
        return cap(file, l.line, fmt::format("more than {} include patterns in all", kMaxIncludePatterns));
      }
      std::string pattern = l.value;
      if (pattern.front() != '/') pattern = base::join_path(base::dirname(file), pattern);
      bool truncated = false;
      auto matches = glob_in_root(root_, pattern, kMaxIncludedFiles, &truncated);
      if (truncated) {
        return cap(file, l.line, fmt::format("the pattern {} matches more than {} paths", pattern, kMaxIncludedFiles));
      }
      for (auto& match : matches) {
        // One name per file, whatever the path or link that reached it ("../ld.so.conf").
        if (auto real = root_.realpath(match)) match = std::move(*real);
        if (std::find(reading_.begin(), reading_.end(), match) != reading_.end()) {
          problem(file, l.line,
                  fmt::format("includes {}, which is already being read: an include loop, which ldconfig "
                              "follows without end",
                              match));
          continue;
        }
        if (loaded_.contains(match)) continue;
        if (loaded_.size() >= kMaxIncludedFiles) {
          return cap(file, l.line, fmt::format("includes more than {} files in all", kMaxIncludedFiles));
        }
        load(match, depth + 1);
      }
    }
  }

  const base::Root& root_;
  LdConfDirs& out_;
  std::unordered_set<std::string> loaded_;
  std::vector<std::string> reading_;  // the include chain being expanded, outermost first
  std::unordered_set<std::string> dirs_seen_;
  std::size_t patterns_ = 0;
  bool dirs_capped_ = false;
  bool capped_ = false;
};

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

std::vector<std::string> glob_in_root(const base::Root& root, std::string_view pattern, std::size_t max_paths,
                                      bool* truncated) {
  if (truncated != nullptr) *truncated = false;
  auto over = [&](const std::vector<std::string>& v) {
    if (v.size() <= max_paths) return false;
    if (truncated != nullptr) *truncated = true;
    return true;
  };
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
      if (over(next)) return {};
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
  Loader(root, out).load(file, 0);
  return out;
}

}  // namespace guard::checks
