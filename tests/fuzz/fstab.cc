// /etc/fstab from any bytes, through both readers (formats/fstab.h for the boot layout and
// formats/mount_table.h for the mounts check).
#include "formats/fstab.h"
#include "formats/mount_table.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = guard::fuzz::bytes(data, size);
  if (auto fstab = guard::formats::parse_fstab(text)) {
    (void)fstab->root_uuid();
    (void)fstab->find_target("/boot");
  }
  if (auto table = guard::formats::MountTable::parse_fstab(text)) {
    for (const auto& e : table->entries()) (void)guard::formats::get_option(e.options, "subvol");
    (void)table->find_mountpoint("/boot/efi");
  }
  return 0;
}
