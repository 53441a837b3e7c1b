#include "checks/initramfs.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "checks/decompress.h"

namespace guard::checks {
namespace {

using Kind = InitramfsProblem::Kind;

constexpr std::size_t kInBuffer = std::size_t{64} << 10;  // small: a corruption's offset is this precise
constexpr std::size_t kOutBuffer = std::size_t{1} << 20;
constexpr std::size_t kHeader = 110;

std::string_view normalize(std::string_view name) {
  for (;;) {
    if (name.starts_with("./")) {
      name.remove_prefix(2);
    } else if (name.starts_with("/")) {
      name.remove_prefix(1);
    } else {
      return name;
    }
  }
}

// The cpio "newc" state machine of one segment, fed in chunks of any size.
class CpioParser {
 public:
  CpioParser(const InitramfsLimits& limits, const InitramfsVisitor& visit, std::uint64_t* total_entries,
             std::size_t segment)
      : limits_(limits), visit_(visit), total_entries_(total_entries), segment_(segment) {}

  // Consumes bytes from `p`; returns how many. Stops early on an error (error() set) or, between
  // members, at a byte that cannot start a header (stopped() set).
  std::size_t feed(const char* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n && error_.empty() && !stopped_) {
      switch (state_) {
        case State::between: {
          if (p[i] == '\0') {
            ++i, ++pos_;
            break;
          }
          if (p[i] != '0') {
            stopped_ = true;
            break;
          }
          if (pos_ % 4 != 0) {
            fail(fmt::format("a cpio header at offset {} is not aligned to 4 bytes", pos_));
            break;
          }
          header_start_ = pos_;
          buf_.clear();
          state_ = State::header;
          break;
        }
        case State::header:
        case State::name: {
          std::size_t want = (state_ == State::header ? kHeader : name_size_) - buf_.size();
          std::size_t take = std::min(want, n - i);
          buf_.append(p + i, take);
          i += take, pos_ += take;
          if (take == want) state_ == State::header ? on_header() : on_name();
          break;
        }
        case State::skip: {
          std::uint64_t take = std::min<std::uint64_t>(skip_, n - i);
          i += take, pos_ += take, skip_ -= take;
          if (skip_ == 0) state_ = after_skip_;
          break;
        }
      }
    }
    return i;
  }

  [[nodiscard]] bool between() const { return state_ == State::between; }
  [[nodiscard]] bool stopped() const { return stopped_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] bool limit_reached() const { return limit_; }
  [[nodiscard]] std::uint64_t entries() const { return entries_; }
  // Where the parser is, for messages: "inside the member NAME" or "inside a cpio header".
  [[nodiscard]] std::string where() const {
    if (state_ == State::header) return fmt::format("inside the cpio header at offset {}", header_start_);
    if (state_ == State::name) return fmt::format("inside the name of the cpio member at offset {}", header_start_);
    return fmt::format("inside the member {} (header at offset {})", name_, header_start_);
  }

 private:
  enum class State { between, header, name, skip };

  void fail(std::string message) { error_ = std::move(message); }

  // The 8 hex digits of field `index` (0 = c_ino) of the header in buf_.
  bool field(int index, std::uint64_t* out) {
    std::uint64_t v = 0;
    for (int k = 0; k < 8; ++k) {
      char c = buf_[6 + static_cast<std::size_t>(index) * 8 + static_cast<std::size_t>(k)];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return false;
      v = v << 4 | static_cast<std::uint64_t>(d);
    }
    *out = v;
    return true;
  }

  void on_header() {
    if (buf_.compare(0, 6, "070701") != 0 && buf_.compare(0, 6, "070702") != 0) {
      fail(fmt::format("no cpio newc magic (070701) at offset {}", header_start_));
      return;
    }
    std::uint64_t mode = 0, name_size = 0;
    if (!field(1, &mode) || !field(6, &file_size_) || !field(11, &name_size)) {
      fail(fmt::format("the cpio header at offset {} has a field that is not hexadecimal", header_start_));
      return;
    }
    if (name_size == 0 || name_size > limits_.max_name + 1) {
      fail(fmt::format("the cpio header at offset {} has a name size of {}", header_start_, name_size));
      return;
    }
    mode_ = static_cast<std::uint32_t>(mode);
    name_size_ = static_cast<std::size_t>(name_size);
    buf_.clear();
    state_ = State::name;
  }

