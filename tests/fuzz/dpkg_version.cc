// dpkg's version order from any bytes: the input is split at its first two NUL bytes into
// versions a, b and c. compare_versions must be a total order: reflexive, antisymmetric
// (compare(a,b) == -compare(b,a) in sign) and transitive.
#include "checks/dpkg_version.h"
#include "tests/fuzz/fuzz.h"

namespace {
int sign(int v) { return (v > 0) - (v < 0); }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using guard::checks::compare_versions;
  auto text = guard::fuzz::bytes(data, size);
  auto cut = text.find('\0');
  std::string_view a = text.substr(0, cut);
  std::string_view rest = cut == std::string_view::npos ? std::string_view{} : text.substr(cut + 1);
  auto cut2 = rest.find('\0');
  std::string_view b = rest.substr(0, cut2);
  std::string_view c = cut2 == std::string_view::npos ? std::string_view{} : rest.substr(cut2 + 1);

  UG_FUZZ_CHECK(compare_versions(a, a) == 0);
  int ab = sign(compare_versions(a, b));
  int ba = sign(compare_versions(b, a));
  UG_FUZZ_CHECK(ab == -ba);
  int bc = sign(compare_versions(b, c));
  int ac = sign(compare_versions(a, c));
  if (ab <= 0 && bc <= 0) UG_FUZZ_CHECK(ac <= 0);
  if (ab >= 0 && bc >= 0) UG_FUZZ_CHECK(ac >= 0);
  return 0;
}
