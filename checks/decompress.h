// Streaming decompression of the formats Debian's kernels and initramfs-tools write: gzip
// (zlib), zstd (libzstd), xz and lzma-alone (liblzma), lz4's legacy format (liblz4, what
// `lz4 -l` and the kernel's unlz4 use). The only file pair that includes those libraries'
// headers; callers see plain data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace guard::checks {

enum class Compression { gzip, zstd, xz, lzma, lz4_legacy };

// "gzip", "zstd", "xz", "lzma", "lz4".
[[nodiscard]] std::string_view to_string(Compression c);

// The compression whose magic starts `head` (at least 6 bytes for xz), or nullopt. e.g.
// "\x28\xb5\x2f\xfd…" -> zstd. The lzma-alone magic is the kernel's: 5d 00 00.
[[nodiscard]] std::optional<Compression> detect_compression(std::string_view head);

// A format the kernel can unpack that no decoder here reads: "bzip2", "lzo", "lz4 frame"
// (e.g. "BZh9…" -> "bzip2"), or nullopt.
[[nodiscard]] std::optional<std::string_view> detect_unsupported_compression(std::string_view head);

// One compressed stream (a gzip member, a zstd frame, an xz stream, an lzma-alone stream, an
// lz4 legacy stream up to its end), decoded in steps with bounded buffers.
class Decoder {
 public:
  enum class Status { more, end, error };
  struct Step {
    Status status = Status::more;
    std::string error;  // for Status::error: the library's words, e.g. "Data corruption"
  };

  virtual ~Decoder() = default;
  // Consumes input from the front of `in` and writes output at the front of `out`, advancing
  // both. `more`: call again (with more input when `in` is empty, with room when `out` is
  // full); `end`: the stream is complete and `in` starts with the bytes after it; `error`: the
  // data is corrupt. `in_at_eof` says no input follows `in` (lz4's legacy stream ends there).
  [[nodiscard]] virtual Step step(std::string_view& in, char*& out, std::size_t& out_room, bool in_at_eof) = 0;

  // A decoder for `c`; fails only when the library cannot allocate one.
  [[nodiscard]] static base::Result<std::unique_ptr<Decoder>> create(Compression c);
};

// Decompresses all of `data` (a whole .ko.xz, .ko.zst or .ko.gz: one or more concatenated
// streams) into memory, failing with a message when it is corrupt, truncated or would exceed
// `max_output` bytes. e.g. decompress_all(Compression::xz, bytes, 256 << 20).
[[nodiscard]] base::Result<std::string> decompress_all(Compression c, std::string_view data, std::size_t max_output);

}  // namespace guard::checks
