// A lexer-level scan of a policy's bytes: UTF-8 and control characters, sizes, the nesting of
// arrays and inline tables and the length of dotted keys, following TOML 1.0's lexical rules
// (strings, comments, where keys stand) closely enough that toml++, which stops at its first
// error, never gets further than this scan has vetted.
#include "policies/precheck.h"

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace guard::policies {
namespace {

// A character: its code point and how many bytes it took.
struct Char {
  char32_t cp;
  std::size_t len;
};

// Decodes the UTF-8 sequence at `s` (not empty); nullopt when it is not valid UTF-8 (overlong,
// a surrogate, above U+10FFFF, truncated or a stray continuation byte).
std::optional<Char> decode(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return Char{b0, 1};
  std::size_t len;
  char32_t cp;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (s.size() < len) return std::nullopt;
  for (std::size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  return Char{cp, len};
}

bool is_bare_key_char(char32_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

std::string describe(char32_t c) { return fmt::format("U+{:04X}", static_cast<std::uint32_t>(c)); }

class Scanner {
 public:
  Scanner(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  base::Result<void> run() {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // a byte-order mark, skipped like toml++ does
    line_start_ = pos_;
    while (pos_ < text_.size()) {
      if (pos_ >= kMaxPolicyBytes)
        return fail(fmt::format("the file is larger than {} MiB; a policy is text an administrator writes",
                                kMaxPolicyBytes >> 20));
      auto c = decode(text_.substr(pos_));
      if (!c) {
        return fail(fmt::format("byte 0x{:02X} is not valid UTF-8", static_cast<unsigned char>(text_[pos_])));
      }
      if (auto r = check_control(c->cp); !r) return r;
      if (c->cp != '\n' && c->cp != '\r' && pos_ + c->len - line_start_ > kMaxPolicyLineBytes)
        return fail(fmt::format("the line is longer than {} bytes", kMaxPolicyLineBytes));
      if (auto r = step(c->cp); !r) return r;
      pos_ += c->len;
      ++column_;
      if (c->cp == '\n') {
        ++line_;
        column_ = 1;
        line_start_ = pos_;
      }
    }
    return {};
  }

 private:
  enum class Context { code, comment, basic, literal, ml_basic, ml_literal };

  base::Result<void> fail(const std::string& reason) const {
    return base::fail(base::Error{"policy", file_, 0, fmt::format("{}:{}:{}: {}", file_, line_, column_, reason)});
  }

  // TAB and line breaks are the only control characters a policy may hold (TOML allows no
  // others, escaped ones aside); C1 controls are refused too, terminals act on them.
  base::Result<void> check_control(char32_t c) const {
    if (c == '\t' || c == '\n') return {};
    if (c == '\r') {
      if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') return {};
      return fail("carriage return not followed by a line feed");
    }
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F))
      return fail(fmt::format("control character {}: write it escaped in a string (\\u{:04X})", describe(c),
                              static_cast<std::uint32_t>(c)));
    return {};
  }

  // How many times `q` repeats from the current position.
  std::size_t run_of(char q) const {
    std::size_t n = 0;
    while (pos_ + n < text_.size() && text_[pos_ + n] == q) ++n;
    return n;
  }

  // Skips `n` more ASCII characters after the current one (quotes of a delimiter).
  void skip_ascii(std::size_t n) {
    pos_ += n;
    column_ += n;
  }

  base::Result<void> step(char32_t c) {
    switch (context_) {
      case Context::comment:
        if (c == '\n') end_of_line();
        return {};
      case Context::basic:
      case Context::literal:
        return in_string(c);
      case Context::ml_basic:
      case Context::ml_literal:
        return in_ml_string(c);
      case Context::code:
        return in_code(c);
    }
    return {};
  }

  // A single-line string; a line break ends it (toml++ stops there with an error).
  base::Result<void> in_string(char32_t c) {
    if (c == '\n') {
      context_ = Context::code;
      end_of_line();
    } else if (escaped_) {
      escaped_ = false;
    } else if (context_ == Context::basic && c == '\\') {
      escaped_ = true;
    } else if (c == (context_ == Context::basic ? U'"' : U'\'')) {
      context_ = Context::code;
    }
    return {};
  }

  base::Result<void> in_ml_string(char32_t c) {
    const bool basic = context_ == Context::ml_basic;
    if (skipping_) {
      // After a line-ending backslash toml++ asks of each character whether it is whitespace:
      // its table has a hole at U+00A1..U+0499 (__builtin_unreachable).
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return {};
      if (c >= 0x80) return fail(fmt::format("character {} after a line-ending backslash: write it on the next line's start without the backslash, or escaped", describe(c)));
      skipping_ = false;
    } else if (escaped_) {
      escaped_ = false;
      if (c >= 0x80) return fail(fmt::format("character {} after a backslash in a multi-line string", describe(c)));
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') skipping_ = true;
      return {};
    }
    if (basic && c == '\\') {
      escaped_ = true;
      return {};
    }
    const char quote = basic ? '"' : '\'';
    if (c == static_cast<char32_t>(quote)) {
      std::size_t n = run_of(quote);
      if (n >= 3) {
        // The delimiter, after up to two quotes that end the content.
        skip_ascii(std::min<std::size_t>(n, 5) - 1);
        context_ = Context::code;
      } else {
        skip_ascii(n - 1);
      }
    }
    return {};
  }

  base::Result<void> start_key_part() {
    if (++key_parts_ > kMaxPolicyKeyParts)
      return fail(fmt::format("a key with more than {} dotted parts: the policy's keys have at most 4",
                              kMaxPolicyKeyParts));
    need_part_ = false;
    return {};
  }

  base::Result<void> in_code(char32_t c) {
    if (c >= 0x80) {
      return fail(fmt::format("character {} outside a string or comment: TOML allows only ASCII there",
                              describe(c)));
    }
    if (c == '\n') {
      end_of_line();
      return {};
    }
    if (c == ' ' || c == '\t' || c == '\r') return {};
    if (c == '#') {
      context_ = Context::comment;
      return {};
    }
    if (c == '"' || c == '\'') {
      if (expect_key_) begin_key(false);
      if (in_key_ && need_part_) {
        if (auto r = start_key_part(); !r) return r;
      }
      const char quote = static_cast<char>(c);
      std::size_t n = run_of(quote);
      if (n >= 3) {
        skip_ascii(2);
        context_ = c == '"' ? Context::ml_basic : Context::ml_literal;
      } else if (n == 2) {
        skip_ascii(1);  // an empty string
      } else {
        context_ = c == '"' ? Context::basic : Context::literal;
      }
      return {};
    }
    if (expect_key_) {
      if (c == '[' && nesting_.empty()) {  // a table header, [name] or [[name]]
        if (run_of('[') >= 2) skip_ascii(1);
        begin_key(true);
        return {};
      }
      if (c == '}' && !nesting_.empty() && nesting_.back() == '{') {  // an empty inline table
        nesting_.pop_back();
        expect_key_ = false;
        return {};
      }
      if (is_bare_key_char(c)) {
        begin_key(false);
        return start_key_part();
      }
      return {};  // toml++ stops here with an error
    }
    if (in_key_) {
      if (c == '.') {
        need_part_ = true;
      } else if (is_bare_key_char(c)) {
        if (need_part_) return start_key_part();
      } else if (c == '=' && !in_header_) {
        in_key_ = false;  // the value follows
      } else if (c == ']' && in_header_) {
        in_key_ = false;
        in_header_ = false;
        if (run_of(']') >= 2) skip_ascii(1);
      }
      return {};
    }
    // In a value.
    if (c == '[' || c == '{') {
      if (nesting_.size() >= kMaxPolicyNesting)
        return fail(fmt::format("arrays and inline tables nested more than {} deep", kMaxPolicyNesting));
      nesting_.push_back(static_cast<char>(c));
      if (c == '{') expect_key_ = true;
    } else if ((c == ']' || c == '}') && !nesting_.empty()) {
      nesting_.pop_back();
    } else if (c == ',' && !nesting_.empty() && nesting_.back() == '{') {
      expect_key_ = true;
    }
    return {};
  }

  void begin_key(bool header) {
    expect_key_ = false;
    in_key_ = true;
    in_header_ = header;
    key_parts_ = 0;
    need_part_ = true;
  }

  void end_of_line() {
    context_ = Context::code;
    in_key_ = false;
    in_header_ = false;
    // An array may go on over lines; an inline table may not (toml++ stops with an error).
    expect_key_ = nesting_.empty();
  }

  std::string_view text_;
  const std::string& file_;
  std::size_t pos_ = 0;
  std::size_t line_start_ = 0;
  std::size_t line_ = 1;
  std::size_t column_ = 1;
  Context context_ = Context::code;
  bool escaped_ = false;   // the previous character was a backslash in a basic string
  bool skipping_ = false;  // after a line-ending backslash in a multi-line basic string
  std::vector<char> nesting_;  // the open '[' and '{' of values
  bool expect_key_ = true;  // where TOML has keys: a line's start outside arrays, after '{' or ',' in an inline table
  bool in_key_ = false;
  bool in_header_ = false;
  bool need_part_ = false;
  std::size_t key_parts_ = 0;
};

}  // namespace

base::Result<void> precheck_policy_text(std::string_view text, const std::string& file) {
  return Scanner(text, file).run();
}

}  // namespace guard::policies
