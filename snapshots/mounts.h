// The libmount adapter: the only file that includes <libmount.h>. Reads the mount table
// (/proc/self/mountinfo) and parses fstab bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace guard::snapshots::mounts {

// One mount or fstab line. e.g. {source="/dev/vda2", target="/", fstype="btrfs",
// fs_root="/@", options="rw,relatime,subvolid=256,subvol=/@"}.
struct MountEntry {
  std::string source;
  std::string target;
  std::string fstype;
  std::string fs_root;  // mountinfo only: the directory of the filesystem mounted, e.g. "/@"
  std::string options;  // all options: VFS and filesystem ones joined
};

// The mount that contains host path `path` (the deepest mount point above it), from
// /proc/self/mountinfo. e.g. "/mnt/top/@/etc" -> the mount at "/mnt/top".
[[nodiscard]] base::Result<MountEntry> mount_containing(const std::string& path);

// The mount whose mount point is exactly `path`, if any. e.g. "/boot".
[[nodiscard]] base::Result<std::optional<MountEntry>> mount_at(const std::string& path);

// Parses fstab text. Malformed lines are an error naming the line.
[[nodiscard]] base::Result<std::vector<MountEntry>> parse_fstab(std::string_view text);

// The value of option `name` in a comma-separated option string, if present.
// e.g. ("rw,subvol=@,compress=zstd", "subvol") -> "@"; ("rw", "subvol") -> nullopt.
[[nodiscard]] std::optional<std::string> get_option(const std::string& options, const std::string& name);

}  // namespace guard::snapshots::mounts
