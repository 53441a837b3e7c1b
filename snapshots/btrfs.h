// The libbtrfsutil adapter: the only file that includes <btrfsutil.h>. Every call that fails
// becomes a base::Error naming the libbtrfsutil function and its message (btrfs_util_strerror).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace guard::snapshots::btrfs {

// A subvolume below another one. e.g. {path="@/var/lib/docker", id=260}; `path` is relative
// to the subvolume the listing started from.
struct Subvolume {
  std::string path;
  std::uint64_t id = 0;
};

// The top-level subvolume's id (BTRFS_FS_TREE_OBJECTID).
inline constexpr std::uint64_t kTopLevelId = 5;

// True when `path` is the root directory of a subvolume. e.g. "/run/upgrade-guard/top/@".
[[nodiscard]] base::Result<bool> is_subvolume(const std::string& path);
// The id of the subvolume containing `path`. e.g. "/mnt/top/@/etc" -> 256.
[[nodiscard]] base::Result<std::uint64_t> subvolume_id(const std::string& path);
// The path of subvolume `id` relative to the top level, from any path on the filesystem.
// e.g. ("/mnt/top", 256) -> "@". Needs CAP_SYS_ADMIN.
[[nodiscard]] base::Result<std::string> subvolume_path(const std::string& fs_path, std::uint64_t id);
// Every subvolume below subvolume `top` (0 = the one containing `path`), pre-order, paths
// relative to `top`. e.g. ("/mnt/top/@", 0) -> {{"var/lib/docker", 260}}.
[[nodiscard]] base::Result<std::vector<Subvolume>> list_subvolumes(const std::string& path, std::uint64_t top = 0);
// Snapshots subvolume `source` to the new path `dest` (its parent must exist). Never recursive,
// never with qgroups. e.g. ("/mnt/top/@", "/mnt/top/@upgrade-guard/20261122-193012-pre", true).
[[nodiscard]] base::Result<void> create_snapshot(const std::string& source, const std::string& dest, bool read_only);
// Creates an empty subvolume at `path`. e.g. "/mnt/top/@".
[[nodiscard]] base::Result<void> create_subvolume(const std::string& path);
// Deletes the subvolume at `path` (and the ones below it when `recursive`). Asynchronous in
// the kernel: the space comes back later; no sync is waited for.
[[nodiscard]] base::Result<void> delete_subvolume(const std::string& path, bool recursive = false);
[[nodiscard]] base::Result<bool> read_only(const std::string& path);
[[nodiscard]] base::Result<void> set_read_only(const std::string& path, bool read_only);
// The default subvolume (what a mount without subvol= shows) of the filesystem at `path`.
[[nodiscard]] base::Result<std::uint64_t> default_subvolume(const std::string& path);
[[nodiscard]] base::Result<void> set_default_subvolume(const std::string& path, std::uint64_t id);

}  // namespace guard::snapshots::btrfs
