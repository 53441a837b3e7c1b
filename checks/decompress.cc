#include "checks/decompress.h"

#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace guard::checks {
namespace {

// liblzma's memory limit for one stream: xz -9 needs 65 MiB to decode.
constexpr std::uint64_t kLzmaMemLimit = std::uint64_t{256} << 20;
// lz4 legacy blocks decode to at most 8 MiB (the format's fixed block size).
constexpr std::size_t kLz4BlockOut = std::size_t{8} << 20;
constexpr std::uint32_t kLz4LegacyMagic = 0x184C2102;

std::uint32_t le32(const char* p) {
  auto b = [p](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])); };
  return b(0) | b(1) << 8 | b(2) << 16 | b(3) << 24;
}

class GzipDecoder final : public Decoder {
 public:
  GzipDecoder() = default;
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;
  ~GzipDecoder() override {
    if (ready_) ::inflateEnd(&z_);
  }
  bool init() {
    ready_ = ::inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK;  // gzip wrapper only
    return ready_;
  }
  Step step(std::string_view& in, char*& out, std::size_t& room, bool /*in_at_eof*/) override {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size(), 1U << 30));
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(std::min<std::size_t>(room, 1U << 30));
    int rc = ::inflate(&z_, Z_NO_FLUSH);
    std::size_t used_in = static_cast<std::size_t>(reinterpret_cast<const char*>(z_.next_in) - in.data());
    std::size_t used_out = static_cast<std::size_t>(reinterpret_cast<char*>(z_.next_out) - out);
    in.remove_prefix(used_in);
    out += used_out;
    room -= used_out;
    if (rc == Z_STREAM_END) return {Status::end, {}};
    if (rc == Z_OK || rc == Z_BUF_ERROR) return {Status::more, {}};
    return {Status::error, z_.msg != nullptr ? z_.msg : fmt::format("zlib error {}", rc)};
  }

 private:
  z_stream z_{};
  bool ready_ = false;
};

class ZstdDecoder final : public Decoder {
 public:
  ZstdDecoder() : ctx_(::ZSTD_createDCtx()) {}
  ZstdDecoder(const ZstdDecoder&) = delete;
  ZstdDecoder& operator=(const ZstdDecoder&) = delete;
  ~ZstdDecoder() override { ::ZSTD_freeDCtx(ctx_); }
  bool init() const { return ctx_ != nullptr; }
  Step step(std::string_view& in, char*& out, std::size_t& room, bool /*in_at_eof*/) override {
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    ZSTD_outBuffer ob{out, room, 0};
    std::size_t rc = ::ZSTD_decompressStream(ctx_, &ob, &ib);
    in.remove_prefix(ib.pos);
    out += ob.pos;
    room -= ob.pos;
    if (::ZSTD_isError(rc) != 0U) return {Status::error, ::ZSTD_getErrorName(rc)};
    return {rc == 0 ? Status::end : Status::more, {}};
  }

 private:
  ZSTD_DCtx* ctx_;
};

std::string lzma_error(lzma_ret rc) {
  switch (rc) {
    case LZMA_MEM_ERROR: return "out of memory";
    case LZMA_MEMLIMIT_ERROR: return "needs more memory than the 256 MiB limit";
    case LZMA_FORMAT_ERROR: return "not in the expected format";
    case LZMA_OPTIONS_ERROR: return "unsupported options";
    case LZMA_DATA_ERROR: return "data corruption";
    case LZMA_BUF_ERROR: return "unexpected end of data";
    default: return fmt::format("liblzma error {}", static_cast<int>(rc));
  }
}

class LzmaDecoder final : public Decoder {
 public:
  LzmaDecoder() = default;
  LzmaDecoder(const LzmaDecoder&) = delete;
  LzmaDecoder& operator=(const LzmaDecoder&) = delete;
  ~LzmaDecoder() override { ::lzma_end(&s_); }
  bool init(bool alone) {
    lzma_ret rc = alone ? ::lzma_alone_decoder(&s_, kLzmaMemLimit) : ::lzma_stream_decoder(&s_, kLzmaMemLimit, 0);
    return rc == LZMA_OK;
  }
  Step step(std::string_view& in, char*& out, std::size_t& room, bool /*in_at_eof*/) override {
    s_.next_in = reinterpret_cast<const std::uint8_t*>(in.data());
    s_.avail_in = in.size();
    s_.next_out = reinterpret_cast<std::uint8_t*>(out);
    s_.avail_out = room;
    lzma_ret rc = ::lzma_code(&s_, LZMA_RUN);
    std::size_t used_in = in.size() - s_.avail_in;
    std::size_t used_out = room - s_.avail_out;
    in.remove_prefix(used_in);
    out += used_out;
    room -= used_out;
    if (rc == LZMA_STREAM_END) return {Status::end, {}};
    if (rc == LZMA_OK || rc == LZMA_BUF_ERROR) return {Status::more, {}};
    return {Status::error, lzma_error(rc)};
  }

 private:
  lzma_stream s_ = LZMA_STREAM_INIT;
};

