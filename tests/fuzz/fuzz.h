// Shared by the libFuzzer targets in this folder (built with UG_FUZZ=ON, see CMakeLists.txt).
// A target's contract: any bytes give a value or an Error, never a crash, a hang, a sanitizer
// report or an unbounded allocation; where a parser has a writer or an order, the properties
// are checked too and a violation aborts (libFuzzer keeps the input).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace guard::fuzz {

inline std::string_view bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A violated property: says which, then aborts so libFuzzer records the input as a crash.
[[noreturn]] inline void property_failed(const char* what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::abort();
}

}  // namespace guard::fuzz

#define UG_FUZZ_CHECK(cond) \
  do {                       \
    if (!(cond)) ::guard::fuzz::property_failed(#cond); \
  } while (0)
