#include "base/root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "base/dir.h"
#include "base/regular_file.h"

namespace guard::base {
namespace {

int sys_openat2(int dirfd, const char* path, int flags, mode_t mode, std::uint64_t resolve) {
  struct open_how how {};
  how.flags = static_cast<std::uint64_t>(flags);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = resolve;
  long r;
  do {
    r = ::syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
  } while (r < 0 && (errno == EAGAIN || errno == EINTR));
  return static_cast<int>(r);
}

// The lookup path openat2 is given: relative to the root fd, never empty.
std::string relative(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return path.empty() ? std::string(".") : std::string(path);
}

Result<std::string> fd_path(int fd, std::string_view what_path) {
  char link[64];
  (void)std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);  // at most 25 bytes: never truncated
  std::string buf(4096, '\0');
  ssize_t n = ::readlink(link, buf.data(), buf.size());
  if (n < 0) return fail_errno("readlink /proc/self/fd", std::string(what_path));
  buf.resize(static_cast<size_t>(n));
  return buf;
}

unsigned char mode_to_dt(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return DT_REG;
    case S_IFDIR: return DT_DIR;
    case S_IFLNK: return DT_LNK;
    case S_IFCHR: return DT_CHR;
    case S_IFBLK: return DT_BLK;
    case S_IFIFO: return DT_FIFO;
    case S_IFSOCK: return DT_SOCK;
    default: return DT_UNKNOWN;
  }
}

// "is larger than 16 MiB, the most read of such a file" (the caps are in base/input_limits.h).
std::string too_large(std::uint64_t max_bytes) {
  std::string size = max_bytes % (1U << 20) == 0 ? fmt::format("{} MiB", max_bytes >> 20)
                     : max_bytes % 1024 == 0    ? fmt::format("{} KiB", max_bytes >> 10)
                                                : fmt::format("{} bytes", max_bytes);
  return fmt::format("is larger than {}, the most read of such a file", size);
}

}  // namespace

Result<Root> Root::open(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail_errno("open", dir, errno, "cannot open the root directory");
  // The kernel's name for the directory; without /proc (a bare chroot) the name as given.
  auto real = fd_path(fd.get(), dir);
  if (!real) real = normalize_path(dir);
  struct stat root_st {}, self_st {};
  bool host_root = ::stat("/", &self_st) == 0 && ::fstat(fd.get(), &root_st) == 0 &&
                   root_st.st_dev == self_st.st_dev && root_st.st_ino == self_st.st_ino;
  return Root(std::move(fd), dir, *real, host_root);
}

Result<UniqueFd> Root::open(std::string_view path, int flags, mode_t mode, Follow follow) const {
  std::string rel = relative(path);
  if (follow == Follow::no) flags |= O_NOFOLLOW;
  int fd = sys_openat2(fd_.get(), rel.c_str(), flags | O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  if (fd < 0) return fail_errno("openat2", std::string(path));
  return UniqueFd(fd);
}

Result<struct stat> Root::stat(std::string_view path, Follow follow) const {
  auto fd = open(path, O_PATH, 0, follow);
  if (!fd) return fail(fd.error());
  struct stat st {};
  if (::fstatat(fd->get(), "", &st, AT_EMPTY_PATH) != 0) return fail_errno("fstatat", std::string(path));
  return st;
}

Result<bool> Root::exists(std::string_view path, Follow follow) const {
  auto fd = open(path, O_PATH, 0, follow);
  if (fd) return true;
  if (fd.error().err == ENOENT || fd.error().err == ENOTDIR) return false;
  return fail(fd.error());
}

Result<std::string> Root::readlink(std::string_view path) const {
  auto fd = open(path, O_PATH, 0, Follow::no);
  if (!fd) return fail(fd.error());
  std::string buf(256, '\0');
  for (;;) {
    ssize_t n = ::readlinkat(fd->get(), "", buf.data(), buf.size());
    if (n < 0) return fail_errno("readlinkat", std::string(path));
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    buf.resize(buf.size() * 2);
  }
}

Result<UniqueFd> open_regular(const Root& root, std::string_view path, Follow follow) {
  // O_NONBLOCK: a FIFO planted where a file should be must not hang the open (nor a read);
  // O_NOCTTY: a terminal device must not become our controlling terminal.
  auto fd = root.open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, follow);
  if (!fd) return fail(fd.error());
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail_errno("fstat", std::string(path));
  if (S_ISDIR(st.st_mode)) return fail_errno("read", std::string(path), EISDIR);
  if (!S_ISREG(st.st_mode))
    return fail("read", std::string(path), fmt::format("is {}, not a regular file", file_kind(st.st_mode)));
  return fd;
}

