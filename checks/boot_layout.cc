#include "checks/boot_layout.h"

namespace guard::checks {

base::Result<BootLayout> read_boot_layout(const base::Root& root) {
  BootLayout layout;
  auto bytes = root.read_file("/etc/fstab", 16ULL << 20);
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
  auto root_st = root.stat("/");
  auto boot_st = root.stat("/boot");
  layout.boot_mounted = root_st && boot_st && root_st->st_dev != boot_st->st_dev;
  layout.boot_separate = layout.boot_in_fstab || layout.boot_mounted;
  for (const char* esp : {"/boot/efi", "/efi"}) {
    auto efi = root.exists(std::string(esp) + "/EFI");
    auto loader = root.exists(std::string(esp) + "/loader");
    if ((efi && *efi) || (loader && *loader)) {
      layout.esp = esp;
      break;
    }
  }
  return layout;
}

}  // namespace guard::checks
