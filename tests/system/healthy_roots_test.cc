// Zero false alarms, the hard requirement: the whole check, every check id, run by the built
// binary as an administrator would (`upgrade-guard --root R check --json`, no baseline) on
// healthy debootstrapped Debian 12 and Debian 13 roots, minbase and server, gives exit 0 and
// no blocking finding. A new check that trips on a healthy Debian root fails here.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "base/strings.h"
#include "tests/common/test_env.h"

namespace guard {
namespace {

using guard::testing::TempDir;

class HealthyRoot : public ::testing::TestWithParam<const char*> {};

TEST_P(HealthyRoot, FullCheckWithoutBaselineHasNoBlockingFinding) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("copies a debootstrapped root with owners intact: needs root");
  const std::string variant = GetParam();
  auto built = guard::testing::run({std::string(UG_SOURCE_DIR) + "/scripts/test-root", variant}, 1800);
  ASSERT_TRUE(built.ok()) << "scripts/test-root " << variant << ": " << built.err;
  TempDir dir("ug-healthy");
  const std::string root = dir / "root";
  auto cp = guard::testing::run({"cp", "-a", "--reflink=auto", std::string(base::trim(built.out)), root}, 900);
  ASSERT_TRUE(cp.ok()) << cp.err;
  const std::string state = dir / "state";
  auto r = guard::testing::run({UG_BINARY, "--root", root, "--state-dir", state, "check", "--json"}, 900);
  auto report = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << "not JSON: " << r.out << r.err;
  std::string blocking;
  for (const auto& f : report["findings"]) {
    if (f.value("severity", "") == "block" && !f.value("known", false))
      blocking += f.value("check", "") + " " + f.value("path", "") + ": " + f.value("message", "") + "\n";
  }
  for (const auto& c : report["checks"]) {
    EXPECT_NE(c.value("status", ""), "error") << c.value("id", "") << ": " << c.value("note", "");
  }
  EXPECT_EQ(blocking, "");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(report.value("verdict", ""), "pass");
}

INSTANTIATE_TEST_SUITE_P(Debian, HealthyRoot,
                         ::testing::Values("minbase", "server", "trixie-minbase", "trixie-server"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (auto& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace guard