  void on_name() {
    if (buf_.back() != '\0') {
      fail(fmt::format("the name of the cpio member at offset {} is not terminated", header_start_));
      return;
    }
    name_.assign(buf_.data(), buf_.size() - 1);
    bool trailer = name_ == "TRAILER!!!";
    if (!trailer) {
      if (++*total_entries_ > limits_.max_entries) {
        limit_ = true;
        fail(fmt::format("more than {} members", limits_.max_entries));
        return;
      }
      ++entries_;
      visit_(InitramfsEntry{normalize(name_), mode_, file_size_, segment_});
    }
    // The name is padded to 4 bytes from the header's start, and so is the data.
    skip_ = (4 - pos_ % 4) % 4;
    std::uint64_t data = file_size_;
    std::uint64_t end = pos_ + skip_ + data;
    std::uint64_t data_pad = (4 - end % 4) % 4;
    skip_ += data + data_pad;
    after_skip_ = State::between;
    state_ = skip_ == 0 ? State::between : State::skip;
  }

  const InitramfsLimits& limits_;
  const InitramfsVisitor& visit_;
  std::uint64_t* total_entries_;
  std::size_t segment_;
  State state_ = State::between;
  State after_skip_ = State::between;
  std::string buf_;
  std::string name_;
  std::size_t name_size_ = 0;
  std::uint32_t mode_ = 0;
  std::uint64_t file_size_ = 0;
  std::uint64_t skip_ = 0;
  std::uint64_t pos_ = 0;  // in this segment's cpio bytes
  std::uint64_t header_start_ = 0;
  std::uint64_t entries_ = 0;
  bool stopped_ = false;
  bool limit_ = false;
  std::string error_;
};

// The image's bytes through a bounded window, with their offsets.
class Input {
 public:
  explicit Input(const ByteSource& src) : src_(src), buf_(kInBuffer) {}

