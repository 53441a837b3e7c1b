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
// name files that exist. /boot and the ESP have room for one more kernel + initrd of the newest
// one's size (warn) and for rebuilding the newest initrd (block below that). On the live
// system, the running kernel's /lib/modules dir missing is a warning. A root with no kernel
// and no boot loader config is skipped (a container or chroot).
class BootCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "boot"; }
  [[nodiscard]] std::string_view summary() const override {
    return "kernels, initrds, modules, boot loader entries and /boot space";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
