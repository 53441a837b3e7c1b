// The list of every check, in report order. Each check file adds one factory here.
#include "checks/boot.h"
#include "checks/check.h"
#include "checks/mounts.h"
#include "checks/services.h"

namespace guard::checks {

std::vector<std::unique_ptr<Check>> make_all_checks() {
  std::vector<std::unique_ptr<Check>> all;
  all.push_back(std::make_unique<BootCheck>());
  all.push_back(std::make_unique<MountsCheck>());
  all.push_back(std::make_unique<ServicesCheck>());
  return all;
}

}  // namespace guard::checks
