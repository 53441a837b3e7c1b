#include "snapshots/tree_copy.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <vector>

#include "base/dir.h"
#include "base/strings.h"
#include "base/unique_fd.h"

namespace guard::snapshots {
namespace {

using base::UniqueFd;

void copy_xattrs(int src, int dst) {
  std::vector<char> names(4096);
  ssize_t n = ::flistxattr(src, names.data(), names.size());
  if (n < 0 && errno == ERANGE) {
    n = ::flistxattr(src, nullptr, 0);
    if (n > 0) {
      names.resize(static_cast<size_t>(n));
      n = ::flistxattr(src, names.data(), names.size());
    }
  }
  if (n <= 0) return;
  std::vector<char> value(65536);
  for (ssize_t off = 0; off < n;) {
    const char* name = names.data() + off;
    off += static_cast<ssize_t>(std::char_traits<char>::length(name)) + 1;
    ssize_t v = ::fgetxattr(src, name, value.data(), value.size());
    if (v >= 0) (void)::fsetxattr(dst, name, value.data(), static_cast<size_t>(v), 0);
  }
}

base::Result<void> copy_data(int src, int dst, const struct stat& st, CopyStats& stats, const std::string& display) {
  if (::ioctl(dst, FICLONE, src) == 0) {
    ++stats.cloned;
    stats.bytes += static_cast<std::uint64_t>(st.st_size);
    return {};
  }
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(src, nullptr, dst, nullptr, static_cast<size_t>(left), 0);
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
      // Plain read/write as the last resort.
      char buf[1 << 16];
      ssize_t r = ::read(src, buf, sizeof(buf));
      if (r < 0) return base::fail_errno("read", display);
      if (r == 0) break;
      for (ssize_t w = 0; w < r;) {
        ssize_t k = ::write(dst, buf + w, static_cast<size_t>(r - w));
        if (k < 0) return base::fail_errno("write", display);
        w += k;
      }
      n = r;
    } else if (n < 0) {
      return base::fail_errno("copy_file_range", display);
    } else if (n == 0) {
      break;
    }
    left -= n;
    stats.bytes += static_cast<std::uint64_t>(n);
  }
  return {};
}

void set_times_owner(int fd, const struct stat& st) {
  (void)::fchown(fd, st.st_uid, st.st_gid);
  (void)::fchmod(fd, st.st_mode & 07777);
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  (void)::futimens(fd, ts);
}

base::Result<void> copy_entry(int src_dir, const std::string& src_name, int dst_dir, const std::string& dst_name,
                              dev_t top_dev, const TreeCopyOptions& options, CopyStats& stats,
                              const std::string& display) {
  struct stat st {};
  if (::fstatat(src_dir, src_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return base::fail_errno("fstatat", display);
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: {
      UniqueFd in(::openat(src_dir, src_name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!in) return base::fail_errno("openat", display);
      UniqueFd out(::openat(dst_dir, dst_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out) return base::fail_errno("openat O_CREAT", display);
      if (auto r = copy_data(in.get(), out.get(), st, stats, display); !r) return r;
      copy_xattrs(in.get(), out.get());
      set_times_owner(out.get(), st);
      ++stats.files;
      return {};
    }
    case S_IFDIR: {
      if (::mkdirat(dst_dir, dst_name.c_str(), 0700) != 0) return base::fail_errno("mkdirat", display);
      UniqueFd out(::openat(dst_dir, dst_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!out) return base::fail_errno("openat", display);
      if (options.same_device && st.st_dev != top_dev) {
        ++stats.placeholders;
        set_times_owner(out.get(), st);
        return {};
      }
      UniqueFd in(::openat(src_dir, src_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!in) return base::fail_errno("openat", display);
      auto names = base::list_dir(in.get(), display);
      if (!names) return base::fail(names.error());
      for (const auto& n : *names) {
        if (auto r = copy_entry(in.get(), n, out.get(), n, top_dev, options, stats, display + "/" + n); !r) return r;
      }
      copy_xattrs(in.get(), out.get());
      set_times_owner(out.get(), st);
      ++stats.files;
      return {};
    }
    case S_IFLNK: {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(src_dir, src_name.c_str(), target.data(), target.size());
      if (n < 0) return base::fail_errno("readlinkat", display);
      target.resize(static_cast<size_t>(n));
      if (::symlinkat(target.c_str(), dst_dir, dst_name.c_str()) != 0) return base::fail_errno("symlinkat", display);
      (void)::fchownat(dst_dir, dst_name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
      struct timespec ts[2] = {st.st_atim, st.st_mtim};
      (void)::utimensat(dst_dir, dst_name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
      ++stats.files;
      return {};
    }
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO: {
      if (::mknodat(dst_dir, dst_name.c_str(), st.st_mode, st.st_rdev) != 0)
        return base::fail_errno("mknodat", display);
      (void)::fchownat(dst_dir, dst_name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
      ++stats.files;
      return {};
    }
    default:
      return {};  // sockets belong to running programs; nothing to carry
  }
}

}  // namespace

base::Result<CopyStats> copy_tree(int src_dir_fd, const std::string& src_name, int dst_dir_fd,
                                  const std::string& dst_name, TreeCopyOptions options) {
  struct stat st {};
  if (::fstatat(src_dir_fd, src_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return base::fail_errno("fstatat", src_name);
  CopyStats stats;
  if (auto r = copy_entry(src_dir_fd, src_name, dst_dir_fd, dst_name, st.st_dev, options, stats, src_name); !r)
    return base::fail(r.error());
  return stats;
}

base::Result<void> remove_tree(int dir_fd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return base::fail_errno("fstatat", name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0) return base::fail_errno("unlinkat", name);
    return {};
  }
  UniqueFd d(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d) return base::fail_errno("openat", name);
  struct stat dst {};
  if (::fstat(d.get(), &dst) != 0) return base::fail_errno("fstat", name);
  struct stat parent {};
  if (::fstat(dir_fd, &parent) == 0 && parent.st_dev != dst.st_dev)
    return base::fail_errno("remove_tree", name, EXDEV, "refusing to remove another filesystem or subvolume");
  auto names = base::list_dir(d.get(), name);
  if (!names) return base::fail(names.error());
  for (const auto& n : *names) {
    if (auto r = remove_tree(d.get(), n); !r) return r;
  }
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0) return base::fail_errno("unlinkat", name);
  return {};
}

base::Result<void> make_dirs_at(int dir_fd, const std::string& path) {
  UniqueFd cur(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
  if (!cur) return base::fail_errno("fcntl", path);
  for (auto part : base::split(path, '/')) {
    if (part.empty() || part == ".") continue;
    std::string p(part);
    if (::mkdirat(cur.get(), p.c_str(), 0755) != 0 && errno != EEXIST) return base::fail_errno("mkdirat", path);
    UniqueFd next(::openat(cur.get(), p.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return base::fail_errno("openat", path);
    cur = std::move(next);
  }
  return {};
}

}  // namespace guard::snapshots
