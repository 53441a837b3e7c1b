// Where a root's boot files live: a separate /boot, the ESP, and which fstab entry holds which
// filesystem. Shared by the boot check's GRUB and BLS parts.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "checks/fstab.h"

namespace guard::checks {

struct BootLayout {
  bool boot_separate = false;  // /boot is its own filesystem (fstab entry, or another st_dev)
  bool boot_in_fstab = false;  // the fstab has a /boot entry
  bool boot_mounted = false;   // the root's /boot is on another device than its /
  std::string esp;             // "/boot/efi" or "/efi" when an ESP is there, else ""
  // fstab sources to mount points: "UUID=1b2c…" -> "/boot", "LABEL=root" -> "/".
  std::map<std::string, std::string> mounts_by_source;
  bool have_fstab = false;
  Fstab fstab;

  // The root-relative directory a boot loader path is relative to on the /boot filesystem:
  // "/boot" when /boot is separate, else "/".
  [[nodiscard]] std::string boot_fs_dir() const { return boot_separate ? "/boot" : "/"; }
};

// Reads the root's fstab (a missing fstab is an empty one) and looks at /boot and the ESP.
[[nodiscard]] base::Result<BootLayout> read_boot_layout(const base::Root& root);

}  // namespace guard::checks
