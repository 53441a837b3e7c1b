// Dir: the one owner of a directory stream (DIR*), and the listings every layer reads with it.
#pragma once

#include <dirent.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "base/unique_fd.h"

namespace guard::base {

// One directory entry. `name` points into the stream's buffer: valid until the next Dir::next(),
// and NUL-terminated, so name.data() serves *at() calls. e.g. {"vmlinuz-6.1.0-13-amd64", DT_REG}.
struct DirEntry {
  std::string_view name;
  unsigned char type = DT_UNKNOWN;  // d_type as readdir gives it: DT_UNKNOWN where the filesystem does not say
};

// An open directory read entry by entry, "." and ".." left out. Move-only; closedir on destruction.
// e.g. auto dir = Dir::adopt(std::move(fd), "/var/lib/dpkg/updates"); while (auto e = dir->next(); e && *e) ...
class Dir {
 public:
  // Takes `fd`, a directory opened O_RDONLY | O_DIRECTORY; `display` names it in errors, e.g.
  // "/boot". On failure the descriptor is closed.
  [[nodiscard]] static Result<Dir> adopt(UniqueFd fd, std::string display);

  // The next entry in directory order, nullopt at the end; readdir's errno as an error.
  [[nodiscard]] Result<std::optional<DirEntry>> next();
  // The directory's descriptor, for *at() calls on entry names (owned by this Dir).
  [[nodiscard]] int fd() const;
  // The name given to adopt(), e.g. "/boot".
  [[nodiscard]] const std::string& display() const { return display_; }

 private:
  struct Closer {
    void operator()(DIR* d) const;
  };
  Dir(DIR* dir, std::string display) : dir_(dir), display_(std::move(display)) {}

  std::unique_ptr<DIR, Closer> dir_;
  std::string display_;
};

// The names in the directory open at `dir_fd` (O_PATH is enough), sorted. Read through a fresh
// open of "." rather than a dup: btrfs readdir on an open file does not show entries added after
// it was opened, and `dir_fd` stays where it was. e.g. list_dir(store_fd, "/mnt/top/@upgrade-guard").
[[nodiscard]] Result<std::vector<std::string>> list_dir(int dir_fd, std::string_view display);

// The names in the root's directory `dir`, sorted; empty when it does not exist (ENOENT,
// ENOTDIR). e.g. list_dir(root, "/etc/dpkg/dpkg.cfg.d") -> {"excludes", "unsafe-io"}.
[[nodiscard]] Result<std::vector<std::string>> list_dir(const Root& root, std::string_view dir);

}  // namespace guard::base
