// A policy layer (/etc/upgrade-guard/policy.toml or policy.d/*.toml) from any bytes, merged
// over the built-in defaults as load_policy does. Round trip: `policy show`'s rendering of
// an accepted policy loads back to the same settings.
#include <string>
#include <string_view>

#include "policies/loader.h"
#include "tests/fuzz/fuzz.h"

namespace {

// The rendering without its "# from FILE:LINE:COLUMN" / "# built-in" origin comments, which
// name where each value came from and so differ between the two loads.
std::string settings(std::string_view rendered) {
  std::string out;
  std::size_t pos = 0;
  while (pos < rendered.size()) {
    auto end = rendered.find('\n', pos);
    if (end == std::string_view::npos) end = rendered.size();
    std::string_view line = rendered.substr(pos, end - pos);
    for (std::string_view mark : {"  # from ", "  # built-in"}) {
      if (auto at = line.rfind(mark); at != std::string_view::npos) line = line.substr(0, at);
    }
    out.append(line);
    out.push_back('\n');
    pos = end + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace guard::policies;
  auto text = guard::fuzz::bytes(data, size);
  Policy policy = default_policy();
  if (!apply_policy_toml(policy, text, "/etc/upgrade-guard/policy.toml")) return 0;
  std::string rendered = render_policy(policy);
  Policy again = default_policy();
  auto reloaded = apply_policy_toml(again, rendered, "/tmp/rendered.toml");
  if (!reloaded) {
    std::fprintf(stderr, "%s\n", reloaded.error().message.c_str());
    guard::fuzz::property_failed("the rendered policy loads back");
  }
  UG_FUZZ_CHECK(settings(render_policy(again)) == settings(rendered));
  return 0;
}
