// The [[validator]] table: built-in entries, an administrator's additions, overrides of single
// keys by name, disabling, and errors with FILE:LINE:COLUMN.
#include <gtest/gtest.h>

#include <algorithm>

#include "policies/loader.h"

namespace guard::policies {
namespace {

const Validator* find(const Policy& p, const std::string& name) {
  auto it = std::find_if(p.validators.begin(), p.validators.end(), [&](const auto& v) { return v.name == name; });
  return it == p.validators.end() ? nullptr : &*it;
}

TEST(ValidatorPolicy, BuiltInValidatorsApplyByDefault) {
  Policy p = default_policy();
  std::vector<std::string> names;
  for (const auto& v : p.validators) names.push_back(v.name);
  EXPECT_EQ(names, (std::vector<std::string>{"sshd", "nginx", "apache2", "named", "sudoers", "haproxy"}));
  const Validator* sshd = find(p, "sshd");
  ASSERT_NE(sshd, nullptr);
  EXPECT_EQ(sshd->program, "/usr/sbin/sshd");
  EXPECT_EQ(sshd->argv, (std::vector<std::string>{"/usr/sbin/sshd", "-t"}));
  EXPECT_EQ(sshd->runtime_dirs, (std::vector<std::string>{"/run/sshd"}));
  EXPECT_EQ(sshd->timeout, std::chrono::seconds(30));
  EXPECT_EQ(sshd->severity, Severity::block);
  EXPECT_TRUE(sshd->enabled);
}

TEST(ValidatorPolicy, AnEntryWithANewNameIsAdded) {
  Policy p = default_policy();
  auto r = apply_policy_toml(p,
                             "[[validator]]\n"
                             "name = \"postgresql\"\n"
                             "program = \"/usr/lib/postgresql/15/bin/postgres\"\n"
                             "argv = [\"/usr/bin/pg_conftool\", \"show\", \"all\"]\n"
                             "timeout = \"10s\"\n"
                             "runtime_dirs = [\"/run/postgresql\"]\n",
                             "/etc/upgrade-guard/policy.d/pg.toml");
  ASSERT_TRUE(r) << r.error().message;
  const Validator* pg = find(p, "postgresql");
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ(p.validators.size(), default_policy().validators.size() + 1);
  EXPECT_EQ(pg->timeout, std::chrono::seconds(10));
  EXPECT_EQ(pg->runtime_dirs, (std::vector<std::string>{"/run/postgresql"}));
  EXPECT_EQ(pg->severity, Severity::block);
  EXPECT_EQ(p.origins.at("validator.postgresql.timeout"), "/etc/upgrade-guard/policy.d/pg.toml:5:11");
  EXPECT_EQ(p.origins.at("validator.postgresql.severity"), "built-in");
}

TEST(ValidatorPolicy, AnEntryWithAnEarlierNameChangesOnlyTheKeysItSets) {
  Policy p = default_policy();
  auto r = apply_policy_toml(p, "[[validator]]\nname = \"sshd\"\ntimeout = \"2m\"\n", "/a.toml");
  ASSERT_TRUE(r) << r.error().message;
  const Validator* sshd = find(p, "sshd");
  ASSERT_NE(sshd, nullptr);
  EXPECT_EQ(sshd->timeout, std::chrono::minutes(2));
  EXPECT_EQ(sshd->argv, (std::vector<std::string>{"/usr/sbin/sshd", "-t"}));  // kept
  EXPECT_EQ(sshd->runtime_dirs, (std::vector<std::string>{"/run/sshd"}));    // kept
  EXPECT_EQ(p.validators.front().name, "sshd");                              // in place
  EXPECT_EQ(p.validators.size(), default_policy().validators.size());

  // A later layer replaces argv and keeps the earlier layer's timeout and its origin.
  r = apply_policy_toml(p, "[[validator]]\nname = \"sshd\"\nargv = [\"/usr/sbin/sshd\", \"-t\", \"-f\", \"/etc/x\"]\n",
                        "/b.toml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(find(p, "sshd")->timeout, std::chrono::minutes(2));
  EXPECT_EQ(find(p, "sshd")->argv.size(), 4u);
  EXPECT_EQ(p.origins.at("validator.sshd.timeout"), "/a.toml:3:11");
  EXPECT_EQ(p.origins.at("validator.sshd.argv"), "/b.toml:3:8");
}

TEST(ValidatorPolicy, EnabledFalseTurnsABuiltInOff) {
  Policy p = default_policy();
  ASSERT_TRUE(apply_policy_toml(p, "[[validator]]\nname = \"nginx\"\nenabled = false\n", "/x.toml"));
  EXPECT_FALSE(find(p, "nginx")->enabled);
  EXPECT_TRUE(find(p, "sshd")->enabled);
  const std::string shown = render_policy(p);
  EXPECT_NE(shown.find("[[validator]]\nname = \"nginx\"  # from /x.toml:2:8\n"), std::string::npos) << shown;
  EXPECT_NE(shown.find("enabled = false  # from /x.toml:3:11\n"), std::string::npos) << shown;
}

TEST(ValidatorPolicy, PolicyShowReadsBackToTheSamePolicy) {
  Policy p = default_policy();
  ASSERT_TRUE(apply_policy_toml(p, "[[validator]]\nname = \"haproxy\"\nenabled = false\n", "/x.toml"));
  Policy again = default_policy();
  auto r = apply_policy_toml(again, render_policy(p), "/shown.toml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(find(again, "haproxy")->enabled);
  EXPECT_EQ(again.validators.size(), p.validators.size());
}

struct ValidatorError {
  const char* toml;
  const char* message;
};

class ValidatorErrors : public ::testing::TestWithParam<ValidatorError> {};

TEST_P(ValidatorErrors, NameFileLineColumnAndChangeNothing) {
  Policy p = default_policy();
  const std::string before = render_policy(p);
  auto r = apply_policy_toml(p, GetParam().toml, "/etc/upgrade-guard/policy.d/v.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, std::string("/etc/upgrade-guard/policy.d/v.toml:") + GetParam().message);
  EXPECT_EQ(render_policy(p), before);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ValidatorErrors,
    ::testing::Values(
        ValidatorError{"[[validator]]\nname = \"x\"\nprogram = \"/usr/bin/x\"\nargv = [\"/usr/bin/x\"]\ntimout = 3\n",
                       "5:1: validator[0].timout: unknown key (expected one of: name, program, argv, timeout, "
                       "runtime_dirs, warn_output, severity, enabled)"},
        ValidatorError{"[[validator]]\nname = \"new\"\nargv = [\"/usr/bin/x\"]\n",
                       "1:1: validator[0]: missing required key 'program'"},
        ValidatorError{"[[validator]]\nname = \"x\"\nprogram = \"usr/bin/x\"\nargv = [\"/usr/bin/x\"]\n",
                       "3:11: validator[0].program: 'usr/bin/x' is not an absolute path (it must start with '/')"},
        ValidatorError{"[[validator]]\nname = \"sshd\"\nargv = []\n",
                       "3:8: validator[0].argv: the command must not be empty (e.g. [\"/usr/sbin/nginx\", \"-t\"])"},
        ValidatorError{"[[validator]]\nname = \"sshd\"\nruntime_dirs = [\"/var/run/sshd\"]\n",
                       "3:17: validator[0].runtime_dirs: entry 1: '/var/run/sshd' is not under /run (the "
                       "sandbox's fresh /run)"},
        ValidatorError{"[[validator]]\nname = \"sshd\"\nenabled = \"no\"\n",
                       "3:11: validator[0].enabled: expected a boolean (true|false), got a string"},
        ValidatorError{"[[validator]]\nname = \"sshd\"\n[[validator]]\nname = \"sshd\"\n",
                       "4:8: validator[1].name: a validator named 'sshd' is already defined in this file"},
        ValidatorError{"validator = 1\n",
                       "1:13: validator: expected an array of tables ([[validator]]), got an integer"}));

}  // namespace
}  // namespace guard::policies
