// Helpers shared by the unit tests of the boot, mounts and services checks: run one check on a
// fixture root and look for findings.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "base/root.h"
#include "checks/check.h"
#include "policies/policy.h"

namespace guard::checks::test {

// Runs `check` on the directory `dir` as a root; fails the test when the check errors.
inline CheckOutput run_on(const Check& check, const std::string& dir, bool live = false) {
  auto root = base::Root::open(dir);
  EXPECT_TRUE(root) << root.error().to_string();
  if (!root) return {};
  policies::Policy policy;
  CheckContext ctx{*root, policy, {}, nullptr, live, {}, {}, {}};
  auto out = check.run(ctx);
  EXPECT_TRUE(out) << out.error().to_string();
  return out ? *out : CheckOutput{};
}

// The first finding with `path` and `severity` whose message contains `text`, or nullptr.
inline const Finding* find(const CheckOutput& out, const std::string& path, Severity severity,
                           const std::string& text = "") {
  for (const auto& f : out.findings)
    if (f.path == path && f.severity == severity && f.message.find(text) != std::string::npos) return &f;
  return nullptr;
}

inline std::string dump(const CheckOutput& out) {
  std::string s = "skipped: '" + out.skipped + "'\n";
  for (const auto& f : out.findings)
    s += std::string(policies::to_string(f.severity)) + " " + f.path + ": " + f.message + " [" + f.id + "]\n";
  return s;
}

inline std::size_t count_at_least(const CheckOutput& out, Severity s) {
  std::size_t n = 0;
  for (const auto& f : out.findings)
    if (f.severity >= s) ++n;
  return n;
}

}  // namespace guard::checks::test