Result<std::string> Root::read_file(std::string_view path, std::uint64_t max_bytes) const {
  auto fd = open_regular(*this, path);
  if (!fd) return fail(fd.error());
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return fail_errno("fstat", std::string(path));
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) return fail("read", std::string(path), too_large(max_bytes));
  std::string data;
  data.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", std::string(path));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > max_bytes) return fail("read", std::string(path), too_large(max_bytes));
  }
  return data;
}

Result<std::string> Root::realpath(std::string_view path) const {
  auto fd = open(path, O_PATH);
  if (!fd) return fail(fd.error());
  auto full = fd_path(fd->get(), path);
  if (!full) return fail(full.error());
  if (real_path_ == "/") return *full;
  if (full->compare(0, real_path_.size(), real_path_) == 0 &&
      (full->size() == real_path_.size() || (*full)[real_path_.size()] == '/')) {
    std::string rel = full->substr(real_path_.size());
    return rel.empty() ? std::string("/") : rel;
  }
  return fail("realpath", std::string(path), "resolved outside the root's mount (" + *full + ")");
}

Result<void> Root::walk(std::string_view dir, const WalkVisitor& visit, WalkOptions options) const {
  auto top = open(dir, O_RDONLY | O_DIRECTORY);
  if (!top) return fail(top.error());
  struct stat top_st {};
  if (::fstat(top->get(), &top_st) != 0) return fail_errno("fstat", std::string(dir));

  struct Frame {
    Dir dir;
    std::string path;
  };
  std::vector<Frame> stack;
  auto push = [&stack](UniqueFd fd, std::string path) -> int {
    auto d = Dir::adopt(std::move(fd), path);
    if (!d) return d.error().err;
    stack.push_back(Frame{std::move(*d), std::move(path)});
    return 0;
  };
  if (int e = push(std::move(*top), normalize_path(dir)); e != 0) return fail_errno("fdopendir", std::string(dir), e);

  while (!stack.empty()) {
    Frame& frame = stack.back();
    auto next = frame.dir.next();
    if (!next || !*next) {
      if (!next) {
        WalkEntry err_entry{frame.path, basename(frame.path), -1, DT_DIR, next.error().err};
        if (visit(err_entry) == WalkAction::stop) return {};
      }
      stack.pop_back();
      continue;
    }
    std::string_view name = (*next)->name;
    int dfd = frame.dir.fd();
    unsigned char type = (*next)->type;
    if (type == DT_UNKNOWN) {
      struct stat st {};
      if (::fstatat(dfd, name.data(), &st, AT_SYMLINK_NOFOLLOW) == 0) type = mode_to_dt(st.st_mode);
    }
    std::string child = join_path(frame.path, name);
    WalkEntry entry{child, basename(child), dfd, type, 0};
    WalkAction action = visit(entry);
    if (action == WalkAction::stop) return {};
    if (type != DT_DIR || action == WalkAction::skip_subtree) continue;

    UniqueFd sub(::openat(dfd, name.data(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    int e = sub ? 0 : errno;
    if (sub && options.same_filesystem) {
      struct stat st {};
      if (::fstat(sub.get(), &st) != 0) {
        e = errno;
      } else if (st.st_dev != top_st.st_dev) {
        continue;
      }
    }
    if (e == 0) e = push(std::move(sub), child);  // may reallocate: `frame` is not used after this
    if (e != 0) {
      WalkEntry err_entry{child, basename(child), dfd, DT_DIR, e};
      if (visit(err_entry) == WalkAction::stop) return {};
    }
  }
  return {};
}

std::string Root::host_path(std::string_view path) const {
  std::string p = normalize_path(path);
  if (real_path_ == "/") return p;
  return p == "/" ? real_path_ : real_path_ + p;
}

std::string_view file_kind(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFLNK: return "a symbolic link";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    default: return "of an unknown file type";
  }
}

std::string join_path(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (out.empty() || out.back() != '/') out += '/';
  while (!name.empty() && name.front() == '/') name.remove_prefix(1);
  out += name;
  return out;
}

std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (auto p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? std::string("/") : out;
}

std::string_view dirname(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string_view basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace guard::base
