#include "formats/boot_layout.h"

#include "base/input_limits.h"
#include "formats/mount_table.h"

namespace guard::formats {
namespace {

constexpr const char* kEspDirs[] = {"/boot/efi", "/efi"};

}  // namespace

base::Result<BootLayout> read_boot_layout(const base::Root& root) {
  BootLayout layout;
  auto bytes = root.read_file("/etc/fstab", base::limits::kBootConfigBytes);
  if (bytes) {
    auto fstab = parse_fstab(*bytes);
    if (!fstab) return base::fail(fstab.error());
    layout.fstab = std::move(*fstab);
    layout.have_fstab = true;
  } else if (bytes.error().err != ENOENT && bytes.error().err != ENOTDIR) {
    return base::fail(bytes.error());
  }
  for (const auto& e : layout.fstab.entries) {
    if (e.swap) continue;
    layout.mounts_by_source[e.source] = base::normalize_path(e.target);
    if (base::normalize_path(e.target) == "/boot") layout.boot_in_fstab = true;
  }

  // A root whose mounts cannot be listed (no /proc) has none that we know of.
  if (auto mounts = MountTable::mountinfo()) {
    if (auto boot = mounts->find_target(root.host_path("/boot"))) {
      layout.boot_mounted = true;
      layout.boot_fstype = boot->fstype;
    }
    for (const char* esp : kEspDirs) {
      if (mounts->find_target(root.host_path(esp))) {
        layout.esp_mount = esp;
        break;
      }
    }
  }

  for (const char* esp : kEspDirs) {
    auto efi = root.exists(std::string(esp) + "/EFI");
    auto loader = root.exists(std::string(esp) + "/loader");
    if ((efi && *efi) || (loader && *loader)) {
      layout.esp = esp;
      break;
    }
  }
  return layout;
}

}  // namespace guard::formats
