// Root: a directory treated as the "/" of a system, and every path looked up inside it.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"

namespace guard::base {

enum class Follow { yes, no };

// One entry met by Root::walk. `path` is root-relative and absolute, e.g. "/usr/bin/ls";
// `dir_fd` is the open directory holding it, for *at() calls on `name`.
struct WalkEntry {
  std::string_view path;
  std::string_view name;
  int dir_fd = -1;
  unsigned char type = 0;  // DT_REG, DT_DIR, DT_LNK, ... (never DT_UNKNOWN: walk fills it in)
  int error = 0;           // non-zero when a directory could not be opened or read (errno)
};

enum class WalkAction { next, skip_subtree, stop };
using WalkVisitor = std::function<WalkAction(const WalkEntry&)>;

struct WalkOptions {
  bool same_filesystem = true;  // like find -xdev: do not descend into other mounts
};

// An O_PATH descriptor on a root directory. Every lookup goes through
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so an absolute symlink inside a mounted
// snapshot resolves inside the snapshot, ".." stops at the root, and nothing reaches the host.
// e.g. Root::open("/run/upgrade-guard/top/@") and then root.read_file("/etc/fstab").
class Root {
 public:
  // Opens the host directory `dir` as a root. e.g. "/" (the live system) or "/mnt/chroot".
  [[nodiscard]] static Result<Root> open(const std::string& dir);

  Root(Root&&) noexcept = default;
  Root& operator=(Root&&) noexcept = default;

  // The host path the root was opened from, for messages and for chroot'ed commands.
  [[nodiscard]] const std::string& path() const { return path_; }
  // True when this root is the host's own "/" (the live system).
  [[nodiscard]] bool is_host_root() const { return host_root_; }
  [[nodiscard]] int fd() const { return fd_.get(); }

  // Opens `path` inside the root (absolute or relative, both from the root). With
  // Follow::no the last component is not followed (O_NOFOLLOW; with O_PATH it opens the link).
  [[nodiscard]] Result<UniqueFd> open(std::string_view path, int flags, mode_t mode = 0,
                                      Follow follow = Follow::yes) const;
  [[nodiscard]] Result<struct stat> stat(std::string_view path, Follow follow = Follow::yes) const;
  // False for ENOENT/ENOTDIR; an error for anything else (ELOOP, EACCES, EXDEV...).
  [[nodiscard]] Result<bool> exists(std::string_view path, Follow follow = Follow::yes) const;
  // The target text of the symlink at `path` (its parents resolved inside the root).
  [[nodiscard]] Result<std::string> readlink(std::string_view path) const;
  // The whole regular file, opened without blocking; refuses a FIFO, a device or a socket in
  // its place (never a read that hangs or runs on) and files larger than max_bytes.
  [[nodiscard]] Result<std::string> read_file(std::string_view path,
                                              std::uint64_t max_bytes = 256ULL << 20) const;
  // The canonical root-relative path after following every link, e.g. "/bin/sh" -> "/usr/bin/dash".
  [[nodiscard]] Result<std::string> realpath(std::string_view path) const;
  // Walks the tree under `dir` (resolved inside the root; links below it are not followed),
  // calling `visit` for every entry in directory order, parents before children.
  [[nodiscard]] Result<void> walk(std::string_view dir, const WalkVisitor& visit,
                                  WalkOptions options = {}) const;
  // The path as seen from the host, for messages and commands: "/mnt/chroot" + "/etc/fstab".
  [[nodiscard]] std::string host_path(std::string_view path) const;

 private:
  Root(UniqueFd fd, std::string path, std::string real_path, bool host_root)
      : fd_(std::move(fd)), path_(std::move(path)), real_path_(std::move(real_path)), host_root_(host_root) {}

  UniqueFd fd_;
  std::string path_;       // as given, e.g. "/mnt/chroot/"
  std::string real_path_;  // the kernel's name for it, e.g. "/mnt/chroot"
  bool host_root_ = false;
};

// Joins a root-relative directory and a name: ("/usr/bin", "ls") -> "/usr/bin/ls", ("/", "etc") -> "/etc".
[[nodiscard]] std::string join_path(std::string_view dir, std::string_view name);
// Lexically normalizes an absolute path: "//usr/./lib/../bin/" -> "/usr/bin"; ".." never climbs above "/".
[[nodiscard]] std::string normalize_path(std::string_view path);
// "/usr/lib/x86_64-linux-gnu/libc.so.6" -> "/usr/lib/x86_64-linux-gnu"; "/etc" -> "/".
[[nodiscard]] std::string_view dirname(std::string_view path);
// "/usr/lib/libc.so.6" -> "libc.so.6".
[[nodiscard]] std::string_view basename(std::string_view path);

}  // namespace guard::base
