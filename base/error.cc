#include "base/error.h"

#include <cstring>

namespace guard::base {

std::string Error::to_string() const {
  std::string out = message;
  auto append = [&out](const std::string& part) {
    if (part.empty()) return;
    if (!out.empty()) out += ": ";
    out += part;
  };
  if (message.rfind(path, 0) != 0) append(path);  // "FILE:LINE:COL: ..." messages name it already
  if (err != 0) {
    append(what.empty() ? std::string(std::strerror(err)) : what + ": " + std::strerror(err));
  } else if (message.empty()) {
    append(what);
  }
  return out;
}

}  // namespace guard::base