// The kernel's lz4 legacy format: magic, then blocks of (le32 compressed size, data), each
// decoding to at most 8 MiB, until the input ends; a repeated magic starts another stream.
class Lz4LegacyDecoder final : public Decoder {
 public:
  Step step(std::string_view& in, char*& out, std::size_t& room, bool in_at_eof) override {
    for (;;) {
      if (!pending_.empty()) {
        std::size_t n = std::min(pending_.size(), room);
        std::memcpy(out, pending_.data(), n);
        pending_.remove_prefix(n);
        out += n;
        room -= n;
        if (!pending_.empty()) return {Status::more, {}};
      }
      if (!need_header_ && block_size_ == 0) {
        // Between blocks: the stream ends with its input, or at a zero size (padding follows).
        if (in.empty() && in_at_eof) return {Status::end, {}};
        if (in.size() < 4) {
          if (in_at_eof) return {Status::error, "a block header is cut short"};
          return {Status::more, {}};
        }
        std::uint32_t size = le32(in.data());
        if (size == 0) return {Status::end, {}};
        in.remove_prefix(4);
        if (size == kLz4LegacyMagic) continue;
        if (size > static_cast<std::uint32_t>(LZ4_compressBound(static_cast<int>(kLz4BlockOut))))
          return {Status::error, fmt::format("a block of {} bytes is larger than the format allows", size)};
        block_size_ = size;
        block_.clear();
      }
      if (need_header_) {
        if (in.size() < 4) return {in_at_eof ? Status::error : Status::more, in_at_eof ? "no lz4 magic" : ""};
        if (le32(in.data()) != kLz4LegacyMagic) return {Status::error, "not an lz4 legacy stream"};
        in.remove_prefix(4);
        need_header_ = false;
        continue;
      }
      std::size_t take = std::min(in.size(), block_size_ - block_.size());
      block_.append(in.data(), take);
      in.remove_prefix(take);
      if (block_.size() < block_size_) return {Status::more, {}};
      decoded_.resize(kLz4BlockOut);
      int n = ::LZ4_decompress_safe(block_.data(), decoded_.data(), static_cast<int>(block_.size()),
                                    static_cast<int>(decoded_.size()));
      if (n < 0) return {Status::error, "corrupt lz4 block"};
      pending_ = std::string_view(decoded_.data(), static_cast<std::size_t>(n));
      block_size_ = 0;
    }
  }

 private:
  bool need_header_ = true;
  std::size_t block_size_ = 0;
  std::string block_;
  std::vector<char> decoded_;
  std::string_view pending_;
};

template <typename T, typename... Args>
base::Result<std::unique_ptr<Decoder>> make(Compression c, Args... args) {
  auto d = std::make_unique<T>();
  if (!d->init(args...)) return base::fail("decompress", "", fmt::format("cannot set up a {} decoder", to_string(c)));
  return std::unique_ptr<Decoder>(std::move(d));
}

bool starts(std::string_view head, std::string_view magic) { return head.substr(0, magic.size()) == magic; }

}  // namespace

std::string_view to_string(Compression c) {
  switch (c) {
    case Compression::gzip: return "gzip";
    case Compression::zstd: return "zstd";
    case Compression::xz: return "xz";
    case Compression::lzma: return "lzma";
    case Compression::lz4_legacy: return "lz4";
  }
  return "?";
}

std::optional<Compression> detect_compression(std::string_view head) {
  using namespace std::string_view_literals;
  if (starts(head, "\x1f\x8b"sv) || starts(head, "\x1f\x9e"sv)) return Compression::gzip;
  if (starts(head, "\x28\xb5\x2f\xfd"sv)) return Compression::zstd;
  if (starts(head, "\xfd\x37\x7a\x58\x5a\x00"sv)) return Compression::xz;
  if (starts(head, "\x5d\x00\x00"sv)) return Compression::lzma;
  if (starts(head, "\x02\x21\x4c\x18"sv)) return Compression::lz4_legacy;
  return std::nullopt;
}

std::optional<std::string_view> detect_unsupported_compression(std::string_view head) {
  using namespace std::string_view_literals;
  if (starts(head, "BZh"sv)) return "bzip2";
  if (starts(head, "\x89\x4c\x5a\x4f"sv)) return "lzo";
  if (starts(head, "\x04\x22\x4d\x18"sv)) return "lz4 frame";
  return std::nullopt;
}

base::Result<std::unique_ptr<Decoder>> Decoder::create(Compression c) {
  switch (c) {
    case Compression::gzip: return make<GzipDecoder>(c);
    case Compression::zstd: return make<ZstdDecoder>(c);
    case Compression::xz: return make<LzmaDecoder>(c, false);
    case Compression::lzma: return make<LzmaDecoder>(c, true);
    case Compression::lz4_legacy: return std::unique_ptr<Decoder>(std::make_unique<Lz4LegacyDecoder>());
  }
  return base::fail("decompress", "", "unknown compression");
}

base::Result<std::string> decompress_all(Compression c, std::string_view data, std::size_t max_output) {
  std::string out;
  std::vector<char> chunk(std::size_t{1} << 20);
  while (!data.empty()) {
    if (std::all_of(data.begin(), data.end(), [](char ch) { return ch == '\0'; })) break;  // stream padding
    if (!out.empty() && detect_compression(data) != c)
      return base::fail("decompress", "", fmt::format("{} bytes of trailing data after the {} stream", data.size(),
                                                      to_string(c)));
    auto dec = Decoder::create(c);
    if (!dec) return base::fail(dec.error());
    for (;;) {
      char* p = chunk.data();
      std::size_t room = chunk.size();
      std::size_t before = data.size();
      Decoder::Step s = (*dec)->step(data, p, room, true);
      std::size_t got = chunk.size() - room;
      if (out.size() + got > max_output)
        return base::fail("decompress", "", fmt::format("decompresses to more than {} bytes", max_output));
      out.append(chunk.data(), got);
      if (s.status == Decoder::Status::error)
        return base::fail("decompress", "", fmt::format("{} data is corrupt: {}", to_string(c), s.error));
      if (s.status == Decoder::Status::end) break;
      if (got == 0 && before == data.size())
        return base::fail("decompress", "",
                          data.empty() ? fmt::format("the {} data is truncated", to_string(c))
                                       : fmt::format("the {} decoder stalled", to_string(c)));
    }
  }
  return out;
}

}  // namespace guard::checks
