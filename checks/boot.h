// The `boot` check: will this root boot? Kernels, initrds, modules, boot loader entries, space.
#pragma once

#include "checks/check.h"

namespace guard::checks {

// For every /boot/vmlinuz-VER (and every UKI in <ESP>/EFI/Linux/*.efi): the initrd exists, is
// not empty and has no leftover `.new`/`.dpkg-*` beside it; /lib/modules/VER/modules.dep exists;
// a bzImage's own version string is VER. Debian's /vmlinuz and /initrd.img links (and .old, in
// / or /boot) resolve. grub.cfg entries load files that exist on the filesystem GRUB reads
// (a separate /boot means paths without the /boot prefix); grubenv's saved_entry/next_entry
// name an entry; Boot Loader Specification entries (/boot/loader/entries, <ESP>/loader/entries)
// name files that exist. /boot has room for one more kernel + initrd of the newest one's size
// (warn), and at least for rebuilding the newest initrd (block below that: update-initramfs
// writes initrd.img-VER.new beside the old one, so the next kernel or initramfs-tools upgrade
// would fail half-way); the ESP has room for another copy of its largest UKI (warn only); free
// inodes: none blocks, fewer than 8 warn. grubenv/default-entry problems only warn (GRUB falls
// back to its first entry). Leftover initrd .new files warn; dangling /vmlinuz and /initrd.img
// block, their .old links only warn. On the live system with kernels in /boot, the running
// kernel's /lib/modules dir missing is a warning. A root with no kernel, no boot loader config
// and no /vmlinuz links is skipped (a container, or a VM booted from outside), and so is one
// whose separate /boot (per its fstab) is not mounted inside it (a snapshot). GRUB/BLS paths on
// btrfs may carry the subvolume prefix (/@/boot/vmlinuz-…).
class BootCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "boot"; }
  [[nodiscard]] std::string_view summary() const override {
    return "kernels, initrds, modules, boot loader entries and /boot space";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
