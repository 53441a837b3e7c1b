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
//
// Content: each initrd is read as the kernel unpacks it (checks/initramfs.h: an uncompressed
// early cpio, then gzip/zstd/xz/lzma/lz4-legacy streams of cpio, streamed with bounded
// buffers); truncated or corrupt data, a missing /init, or a missing module that the fstab
// root filesystem needs (the closure of its module in modules.dep, unless modules.builtin has
// it) block; bzip2/lzo images are only noted, trailing junk warns. Module vermagic (first
// word) must be the kernel's version: every uncompressed .ko (a few header reads each), and
// of the compressed ones (trixie's .ko.xz: decompressing all 4000 costs ~10 s) those outside
// kernel/ (updates/, extra/, misc/, dkms/) and the root filesystem's closure; a module that
// cannot be read as one blocks too. modules.dep naming a missing file blocks for the root
// closure, warns for others. A bzImage (boot protocol >= 2.04) shorter than
// (setup_sects+1)*512 + syssize*16 is truncated; other architectures' images are not sized.
class BootCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "boot"; }
  [[nodiscard]] std::string_view summary() const override {
    return "kernels, initrds, modules, boot loader entries and /boot space";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
