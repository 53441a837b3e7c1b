#include "guard/gate/gate_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <string_view>

#include "base/strings.h"
#include "base/unique_fd.h"

namespace guard::gate {

std::string gate_file_path(const std::string& state_dir) { return state_dir + "/gate"; }

std::string render_gate_file(const state::GateState& gate) {
  if (!gate.closed) return "open\n";
  std::string reason = gate.reason;
  for (auto& c : reason) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::string text = "closed\nreason=" + reason + "\n";
  if (gate.run_id) text += "run=" + std::to_string(*gate.run_id) + "\n";
  return text;
}

GateFile parse_gate_file(std::string_view text) {
  GateFile gate;
  auto lines = base::split(text, '\n');
  if (base::trim(text).empty()) return gate;  // no file, or nothing in it: open
  // A blank first line before other content is not "open" either: a damaged file, closed.
  std::string_view state = lines.empty() ? std::string_view{} : base::trim(lines.front());
  gate.closed = state != "open";
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = base::trim(lines[i]);
    if (line.substr(0, 7) == "reason=") gate.reason = std::string(line.substr(7));
    if (line.substr(0, 4) == "run=") {
      std::int64_t id = 0;
      auto value = line.substr(4);
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
      if (ec == std::errc() && end == value.data() + value.size()) gate.run_id = id;
    }
  }
  return gate;
}

base::Result<GateFile> read_gate_file(const std::string& path) {
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT) return GateFile{};
    return base::fail_errno("open", path, errno, "cannot read the gate file");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return base::fail_errno("fstat", path, errno, "cannot read the gate file");
  if (!S_ISREG(st.st_mode)) return base::fail("open", path, "the gate file is not a regular file");
  std::string text;
  std::array<char, 4096> buf{};
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::fail_errno("read", path, errno, "cannot read the gate file");
    }
    if (n == 0) break;
    text.append(buf.data(), static_cast<std::size_t>(n));
    if (text.size() > (1U << 20)) return base::fail("read", path, "the gate file is larger than 1 MiB");
  }
  return parse_gate_file(text);
}

}  // namespace guard::gate
