// The kernels installed in a root and what their images say about themselves.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"

namespace guard::checks {

// One /boot/vmlinuz-VER. e.g. {"6.1.0-13-amd64", "/boot/vmlinuz-6.1.0-13-amd64"}.
struct InstalledKernel {
  std::string version;
  std::string image;  // root-relative
};

// Every /boot/vmlinuz-VER regular file (following links), oldest first by version order
// (strverscmp); leftovers like vmlinuz-VER.dpkg-tmp are not kernels. Empty when /boot is missing.
[[nodiscard]] base::Result<std::vector<InstalledKernel>> installed_kernels(const base::Root& root);

// The version string a bzImage carries (setup header "HdrS" at 0x202, kernel_version pointer
// at 0x20E, string at pointer + 0x200), up to the first space: "6.1.0-13-amd64". nullopt when
// `head` (the image's first bytes, 64 KiB are enough) is not a bzImage with a version string.
[[nodiscard]] std::optional<std::string> bzimage_version(std::string_view head);

// The size a bzImage's setup header says its file has at least: (setup_sects + 1) * 512 for
// the real-mode part (setup_sects at 0x1F1, 0 meaning 4) plus syssize * 16 for the protected-
// mode kernel (syssize at 0x1F4, 32-bit since boot protocol 2.04). A smaller file is truncated;
// a larger one is fine (an appended signature). nullopt when `head` is not a bzImage of
// protocol 2.04 or later (other architectures, compressed images: not checked).
[[nodiscard]] std::optional<std::uint64_t> bzimage_min_size(std::string_view head);

// The `.uname` section of a unified kernel image (a PE file), e.g. "6.1.0-13-amd64"; nullopt
// when `image` is not PE or has no such section.
[[nodiscard]] std::optional<std::string> uki_uname(std::string_view image);

// Reads at most `max_bytes` from the start of the root's file `path`.
[[nodiscard]] base::Result<std::string> read_head(const base::Root& root, std::string_view path, std::size_t max_bytes);

}  // namespace guard::checks
