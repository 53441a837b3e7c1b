// The list of every check, in report order. Each check file adds one factory here.
#include "checks/check.h"
#include "checks/dpkg_state_check.h"
#include "checks/package_files_check.h"
#include "checks/package_hashes_check.h"

namespace guard::checks {

std::vector<std::unique_ptr<Check>> make_all_checks() {
  std::vector<std::unique_ptr<Check>> all;
  all.push_back(std::make_unique<DpkgStateCheck>());
  all.push_back(std::make_unique<PackageFilesCheck>());
  all.push_back(std::make_unique<PackageHashesCheck>());
  return all;
}

}  // namespace guard::checks
