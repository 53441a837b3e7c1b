// A poor man's fuzzer for the parsers' robustness tests: random byte edits of realistic inputs,
// which must never crash a parser (run the tests under UG_ASAN=ON to catch out-of-bounds reads).
#pragma once

#include <random>
#include <string>
#include <string_view>

namespace guard::testing {

// `s` after 1 to 8 random edits (a byte replaced by one of `alphabet`, up to 16 bytes erased,
// one of `alphabet` inserted) and, one time in four, cut at a random length.
// e.g. mutate("UUID=1 / ext4 defaults 0 1\n", rng, " \t\n#=") -> "UUID=1 /#ext4 defau".
inline std::string mutate(std::string s, std::mt19937& rng, std::string_view alphabet) {
  int edits = 1 + static_cast<int>(rng() % 8);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    std::size_t at = rng() % s.size();
    switch (rng() % 3) {
      case 0:
        s[at] = alphabet[rng() % alphabet.size()];
        break;
      case 1:
        s.erase(at, 1 + rng() % 16);
        break;
      default:
        s.insert(at, 1, alphabet[rng() % alphabet.size()]);
        break;
    }
  }
  if (rng() % 4 == 0) s.resize(rng() % (s.size() + 1));
  return s;
}

}  // namespace guard::testing
