// Layout detection: what a root looks like on disk, so the backends know what a snapshot
// covers and how a rollback must swap roots.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace guard::snapshots {

// One place that names the root subvolume. e.g. {source="fstab", option="subvol", value="@"}.
struct SubvolPin {
  std::string source;  // "fstab", "cmdline" (/proc/cmdline, live only) or "grub.cfg"
  std::string option;  // "subvol" or "subvolid"
  std::string value;   // e.g. "@", "/@", "256"
};

// A subvolume inside the root (not part of a btrfs snapshot of it).
// e.g. {path="/var/lib/docker", id=260}; `path` is root-relative.
struct NestedSubvolume {
  std::string path;
  std::uint64_t id = 0;
};

// How the root is laid out. Plain data; detect_layout fills it in.
struct Layout {
  std::string root_dir;       // the host directory given, e.g. "/" or "/mnt/top/@"
  bool live = false;          // root_dir is the running system's "/"
  std::string fstype;         // of the mount containing root_dir, e.g. "btrfs", "ext4"
  std::string mount_point;    // that mount's target, e.g. "/" or "/mnt/top"
  std::string device;         // that mount's source, e.g. "/dev/vda2"
  std::string mount_fs_root;  // the directory of the filesystem that mount shows: "/" for a
                              // btrfs top-level mount, "/@" for a subvol=@ mount
  // btrfs only:
  bool is_subvolume = false;    // root_dir is a subvolume's top directory
  std::uint64_t subvol_id = 0;  // e.g. 256
  std::string subvol_path;      // relative to the top level, e.g. "@"; "" for the top level (id 5)
  std::uint64_t default_subvol_id = 0;
  std::vector<SubvolPin> pins;          // every place that pins subvol=/subvolid= for "/"
  std::vector<NestedSubvolume> nested;  // subvolumes below the root, pre-order
  bool snapper = false;                 // /.snapshots exists in the root
  // Boot files:
  bool boot_separate = false;  // <root>/boot is another filesystem (a mount point)
  std::string boot_fstype;
  bool esp_separate = false;  // <root>/boot/efi or <root>/efi is a mount point
  std::string esp_path;       // root-relative, e.g. "/boot/efi"

  [[nodiscard]] bool btrfs() const { return fstype == "btrfs"; }
  // True when fstab, the kernel command line or grub.cfg names the root by subvol= path:
  // a rollback must then exchange the directories (the path keeps naming the root).
  [[nodiscard]] bool pinned_by_path() const;
  // True when something names the root by subvolid=: neither an exchange nor set-default
  // changes what boots, so a rollback refuses.
  [[nodiscard]] bool pinned_by_id() const;
};

// The subvolume a rollback restores into, from the pins. e.g. {subvol_path="@rootfs",
// running_from="@upgrade-guard/20260122-101500-pre-run12"} on the GRUB fallback boot.
struct RollbackTarget {
  std::string subvol_path;   // relative to the top level, e.g. "@rootfs"; "" for the top level
  std::string running_from;  // the snapshot-store subvolume the root is, "" when it is the target
};

// The subvolume that fstab and the boot configuration (kernel command line, grub.cfg) pin with
// subvol=, which a rollback must restore into, never the snapshot the system happens to run
// from. Pins into the snapshot store (`@upgrade-guard/...`: the fallback entry's
// rootflags=subvol=@upgrade-guard/<id>) and GRUB variables are not pins of the root. Errors
// (kRefused, naming every pin): pins that disagree, e.g. "fstab: subvol=@rootfs,
// cmdline: subvol=@"; a root in the snapshot store that nothing outside the store pins; a root
// outside the store that is not the pinned subvolume. Unpinned: the root's own subvolume.
[[nodiscard]] base::Result<RollbackTarget> rollback_target(const Layout& layout);
// Snapshots live at the top level as `@upgrade-guard/<id>` (read-only subvolumes) with
// `@upgrade-guard/<id>.json` (metadata, written atomically) and, when /boot is a separate
// filesystem, `@upgrade-guard/<id>.boot/` (a copy) plus `<id>.boot.manifest`.
// `@upgrade-guard` is itself a subvolume, so a root that is the top level never snapshots it.
inline constexpr const char* kStoreName = "@upgrade-guard";

// True when `subvol_path` (relative to the top level) is the snapshot store or inside it.
// e.g. "@upgrade-guard/20260122-101500-pre-run12" -> true, "@rootfs" -> false.
[[nodiscard]] bool in_snapshot_store(std::string_view subvol_path);

struct DetectOptions {
  // Read /proc/cmdline for rootflags= pins; only meaningful for the live root. Defaults to
  // "detect": true when root_dir is the host's "/".
  enum class Cmdline { detect, yes, no } cmdline = Cmdline::detect;
};

// Detects the layout of the root at host directory `root_dir`. e.g. detect_layout("/") or
// detect_layout("/mnt/top/@"). A non-btrfs root is not an error: fstype says what it is.
[[nodiscard]] base::Result<Layout> detect_layout(const std::string& root_dir, DetectOptions options = {});

// Pins found in kernel command-line text: rootflags=subvol=@,... e.g.
// "BOOT_IMAGE=/vmlinuz root=UUID=x ro rootflags=subvol=@" -> {{"cmdline","subvol","@"}}.
[[nodiscard]] std::vector<SubvolPin> parse_cmdline_pins(std::string_view cmdline, const std::string& source);
// Pins found in grub.cfg text: every `linux` line's rootflags=. Duplicates are dropped.
[[nodiscard]] std::vector<SubvolPin> parse_grub_pins(std::string_view grub_cfg);

// What the layout means for snapshots, for `snapshot list`: several lines of text.
[[nodiscard]] std::string render_layout_text(const Layout& layout);
// The same as a JSON object text, e.g. {"fstype":"btrfs","subvol_path":"@",...}.
[[nodiscard]] std::string render_layout_json(const Layout& layout);

}  // namespace guard::snapshots
