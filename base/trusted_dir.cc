#include "base/trusted_dir.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <memory>
#include <vector>

namespace guard::base {
namespace {

bool trusted_owner(uid_t uid) { return uid == 0 || uid == ::geteuid(); }

std::string owners() { return ::geteuid() == 0 ? "root" : fmt::format("root or uid {}", ::geteuid()); }

// One component: `path` as lstat/stat give it. `last`: the directory itself (stricter).
Result<void> check_component(const std::string& path, const struct stat& st, const std::string& dir,
                             const std::string& what, bool last) {
  const std::string subject =
      path == dir ? fmt::format("{} {}", what, dir) : fmt::format("{} of {} {}", path, what, dir);
  if (!trusted_owner(st.st_uid))
    return fail(Error{"trusted directory", path, 0,
                      fmt::format("{} is owned by uid {}, not {}: another user could plant a symlink the guard "
                                  "would follow as root; refused (chown root {})",
                                  subject, st.st_uid, owners(), path)});
  if (S_ISLNK(st.st_mode)) return {};
  const bool others = (st.st_mode & S_IWOTH) != 0 && (st.st_mode & S_ISVTX) == 0;
  const bool group = last && (st.st_mode & S_IWGRP) != 0;
  if (others || group)
    return fail(Error{"trusted directory", path, 0,
                      fmt::format("{} is writable by {} (mode {:04o}): another user could plant a symlink the guard "
                                  "would follow as root; refused (chmod {} {})",
                                  subject, others ? "others" : "its group", st.st_mode & 07777,
                                  others ? "o-w" : "g-w", path)});
  if (last && !S_ISDIR(st.st_mode))
    return fail(Error{"trusted directory", path, ENOTDIR, fmt::format("{} is not a directory", subject)});
  return {};
}

// Every existing prefix of absolute `path`, lstat'ed; stops at the first missing one.
// `exists` says whether all of `path` exists.
Result<void> check_chain(const std::string& path, const std::string& dir, const std::string& what, bool& exists) {
  exists = true;
  std::vector<std::string> prefixes{"/"};
  for (std::size_t pos = 1; pos < path.size();) {
    std::size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    if (next > pos) prefixes.emplace_back(path, 0, next);
    pos = next + 1;
  }
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    const std::string& component = prefixes[i];
    struct stat st {};
    if (::lstat(component.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        exists = false;
        return {};
      }
      return fail_errno("lstat", component, errno, fmt::format("cannot check {} {}", what, dir));
    }
    const bool last = i + 1 == prefixes.size() && !S_ISLNK(st.st_mode);
    if (auto r = check_component(component, st, dir, what, last); !r) return r;
  }
  return {};
}

}  // namespace

Result<void> check_trusted_dir(const std::string& dir, const std::string& what) {
  std::string path = dir;
  if (path.empty() || path.front() != '/') {
    std::unique_ptr<char, decltype(&std::free)> cwd(::getcwd(nullptr, 0), &std::free);
    if (!cwd) return fail_errno("getcwd", dir, errno, fmt::format("cannot check {} {}", what, dir));
    path = std::string(cwd.get()) + "/" + path;
  }
  // The path as written (a symlink on the way must be root's), then the path it resolves to.
  bool exists = false;
  if (auto r = check_chain(path, dir, what, exists); !r) return r;
  std::string existing = path;
  while (!exists) {  // the nearest existing parent is what resolves
    auto slash = existing.find_last_of('/');
    existing = slash == 0 ? std::string("/") : existing.substr(0, slash);
    struct stat st {};
    exists = ::lstat(existing.c_str(), &st) == 0;
  }
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(existing.c_str(), nullptr), &std::free);
  if (!resolved) return fail_errno("realpath", existing, errno, fmt::format("cannot check {} {}", what, dir));
  bool all = false;
  if (auto r = check_chain(resolved.get(), dir, what, all); !r) return r;
  if (existing == path) {
    struct stat st {};
    if (::stat(resolved.get(), &st) != 0) return fail_errno("stat", dir, errno, fmt::format("cannot check {}", what));
    if (auto r = check_component(dir, st, dir, what, true); !r) return r;
  }
  return {};
}

}  // namespace guard::base
