// Reading an initramfs as the kernel unpacks it (init/initramfs.c): a sequence of segments,
// each an uncompressed cpio "newc" archive (Debian's early microcode cpio) or a compressed
// stream (gzip, zstd, xz, lzma, lz4 legacy) of cpio archives, with zero padding between them.
// Streamed through bounded buffers: the image is never held in memory, the output and the
// entry count are capped. Bytes in, plain data out, so it can be fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace guard::checks {

// Reads up to `n` bytes into `buf`; returns the count, 0 at the end of the data.
using ByteSource = std::function<base::Result<std::size_t>(char* buf, std::size_t n)>;

// A source over the file descriptor `fd` (read(2) from its current offset; EINTR retried).
[[nodiscard]] ByteSource fd_source(int fd);
// A source over bytes in memory (for tests and fuzzing); `bytes` must outlive it.
[[nodiscard]] ByteSource bytes_source(std::string_view bytes);

struct InitramfsLimits {
  std::uint64_t max_output = std::uint64_t{2} << 30;  // decompressed bytes over all segments
  std::uint64_t max_entries = std::uint64_t{1} << 20;
  std::size_t max_name = 4096;  // PATH_MAX, as the kernel
};

// One archive member. e.g. {"usr/lib/modules/6.1.0-13-amd64/kernel/fs/btrfs/btrfs.ko", 0100644, 1843864, 1}.
struct InitramfsEntry {
  std::string_view name;  // without a leading "./" or "/"; "init", "kernel/x86/microcode/GenuineIntel.bin"
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
  std::size_t segment = 0;  // index into InitramfsScan::segments
};
using InitramfsVisitor = std::function<void(const InitramfsEntry&)>;

struct InitramfsSegment {
  std::string format;  // "cpio" (uncompressed), "gzip", "zstd", "xz", "lzma", "lz4"
  std::uint64_t offset = 0;  // in the image
  std::uint64_t input_bytes = 0;
  std::uint64_t output_bytes = 0;
  std::uint64_t entries = 0;  // cpio members, trailers left out
};

struct InitramfsProblem {
  enum class Kind {
    truncated,    // the data ends inside a compressed stream or a cpio member
    corrupt,      // the decompressor or the cpio parser rejects the data
    unsupported,  // a compression the kernel reads and this code does not (bzip2, lzo)
    trailing,     // after complete segments, data that is neither cpio nor compressed
    too_large,    // a limit of InitramfsLimits was reached
    read_error,
  };
  Kind kind = Kind::corrupt;
  std::uint64_t offset = 0;  // in the image, where the problem was found
  std::string message;       // e.g. "the zstd data starting at offset 4096 ends early"
};

struct InitramfsScan {
  std::vector<InitramfsSegment> segments;
  std::uint64_t input_bytes = 0;
  std::uint64_t output_bytes = 0;  // cpio bytes parsed, decompressed or not
  std::uint64_t entries = 0;
  std::optional<InitramfsProblem> problem;  // the first one; the scan stops there
};

// Reads the whole image from `in`, calling `visit` for every member (trailers left out).
// e.g. Debian's bookworm initrd: segments {"cpio" at 0 (microcode), "zstd" at 12800}.
[[nodiscard]] InitramfsScan scan_initramfs(const ByteSource& in, const InitramfsVisitor& visit,
                                           const InitramfsLimits& limits = {});

}  // namespace guard::checks
