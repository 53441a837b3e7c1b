// A grubenv block from any bytes. Round trip: what parses and renders parses back to the same
// variables, and every rendered block is exactly kGrubEnvSize bytes.
#include "checks/grubenv.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace guard::checks;
  auto env = parse_grubenv(guard::fuzz::bytes(data, size));
  if (!env) return 0;
  auto block = render_grubenv(*env);
  if (!block) return 0;  // does not fit in the block: refused, nothing written
  UG_FUZZ_CHECK(block->size() == kGrubEnvSize);
  auto again = parse_grubenv(*block);
  UG_FUZZ_CHECK(again.has_value());
  UG_FUZZ_CHECK(again->vars() == env->vars());
  return 0;
}
