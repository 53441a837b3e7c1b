// Where a root's boot files live: a separate /boot, the ESP, and which fstab entry holds which
// filesystem. Read once for the boot check (what GRUB and the boot loader entries see) and for
// the snapshot layout (what must be captured beside a snapshot).
#pragma once

#include <map>
#include <string>

#include "base/error.h"
#include "base/root.h"
#include "formats/fstab.h"

namespace guard::formats {

struct BootLayout {
  // From the root's /etc/fstab (a missing fstab is an empty one):
  bool have_fstab = false;
  Fstab fstab;
  bool boot_in_fstab = false;  // the fstab has a /boot entry
  // fstab sources to mount points: "UUID=1b2c…" -> "/boot", "LABEL=root" -> "/" (swap left out).
  std::map<std::string, std::string> mounts_by_source;
  // From the mounts this process sees now (/proc/self/mountinfo; none when it cannot be read):
  bool boot_mounted = false;  // the root's /boot is a mount point, e.g. the live /boot partition
  std::string boot_fstype;    // that mount's type, e.g. "ext4"
  std::string esp_mount;      // "/boot/efi" or "/efi" when one is a mount point, else ""
  // From the root's files:
  std::string esp;  // "/boot/efi" or "/efi" when it holds an EFI/ or loader/ directory, else ""

  // /boot is its own filesystem when the root boots: an fstab entry, or a mount now.
  [[nodiscard]] bool boot_separate() const { return boot_in_fstab || boot_mounted; }
  // The root-relative directory a boot loader path is relative to on the /boot filesystem:
  // "/boot" when /boot is separate, else "/".
  [[nodiscard]] std::string boot_fs_dir() const { return boot_separate() ? "/boot" : "/"; }
};

// Reads the root's fstab (an unreadable one is an error, a missing one is empty), looks up
// <root>/boot, <root>/boot/efi and <root>/efi among the mounts, and at the ESP candidates' files.
// e.g. read_boot_layout(Root::open("/")) on a Debian installer layout -> boot_in_fstab,
// boot_mounted, boot_fstype "ext4", esp "/boot/efi", esp_mount "/boot/efi".
[[nodiscard]] base::Result<BootLayout> read_boot_layout(const base::Root& root);

}  // namespace guard::formats
