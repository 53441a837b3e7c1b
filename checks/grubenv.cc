#include "checks/grubenv.h"

#include <algorithm>

namespace guard::checks {
namespace {

std::string unescape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      ++i;
      out += v[i] == 'n' ? '\n' : v[i];
    } else {
      out += v[i];
    }
  }
  return out;
}

std::string escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> GrubEnv::get(std::string_view key) const {
  auto it = std::find_if(vars_.begin(), vars_.end(), [&](const auto& kv) { return kv.first == key; });
  if (it == vars_.end()) return std::nullopt;
  return it->second;
}

void GrubEnv::set(std::string_view key, std::string_view value) {
  auto it = std::find_if(vars_.begin(), vars_.end(), [&](const auto& kv) { return kv.first == key; });
  if (it != vars_.end()) {
    it->second = std::string(value);
  } else {
    vars_.emplace_back(std::string(key), std::string(value));
  }
}

bool GrubEnv::erase(std::string_view key) {
  auto it = std::find_if(vars_.begin(), vars_.end(), [&](const auto& kv) { return kv.first == key; });
  if (it == vars_.end()) return false;
  vars_.erase(it);
  return true;
}

base::Result<GrubEnv> parse_grubenv(std::string_view bytes) {
  if (bytes.substr(0, kGrubEnvHeader.size()) != kGrubEnvHeader)
    return base::fail("grubenv", "", "not a GRUB environment block (missing '# GRUB Environment Block' header)");
  GrubEnv env;
  std::size_t pos = kGrubEnvHeader.size();
  while (pos < bytes.size()) {
    // A line ends at an unescaped newline.
    std::size_t end = pos;
    while (end < bytes.size() && bytes[end] != '\n') end += (bytes[end] == '\\' && end + 1 < bytes.size()) ? 2 : 1;
    std::string_view line = bytes.substr(pos, std::min(end, bytes.size()) - pos);
    pos = end + 1;
    if (line.empty() || line.front() == '#') continue;  // padding or a comment
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.set(line.substr(0, eq), unescape(line.substr(eq + 1)));
  }
  return env;
}

base::Result<std::string> render_grubenv(const GrubEnv& env) {
  std::string out(kGrubEnvHeader);
  for (const auto& [key, value] : env.vars()) {
    out += key;
    out += '=';
    out += escape(value);
    out += '\n';
  }
  if (out.size() > kGrubEnvSize)
    return base::fail("grubenv", "",
                      "the variables need " + std::to_string(out.size()) + " bytes, more than the " +
                          std::to_string(kGrubEnvSize) + "-byte GRUB environment block holds");
  out.resize(kGrubEnvSize, '#');
  return out;
}

}  // namespace guard::checks
