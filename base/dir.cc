#include "base/dir.h"

#include <fcntl.h>

#include <algorithm>

namespace guard::base {
namespace {

// Reads every name of `dir`, sorted.
Result<std::vector<std::string>> names_of(Dir& dir) {
  std::vector<std::string> names;
  for (;;) {
    auto e = dir.next();
    if (!e) return fail(e.error());
    if (!*e) break;
    names.emplace_back((*e)->name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

void Dir::Closer::operator()(DIR* d) const {
  // closedir only fails for a bad stream; the descriptor is released either way.
  (void)::closedir(d);
}

Result<Dir> Dir::adopt(UniqueFd fd, std::string display) {
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) return fail_errno("fdopendir", std::move(display));
  fd.release();  // the stream owns it now
  return Dir(d, std::move(display));
}

Result<std::optional<DirEntry>> Dir::next() {
  for (;;) {
    errno = 0;
    const struct dirent* de = ::readdir(dir_.get());
    if (de == nullptr) {
      if (errno != 0) return fail_errno("readdir", display_);
      return std::optional<DirEntry>();
    }
    std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    return std::optional<DirEntry>(DirEntry{name, de->d_type});
  }
}

int Dir::fd() const {
  return ::dirfd(dir_.get());
}

Result<std::vector<std::string>> list_dir(int dir_fd, std::string_view display) {
  UniqueFd fresh(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fresh) return fail_errno("openat .", std::string(display));
  auto dir = Dir::adopt(std::move(fresh), std::string(display));
  if (!dir) return fail(dir.error());
  return names_of(*dir);
}

Result<std::vector<std::string>> list_dir(const Root& root, std::string_view dir) {
  auto fd = root.open(dir, O_RDONLY | O_DIRECTORY);
  if (!fd) {
    if (fd.error().err == ENOENT || fd.error().err == ENOTDIR) return std::vector<std::string>();
    return fail(fd.error());
  }
  auto d = Dir::adopt(std::move(*fd), std::string(dir));
  if (!d) return fail(d.error());
  return names_of(*d);
}

}  // namespace guard::base
