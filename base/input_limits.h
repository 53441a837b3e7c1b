// The size caps on what is read from a checked root, one per kind of file, in one place so that
// the README's table and the code agree. Each is far above what a real Debian system has (the
// size measured on the cached Debian 12/13 roots, or the largest known, is in the comment) and
// low enough that a damaged or hostile file is refused with an Error naming it and the cap
// instead of being read into memory. Root::read_file refuses anything that is not a regular file
// before reading a byte, whatever its cap.
#pragma once

#include <cstdint>

namespace guard::base::limits {

inline constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

// /var/lib/dpkg/status: 1-3 MB on the cached roots, ~15 MB on a desktop with 5,000 packages.
// Parsed into records about twice its size, so the cap also bounds that.
inline constexpr std::uint64_t kDpkgStatusBytes = 128 * kMiB;
// /var/lib/dpkg/info/PKG.list: 400 KB for linux-image (5,000 paths), a few MB for the largest
// Debian packages (texlive, ~40,000 paths). A 2-million-line .list (50 MB) is refused: its
// paths were held three times over (the list, its directories, the critical check's index).
inline constexpr std::uint64_t kDpkgListBytes = 16 * kMiB;
// /var/lib/dpkg/info/PKG.md5sums: about 1.4 times the package's .list.
inline constexpr std::uint64_t kDpkgMd5sumsBytes = 32 * kMiB;
// /var/lib/dpkg/diversions (a few KB) and /etc/dpkg/dpkg.cfg{,.d/*} (under 1 KB).
inline constexpr std::uint64_t kDpkgConfigBytes = 16 * kMiB;
// /etc/ld.so.cache: 30-300 KB.
inline constexpr std::uint64_t kLdSoCacheBytes = 64 * kMiB;
// Small text configuration: ld.so.conf and its includes, /etc/ld.so.preload, nsswitch.conf,
// PAM stacks, /etc/shells, login.defs, unit files and their drop-ins, BLS entries (all under
// 20 KB on the cached roots).
inline constexpr std::uint64_t kConfigFileBytes = 1 * kMiB;
// /etc/fstab (under 2 KB) and /boot/grub/grub.cfg (10-30 KB, more with many kernels or OSes).
inline constexpr std::uint64_t kBootConfigBytes = 16 * kMiB;

}  // namespace guard::base::limits
