// The project's own look at a policy's bytes before the TOML parser sees them. toml++ 3.3.0 has
// defects reachable from a file's bytes: it recurses once per dotted-key component (a key of
// ~40,000 components overflows the stack), it reaches __builtin_unreachable when it asks
// whether a character in U+00A1..U+0499 (a combining accent, a Latin-1 letter) is whitespace,
// which it does outside strings and after a backslash in a multi-line basic string, and it
// asserts on input in debug builds. This lexer-level scan bounds what toml++ is given so that
// no policy bytes reach those paths, and names the place of the first thing it refuses.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/error.h"

namespace guard::policies {

// Bounds of a policy file's text (a policy is text an administrator writes).
inline constexpr std::size_t kMaxPolicyBytes = 1 << 20;   // the whole file
inline constexpr std::size_t kMaxPolicyLineBytes = 16384;  // one line, without its line break
inline constexpr std::size_t kMaxPolicyNesting = 8;        // arrays and inline tables inside each other
inline constexpr std::size_t kMaxPolicyKeyParts = 16;      // components of one dotted key or table header

// Refuses, before any TOML parsing, a policy text that
//  - is larger than kMaxPolicyBytes or has a line longer than kMaxPolicyLineBytes;
//  - is not valid UTF-8 (overlong forms, surrogates, truncated sequences, > U+10FFFF);
//  - holds a control character other than TAB and a line break (LF, CR LF): C0, DEL, C1;
//  - has a character other than ASCII outside strings and comments (TOML 1.0 allows none
//    there), or right after a backslash in a multi-line basic string (also after the
//    whitespace a line-ending backslash skips);
//  - nests arrays and inline tables ([ {) deeper than kMaxPolicyNesting;
//  - has a key or table header of more than kMaxPolicyKeyParts dotted components.
// A leading UTF-8 byte-order mark is skipped, as toml++ does. The error has what = "policy",
// path = `file` and message "FILE:LINE:COLUMN: reason" (the column counts characters from 1,
// like toml++'s), e.g.
// "/etc/upgrade-guard/policy.toml:3:1: character U+0301 outside a string or comment: TOML allows only ASCII there".
// Text that passes may still be invalid TOML; toml++ reports that.
[[nodiscard]] base::Result<void> precheck_policy_text(std::string_view text, const std::string& file);

}  // namespace guard::policies
