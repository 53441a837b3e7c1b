// The scheduled audit on a real debootstrapped Debian 12 root, every check at the policy's
// defaults: `baseline accept` on the healthy root, an audit that finds nothing new, then a
// library deleted behind dpkg's back, which the next audit must catch, gate and export.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/system/guarded_root.h"

namespace guard {
namespace {

using guard::testing::slurp;

using AuditSystemTest = guard::testing::GuardedRootTest;

TEST_F(AuditSystemTest, AcceptedHealthyRootPassesAndADeletedLibraryIsCaughtGatedAndExported) {
  auto accepted = root_->guard({"baseline", "accept"});
  ASSERT_EQ(accepted.exit_code, 0) << accepted.out << accepted.err;
  const std::string prom = dir_ / "upgrade-guard.prom";
  auto clean = root_->guard({"audit", "--prometheus", prom});
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  std::string text = slurp(prom);
  EXPECT_NE(text.find("upgrade_guard_gate_closed 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("upgrade_guard_findings{check=\"libraries\",severity=\"block\",new=\"true\"} 0\n"),
            std::string::npos)
      << text;

  // libacl1's library removed by hand: cp, mv and ls's friends no longer load.
  ASSERT_EQ(::unlink(root_->path("/usr/lib/x86_64-linux-gnu/libacl.so.1.1.2301").c_str()), 0);
  auto broken = root_->guard({"--json", "audit", "--prometheus", prom});
  EXPECT_EQ(broken.exit_code, 1) << broken.err;
  auto j = nlohmann::json::parse(broken.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << broken.out;
  bool cp_found = false;
  for (const auto& f : j["findings"]) {
    if (f["check"] == "libraries" && f["path"] == "/usr/bin/cp" && f["blocking"] == true) cp_found = true;
  }
  EXPECT_TRUE(cp_found) << broken.out.substr(0, 4000);
  text = slurp(prom);
  EXPECT_NE(text.find("upgrade_guard_gate_closed 1\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("upgrade_guard_findings{check=\"libraries\",severity=\"block\",new=\"true\"} 0\n"),
            std::string::npos)
      << text;
  auto gate = root_->guard({"gate", "status"});
  EXPECT_EQ(gate.exit_code, 1) << gate.out;
  EXPECT_NE(gate.out.find("audit"), std::string::npos) << gate.out;
}

}  // namespace
}  // namespace guard
