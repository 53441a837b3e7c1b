// The `mounts` check: would every filesystem in the root's /etc/fstab mount at boot?
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "checks/check.h"

namespace guard::checks {

// Parses /etc/fstab with libmount: a line it cannot parse blocks (with its line number). For
// each entry without noauto/nofail (swap included: a missing swap device also stops the boot):
// a UUID=/LABEL=/PARTUUID=/PARTLABEL=/dev source must resolve to a present device, but only
// when the root belongs to this machine (ctx.live, or its own `/` entry resolves here);
// otherwise the device check is skipped with an info finding saying why. The filesystem type
// must be known to the newest kernel in /boot (CONFIG_…=y in /boot/config-VER, a module under
// /lib/modules/VER/kernel/fs, updates/ or extra/, or one in modules.builtin); without a kernel
// that check is skipped (info). A missing mount point directory only warns: systemd creates
// it. Pseudo filesystems (proc, tmpfs…) are skipped.
class MountsCheck final : public Check {
 public:
  // Resolves an fstab source on this machine to a device node, nullopt when absent.
  // e.g. "UUID=1b2c…" -> "/dev/sda2". The default uses libblkid (resolve_device).
  using DeviceResolver = std::function<std::optional<std::string>(std::string_view spec)>;

  MountsCheck();
  // For tests: a fake machine whose devices `resolver` knows.
  explicit MountsCheck(DeviceResolver resolver) : resolver_(std::move(resolver)) {}

  [[nodiscard]] std::string_view id() const override { return "mounts"; }
  [[nodiscard]] std::string_view summary() const override {
    return "fstab parses, its devices are present and its filesystem types known to the next kernel";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;

 private:
  DeviceResolver resolver_;
};

// The kernel config options and module names that provide filesystem type `fstype`, e.g.
// "vfat" -> ({"VFAT_FS"}, {"vfat"}); an unknown type t -> ({"T_FS"}, {"t"}).
struct FsTypeSupport {
  std::vector<std::string> configs;
  std::vector<std::string> modules;
};
[[nodiscard]] FsTypeSupport fs_type_support(std::string_view fstype);

}  // namespace guard::checks
