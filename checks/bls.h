// Boot Loader Specification type #1 entries (loader/entries/*.conf), taking bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace guard::checks {

// One entry, e.g. /boot/loader/entries/<machine-id>-6.1.0-13-amd64.conf:
//   title Debian GNU/Linux 12 / version 6.1.0-13-amd64 / linux /vmlinuz-6.1.0-13-amd64 /
//   initrd /initrd.img-6.1.0-13-amd64. Paths are relative to the partition holding the entry.
struct BlsEntry {
  std::string title;
  std::string version;
  std::string machine_id;
  std::string sort_key;
  std::string kernel;                // the kernel, e.g. "/vmlinuz-6.1.0-13-amd64"
  std::vector<std::string> initrd;   // every `initrd` line, in order
  std::string efi;                   // an EFI program (a UKI), e.g. "/EFI/Linux/debian.efi"
  std::vector<std::string> options;  // every `options` line
  std::string devicetree;
};

// Parses `key value` lines (whitespace-separated, '#' comments, unknown keys ignored).
[[nodiscard]] BlsEntry parse_bls_entry(std::string_view bytes);

}  // namespace guard::checks
