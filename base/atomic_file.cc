#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include "base/root.h"
#include "base/unique_fd.h"

namespace guard::base {
namespace {

Result<void> write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

Result<void> write_file_atomic_at(int dir_fd, const std::string& name, std::string_view data, mode_t mode,
                                  const std::string& display_path) {
  const std::string& shown = display_path.empty() ? name : display_path;
  std::random_device rd;
  std::string tmp;
  UniqueFd fd;
  for (int attempt = 0; attempt < 16 && !fd; ++attempt) {
    tmp = "." + name + ".tmp" + std::to_string(rd() % 1000000);
    fd.reset(::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd && errno != EEXIST) return fail_errno("open", shown, errno, "cannot create a temporary file beside it");
  }
  if (!fd) return fail_errno("open", shown, EEXIST, "cannot create a temporary file beside it");
  auto discard = [&] { ::unlinkat(dir_fd, tmp.c_str(), 0); };
  if (auto w = write_all(fd.get(), data, shown); !w) return discard(), w;
  if (::fchmod(fd.get(), mode) != 0) return discard(), fail_errno("fchmod", shown);
  if (::fsync(fd.get()) != 0) return discard(), fail_errno("fsync", shown);
  fd.reset();
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) return discard(), fail_errno("rename", shown);
  if (::fsync(dir_fd) != 0) return fail_errno("fsync", std::string(dirname(shown)));
  return {};
}

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string dir(dirname(path));
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return fail_errno("open", dir, errno, "cannot open the directory to write " + path);
  return write_file_atomic_at(dfd.get(), std::string(basename(path)), data, mode, path);
}

}  // namespace guard::base
