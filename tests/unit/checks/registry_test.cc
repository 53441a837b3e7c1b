#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "checks/check.h"
#include "policies/policy.h"

namespace guard::checks {
namespace {

// One order for every list of checks: policies cannot include checks, so the registry follows
// the policy's list, and `check --json`, reports and `policy show` agree.
TEST(Registry, HasExactlyThePolicysCheckIdsInItsOrder) {
  std::vector<std::string> ids;
  for (const auto& check : make_all_checks()) ids.emplace_back(check->id());
  EXPECT_EQ(ids, policies::known_check_ids());
}

}  // namespace
}  // namespace guard::checks
