// The findings cap: a check that finds millions of things keeps kMaxFindingsPerCheck of them, the
// blocking ones first, and one more finding says how many it cut, in words and in JSON; it is
// never matched with a baseline, so the cap cannot turn a failing verdict into a passing one.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checks/bounded_findings.h"
#include "checks/check.h"
#include "checks/report.h"
#include "tests/common/test_env.h"

namespace guard::checks {
namespace {

// Returns `warn` warnings, then `block` blocking findings, each with its own path.
class ManyFindingsCheck : public Check {
 public:
  ManyFindingsCheck(std::size_t warn, std::size_t block) : warn_(warn), block_(block) {}
  [[nodiscard]] std::string_view id() const override { return "symlinks"; }
  [[nodiscard]] std::string_view summary() const override { return "many findings"; }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext&) const override {
    CheckOutput out;
    for (std::size_t i = 0; i < warn_; ++i)
      out.findings.push_back(make_finding("symlinks", Severity::warn, "/opt/w" + std::to_string(i), "warned"));
    for (std::size_t i = 0; i < block_; ++i)
      out.findings.push_back(make_finding("symlinks", Severity::block, "/usr/b" + std::to_string(i), "blocked"));
    return out;
  }

 private:
  std::size_t warn_, block_;
};

Report run_many(std::size_t warn, std::size_t block) {
  guard::testing::TempDir dir("ug-cap");
  auto root = base::Root::open(dir.path());
  EXPECT_TRUE(root);
  policies::Policy policy;
  CheckContext ctx{*root, policy, {}, nullptr, false, {}, {}, {}};
  ManyFindingsCheck check(warn, block);
  return run_check_set(ctx, {&check});
}

TEST(FindingsCap, KeepsTheBlockingFindingsFirstAndCountsTheRest) {
  Report r = run_many(2500, 10);
  ASSERT_EQ(r.findings.size(), kMaxFindingsPerCheck + 1);
  EXPECT_EQ(r.blocking_count(), 10u);  // all ten blocking findings kept, at the end as produced
  EXPECT_EQ(r.findings.front().path, "/opt/w0");
  EXPECT_EQ(r.findings[kMaxFindingsPerCheck - 11].path, "/opt/w1989");
  EXPECT_EQ(r.findings[kMaxFindingsPerCheck - 1].path, "/usr/b9");
  const Finding& cut = r.findings.back();
  EXPECT_EQ(cut.id, kFindingsCutId);
  EXPECT_EQ(cut.check, "symlinks");
  EXPECT_EQ(cut.severity, Severity::warn);
  EXPECT_EQ(cut.message, "510 more findings not kept (at most 2,000 a check), 0 of them blocking");

  auto j = to_json(r);
  EXPECT_EQ(j["findings"].size(), kMaxFindingsPerCheck + 1);
  EXPECT_EQ(j["findings"].back()["id"], "findings-cut");
  std::string text = render_human(r, false, true);
  EXPECT_NE(text.find("510 more findings not kept"), std::string::npos);
}

TEST(FindingsCap, CutBlockingFindingsBlockEvenWhenTheKeptOnesAreKnown) {
  Report r = run_many(0, kMaxFindingsPerCheck + 100);
  ASSERT_EQ(r.findings.size(), kMaxFindingsPerCheck + 1);
  std::vector<std::string> keys;
  for (const auto& f : r.findings) keys.push_back(f.key());
  apply_baseline(r, keys);  // every finding was in the baseline, the count of what was cut too
  EXPECT_EQ(r.blocking_count(), 1u);
  EXPECT_EQ(r.verdict, Verdict::fail);
  EXPECT_EQ(r.checks[0].status, CheckStatus::failed);
  EXPECT_EQ(r.findings.back().message,
            "100 more findings not kept (at most 2,000 a check), 100 of them blocking: they block, as they cannot be "
            "compared with the baseline");
}

// Which findings are kept depends on severity and order only, not on the order they arrive in.
TEST(FindingsCap, KeptSetIsIndependentOfArrivalOrder) {
  auto keep = [](bool reversed) {
    BoundedFindings b(3);
    std::vector<std::pair<std::uint64_t, Severity>> in{{0, Severity::warn}, {1, Severity::block}, {2, Severity::info},
                                                       {3, Severity::block}, {4, Severity::warn}, {5, Severity::warn}};
    if (reversed) std::reverse(in.begin(), in.end());
    for (auto [order, sev] : in) b.add(make_finding("x", sev, "/p" + std::to_string(order), "m"), order);
    std::vector<std::string> paths;
    for (auto& f : b.take("x")) paths.push_back(f.path);
    paths.pop_back();  // the findings-cut one
    EXPECT_EQ(b.cut(), 3u);
    EXPECT_EQ(b.cut_blocking(), 0u);
    return paths;
  };
  std::vector<std::string> want{"/p0", "/p1", "/p3"};
  EXPECT_EQ(keep(false), want);
  EXPECT_EQ(keep(true), want);
}

}  // namespace
}  // namespace guard::checks
