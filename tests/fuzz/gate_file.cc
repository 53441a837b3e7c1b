// The gate file (<state_dir>/gate) from any bytes. It fails safe: only a first line "open"
// (or no text) is open. Round trip: a parsed gate rendered and parsed again is the same gate.
#include <string>

#include "guard/gate/gate_file.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace guard;
  auto text = fuzz::bytes(data, size);
  auto gate = gate::parse_gate_file(text);
  if (!gate.closed) {
    // Open only for a text without content, or one whose first line is "open".
    constexpr std::string_view kBlank = " \t\r\n";
    auto first = text.substr(0, text.find('\n'));
    auto b = first.find_first_not_of(kBlank);
    auto word = b == std::string_view::npos ? std::string_view{} : first.substr(b, first.find_last_not_of(kBlank) - b + 1);
    UG_FUZZ_CHECK(word == "open" || text.find_first_not_of(kBlank) == std::string_view::npos);
  }
  state::GateState st;
  st.closed = gate.closed;
  st.reason = gate.reason;
  st.run_id = gate.run_id;
  auto again = gate::parse_gate_file(gate::render_gate_file(st));
  UG_FUZZ_CHECK(again.closed == gate.closed);
  if (gate.closed) {
    std::string reason = gate.reason;  // the writer keeps a reason on one line
    for (auto& c : reason) {
      if (c == '\r') c = ' ';
    }
    UG_FUZZ_CHECK(again.reason == reason);
    UG_FUZZ_CHECK(again.run_id == gate.run_id);
  }
  return 0;
}
