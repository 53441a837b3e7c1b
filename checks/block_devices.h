// This machine's block devices, found with libblkid (this file pair is the only user of
// blkid.h in checks/).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace guard::checks {

// The device node an fstab source names on this machine, or nullopt when none does.
// Tags ("UUID=…", "LABEL=…", "PARTUUID=…", "PARTLABEL=…") are looked up with
// blkid_evaluate_tag (udev links first, then a probe); a path ("/dev/sda1",
// "/dev/disk/by-id/…", "/dev/mapper/vg-root") must be a block device on the host.
// e.g. resolve_device("UUID=1b2c…") -> "/dev/nvme0n1p2".
[[nodiscard]] std::optional<std::string> resolve_device(std::string_view spec);

// True when `spec` is a source resolve_device can judge: a tag or a /dev/ path.
[[nodiscard]] bool is_device_spec(std::string_view spec);

}  // namespace guard::checks
