#include "guard/core/run_context.h"

namespace guard {

std::string root_key(const base::Root& root) { return root.is_host_root() ? std::string("/") : root.host_path("/"); }

}  // namespace guard
