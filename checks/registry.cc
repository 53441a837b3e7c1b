// The list of every check, in report order. Each check file adds one factory here.
#include "checks/check.h"
#include "checks/critical.h"
#include "checks/libraries.h"
#include "checks/symlinks.h"

namespace guard::checks {

std::vector<std::unique_ptr<Check>> make_all_checks() {
  std::vector<std::unique_ptr<Check>> all;
  all.push_back(std::make_unique<LibrariesCheck>());
  all.push_back(std::make_unique<SymlinksCheck>());
  all.push_back(std::make_unique<CriticalCheck>());
  return all;
}

}  // namespace guard::checks
