// A small recursive copier that clones file data (ioctl FICLONE, so a copy on btrfs costs no
// space) and falls back to copy_file_range. No shell: every step is an *at() call on
// O_NOFOLLOW descriptors, so a link inside the tree never leads the copy outside it.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace guard::snapshots {

struct CopyStats {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
  std::uint64_t cloned = 0;       // files whose data was cloned (reflinked)
  std::uint64_t placeholders = 0; // directories on another filesystem/subvolume left empty
};

struct TreeCopyOptions {
  // Do not descend into another filesystem or btrfs subvolume: create an empty directory
  // in its place (a nested subvolume is moved, not copied). e.g. /var/lib/docker.
  bool same_device = true;
};

// Copies `src_name` in directory `src_dir_fd` to the new entry `dst_name` in `dst_dir_fd`:
// regular files, directories, symlinks, devices and fifos, with owner, mode, times and
// extended attributes. `dst_name` must not exist. Hard links become separate files.
// e.g. copy_tree(old_root_fd, "var/log", new_root_fd, "var/log.upgrade-guard-tmp").
[[nodiscard]] base::Result<CopyStats> copy_tree(int src_dir_fd, const std::string& src_name, int dst_dir_fd,
                                                const std::string& dst_name, TreeCopyOptions options = {});

// Removes `name` in `dir_fd` and everything below it, without following links and without
// crossing into other filesystems or subvolumes (those make the removal fail with EXDEV).
// For our own partial copies only. e.g. remove_tree(new_root_fd, "var/log.upgrade-guard-tmp").
[[nodiscard]] base::Result<void> remove_tree(int dir_fd, const std::string& name);

// Creates the directories of root-relative `path` below `dir_fd` (like mkdir -p), mode 0755.
// e.g. make_dirs_at(new_root_fd, "var/lib/postgresql").
[[nodiscard]] base::Result<void> make_dirs_at(int dir_fd, const std::string& path);

}  // namespace guard::snapshots