  // Makes at least `n` bytes available unless the data ends first; false on a read error.
  bool fill(std::size_t n) {
    while (!eof_ && end_ - begin_ < n) {
      if (begin_ > 0) {
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      auto got = src_(buf_.data() + end_, buf_.size() - end_);
      if (!got) {
        error_ = got.error().to_string();
        return false;
      }
      if (*got == 0) eof_ = true;
      end_ += *got;
    }
    return true;
  }
  [[nodiscard]] std::string_view view() const { return {buf_.data() + begin_, end_ - begin_}; }
  void consume(std::size_t n) {
    begin_ += n;
    offset_ += n;
  }
  [[nodiscard]] std::uint64_t offset() const { return offset_; }  // of view()'s first byte
  [[nodiscard]] bool eof() const { return eof_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  const ByteSource& src_;
  std::vector<char> buf_;
  std::size_t begin_ = 0, end_ = 0;
  std::uint64_t offset_ = 0;
  bool eof_ = false;
  std::string error_;
};

class Scanner {
 public:
  Scanner(const ByteSource& src, const InitramfsVisitor& visit, const InitramfsLimits& limits)
      : in_(src), visit_(visit), limits_(limits) {}

  InitramfsScan run() {
    while (!scan_.problem) {
      if (!in_.fill(6)) return read_failed();
      std::string_view head = in_.view();
      if (head.empty()) break;
      if (head[0] == '\0') {
        std::size_t zeros = 0;
        while (zeros < head.size() && head[zeros] == '\0') ++zeros;
        in_.consume(zeros);
        continue;
      }
      if (head.starts_with("0707")) {
        plain_segment();
      } else if (auto c = detect_compression(head)) {
        compressed_segment(*c);
      } else if (auto name = detect_unsupported_compression(head)) {
        problem(Kind::unsupported, in_.offset(),
                fmt::format("the data at offset {} is {}-compressed, which this check does not read", in_.offset(),
                            *name));
      } else if (scan_.segments.empty()) {
        problem(Kind::corrupt, in_.offset(), "it starts with neither a cpio archive nor compressed data");
      } else {
        problem(Kind::trailing, in_.offset(),
                fmt::format("after its archives, the data at offset {} is neither cpio nor compressed (the kernel "
                            "stops unpacking there)",
                            in_.offset()));
      }
    }
    scan_.input_bytes = in_.offset();
    return std::move(scan_);
  }

 private:
  InitramfsScan read_failed() {
    problem(Kind::read_error, in_.offset(), "cannot read it: " + in_.error());
    scan_.input_bytes = in_.offset();
    return std::move(scan_);
  }

  void problem(Kind kind, std::uint64_t offset, std::string message) {
    if (!scan_.problem) scan_.problem = InitramfsProblem{kind, offset, std::move(message)};
  }

  InitramfsSegment& begin_segment(std::string format) {
    scan_.segments.push_back(InitramfsSegment{std::move(format), in_.offset(), 0, 0, 0});
    return scan_.segments.back();
  }

  // Reports the parser's error, if any; true when there was one.
  bool parser_failed(const CpioParser& parser, const InitramfsSegment& seg, std::uint64_t offset) {
    if (parser.error().empty()) return false;
    std::string where =
        seg.format == "cpio" ? "" : fmt::format(" of the {} data starting at offset {}", seg.format, seg.offset);
    problem(parser.limit_reached() ? Kind::too_large : Kind::corrupt, offset,
            fmt::format("its cpio archive{} is broken: {}", where, parser.error()));
    return true;
  }

  // An uncompressed cpio archive in the image itself (the early microcode archive).
  void plain_segment() {
    InitramfsSegment& seg = begin_segment("cpio");
    std::size_t index = scan_.segments.size() - 1;
    CpioParser parser(limits_, visit_, &scan_.entries, index);
    for (;;) {
      if (!in_.fill(1)) {
        read_failed();
        return;
      }
      std::string_view v = in_.view();
      if (v.empty()) break;
      std::size_t used = parser.feed(v.data(), v.size());
      in_.consume(used);
      seg.input_bytes += used;
      seg.output_bytes += used;
      scan_.output_bytes += used;
      if (parser_failed(parser, seg, in_.offset())) return;
      if (parser.stopped()) break;
    }
    seg.entries = parser.entries();
    if (!parser.between())
      problem(Kind::truncated, in_.offset(),
              fmt::format("it ends at offset {} {} of the uncompressed cpio archive at offset {}: the file is "
                          "truncated",
                          in_.offset(), parser.where(), seg.offset));
  }

  void compressed_segment(Compression c) {
    InitramfsSegment& seg = begin_segment(std::string(to_string(c)));
    std::size_t index = scan_.segments.size() - 1;
    auto dec = Decoder::create(c);
    if (!dec) {
      problem(Kind::read_error, in_.offset(), dec.error().to_string());
      return;
    }
    CpioParser parser(limits_, visit_, &scan_.entries, index);
    std::vector<char> out(kOutBuffer);
    for (;;) {
      if (!in_.fill(kInBuffer)) {
        read_failed();
        return;
      }
      std::string_view v = in_.view();
      std::size_t before = v.size();
      char* p = out.data();
      std::size_t room = out.size();
      Decoder::Step s = (*dec)->step(v, p, room, in_.eof());
      std::size_t used = before - v.size();
      std::size_t got = out.size() - room;
      in_.consume(used);
      seg.input_bytes += used;
      if (scan_.output_bytes + got > limits_.max_output) {
        problem(Kind::too_large, in_.offset(),
                fmt::format("it decompresses to more than {} bytes; the rest was not read", limits_.max_output));
        return;
      }
      seg.output_bytes += got;
      scan_.output_bytes += got;
      std::size_t fed = parser.feed(out.data(), got);
      if (parser_failed(parser, seg, in_.offset())) return;
      if (fed < got) {
        problem(Kind::corrupt, in_.offset(),
                fmt::format("the {} data starting at offset {} holds bytes that are not cpio after {} "
                            "decompressed bytes (the kernel: \"junk within compressed archive\")",
                            seg.format, seg.offset, seg.output_bytes - (got - fed)));
        return;
      }
      if (s.status == Decoder::Status::error) {
        problem(Kind::corrupt, in_.offset(),
                fmt::format("its {} data starting at offset {} is corrupt near offset {}: {}", seg.format, seg.offset,
                            in_.offset(), s.error));
        return;
      }
      if (s.status == Decoder::Status::end) break;
      if (used == 0 && got == 0 && in_.eof()) {
        problem(Kind::truncated, in_.offset(),
                fmt::format("its {} data starting at offset {} ends early, at offset {} (after {} decompressed "
                            "bytes): the file is truncated",
                            seg.format, seg.offset, in_.offset(), seg.output_bytes));
        return;
      }
      if (used == 0 && got == 0 && !v.empty() && room > 0) {
        problem(Kind::corrupt, in_.offset(), fmt::format("the {} decoder made no progress", seg.format));
        return;
      }
    }
    seg.entries = parser.entries();
    if (!parser.between())
      problem(Kind::corrupt, in_.offset(),
              fmt::format("its {} data starting at offset {} ends {} of its cpio archive", seg.format, seg.offset,
                          parser.where()));
  }

  Input in_;
  const InitramfsVisitor& visit_;
  const InitramfsLimits& limits_;
  InitramfsScan scan_;
};

}  // namespace

ByteSource fd_source(int fd) {
  return [fd](char* buf, std::size_t n) -> base::Result<std::size_t> {
    for (;;) {
      ssize_t got = ::read(fd, buf, n);
      if (got >= 0) return static_cast<std::size_t>(got);
      if (errno != EINTR) return base::fail_errno("read", "");
    }
  };
}

ByteSource bytes_source(std::string_view bytes) {
  auto rest = std::make_shared<std::string_view>(bytes);
  return [rest](char* buf, std::size_t n) -> base::Result<std::size_t> {
    std::size_t take = std::min(n, rest->size());
    std::memcpy(buf, rest->data(), take);
    rest->remove_prefix(take);
    return take;
  };
}

InitramfsScan scan_initramfs(const ByteSource& in, const InitramfsVisitor& visit, const InitramfsLimits& limits) {
  return Scanner(in, visit, limits).run();
}

}  // namespace guard::checks
