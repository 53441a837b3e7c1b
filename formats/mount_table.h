// The libmount adapter, the only file pair that includes <libmount.h>: one table type for an
// fstab's bytes and for the mounts this process sees (/proc/self/mountinfo), after snapper's
// MntTable. Callers get plain data and base::Error; no libmount type leaves this pair.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

struct libmnt_table;

namespace guard::formats {

// One fstab line or one mount. e.g. {source="UUID=1b2c…", target="/boot", fstype="ext4",
// options="defaults,nofail", nofail=true} or, from mountinfo, {source="/dev/vda2", target="/",
// fstype="btrfs", fs_root="/@", options="rw,relatime,subvolid=256,subvol=/@"}.
struct MountEntry {
  std::string source;   // as written, tags kept: "UUID=…", "/dev/sda1", "tmpfs", "srv:/export"
  std::string target;   // "/boot"; "none" or "swap" for swap
  std::string fstype;   // "ext4", "swap", "auto"…; several allowed in fstab: "ext4,ext3"
  std::string fs_root;  // mountinfo only: the directory of the filesystem it shows, e.g. "/@"
  std::string options;  // all options, VFS and filesystem ones joined: "defaults,nofail"
  bool noauto = false;
  bool nofail = false;
  bool swap = false;  // a swap area (fstype "swap")
};

// A libmount table: parsed fstab bytes or this process's mount table. Move-only.
// e.g. MountTable::mountinfo()->find_mountpoint("/mnt/top/@/etc") -> the mount at "/mnt/top".
class MountTable {
 public:
  // Parses fstab bytes (mnt_table_parse_stream over fmemopen). A line libmount cannot parse is
  // skipped and its 1-based number kept in bad_lines(), as mount(8) skips it; fails only when
  // libmount cannot run. e.g. MountTable::parse_fstab(root.read_file("/etc/fstab")).
  [[nodiscard]] static base::Result<MountTable> parse_fstab(std::string_view bytes);
  // The mounts of this process's namespace, from /proc/self/mountinfo.
  [[nodiscard]] static base::Result<MountTable> mountinfo();

  MountTable(MountTable&&) noexcept;
  MountTable& operator=(MountTable&&) noexcept;
  ~MountTable();

  // Every entry in table order (file order for an fstab, mount order for mountinfo).
  [[nodiscard]] const std::vector<MountEntry>& entries() const { return entries_; }
  // 1-based numbers of the fstab lines libmount could not parse, e.g. {4}.
  [[nodiscard]] const std::vector<std::size_t>& bad_lines() const { return bad_lines_; }
  // The entry whose mount point is exactly `target` (the last one: it hides those before), or
  // nullopt. e.g. find_target("/boot").
  [[nodiscard]] std::optional<MountEntry> find_target(const std::string& target) const;
  // The mount containing host path `path`: the deepest mount point above it, or nullopt.
  // e.g. find_mountpoint("/mnt/top/@/etc") -> the mount at "/mnt/top".
  [[nodiscard]] std::optional<MountEntry> find_mountpoint(const std::string& path) const;

 private:
  struct TableDeleter {
    void operator()(libmnt_table* table) const;  // mnt_unref_table
  };
  using TablePtr = std::unique_ptr<libmnt_table, TableDeleter>;
  MountTable(TablePtr table, std::vector<MountEntry> entries, std::vector<std::size_t> bad_lines);

  TablePtr table_;
  std::vector<MountEntry> entries_;  // read once: the table does not change after parsing
  std::vector<std::size_t> bad_lines_;
};

// The value of option `name` in a comma-separated option string (mnt_optstr_get_option).
// e.g. ("rw,subvol=@,compress=zstd", "subvol") -> "@"; ("rw,noatime", "noatime") -> "";
// ("rw", "subvol") -> nullopt.
[[nodiscard]] std::optional<std::string> get_option(const std::string& options, const std::string& name);

}  // namespace guard::formats
