// The list of every check, in report order: the order of policies::known_check_ids(), which
// `policy show` follows too (tests/unit/checks/registry_test.cc keeps the two equal). Each
// check file adds one factory here.
#include "checks/apt_hooks.h"
#include "checks/boot.h"
#include "checks/check.h"
#include "checks/critical.h"
#include "checks/dpkg_state_check.h"
#include "checks/interpreters.h"
#include "checks/libraries.h"
#include "checks/login_shells.h"
#include "checks/mounts.h"
#include "checks/nss.h"
#include "checks/package_files_check.h"
#include "checks/package_hashes_check.h"
#include "checks/pam.h"
#include "checks/preload.h"
#include "checks/services.h"
#include "checks/symlinks.h"
#include "checks/system_checks.h"
#include "checks/validators.h"

namespace guard::checks {

std::vector<std::unique_ptr<Check>> make_all_checks() {
  std::vector<std::unique_ptr<Check>> all;
  all.push_back(std::make_unique<DpkgStateCheck>());
  all.push_back(std::make_unique<PackageFilesCheck>());
  all.push_back(std::make_unique<PackageHashesCheck>());
  all.push_back(std::make_unique<LibrariesCheck>());
  all.push_back(std::make_unique<SymlinksCheck>());
  all.push_back(std::make_unique<BootCheck>());
  all.push_back(std::make_unique<MountsCheck>());
  all.push_back(std::make_unique<ServicesCheck>());
  all.push_back(std::make_unique<CriticalCheck>());
  all.push_back(std::make_unique<PamCheck>());
  all.push_back(std::make_unique<NssCheck>());
  all.push_back(std::make_unique<PreloadCheck>());
  all.push_back(std::make_unique<AptHooksCheck>());
  all.push_back(std::make_unique<LoginShellsCheck>());
  all.push_back(std::make_unique<InterpretersCheck>());
  // The system around the packages, last.
  all.push_back(std::make_unique<SpaceCheck>());
  all.push_back(std::make_unique<FilesystemCheck>());
  all.push_back(std::make_unique<BackupCheck>());
  all.push_back(std::make_unique<ValidatorsCheck>());
  all.push_back(std::make_unique<CustomCheck>());
  return all;
}

}  // namespace guard::checks
