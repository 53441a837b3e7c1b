// The validators check with a runner that answers by program: which validators run (installed,
// enabled), how (sandboxed, chrooted, argv, timeout, runtime dirs), and how each outcome is
// rated: a failure at the validator's severity with a stable id, a timeout, a sandbox error or
// output naming what only a boot provides as a warning.
#include "checks/validators.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/common/test_env.h"
#include "tests/unit/checks/single_check_fixture.h"

namespace guard::checks {
namespace {

using guard::testing::TempDir;
using guard::testing::write_file;

// Answers each command by its argv[0]: a scripted result, an error, or exit 0.
class ScriptedRunner : public base::CommandRunner {
 public:
  base::Result<base::ProcessResult> run(const base::Command& command) override {
    commands.push_back(command);
    const std::string& program = command.argv.front();
    if (errors.count(program)) return base::fail("unshare", program, errors[program]);
    auto it = results.find(program);
    if (it != results.end()) return it->second;
    base::ProcessResult ok;
    ok.exit_code = 0;
    return ok;
  }
  std::vector<base::Command> commands;
  std::map<std::string, base::ProcessResult> results;
  std::map<std::string, std::string> errors;
};

base::ProcessResult exited(int code, std::string out) {
  base::ProcessResult r;
  r.exit_code = code;
  r.out = std::move(out);
  return r;
}

struct Fixture {
  TempDir dir;
  policies::Policy policy;  // with the built-in validators
  ScriptedRunner runner;
  std::optional<base::Root> root;
  Fixture() {
    guard::testing::make_dirs(dir / "etc");
    root.emplace(std::move(*base::Root::open(dir.path())));
  }
  void install(const std::string& program, mode_t mode = 0755) {
    write_file(dir / program.substr(1), "#!/bin/sh\n", mode);
  }
  CheckOutput run() {
    CheckContext ctx{*root, policy, {}, &runner, false, {}, {}, {}};
    auto out = ValidatorsCheck().run(ctx);
    EXPECT_TRUE(out) << out.error().to_string();
    return out ? *out : CheckOutput{};
  }
};

TEST(ValidatorsCheck, SkippedWhenNoValidatorIsInstalled) {
  Fixture fx;
  fx.install("/usr/sbin/nginx", 0644);  // not executable: not installed
  auto out = fx.run();
  EXPECT_TRUE(fx.runner.commands.empty());
  EXPECT_EQ(out.items, 0u);
  EXPECT_EQ(out.skipped, "no validator's program is installed in the root");
}

TEST(ValidatorsCheck, RunsOnlyInstalledValidatorsSandboxedInTheRoot) {
  Fixture fx;
  fx.install("/usr/sbin/sshd");
  auto out = fx.run();
  EXPECT_TRUE(out.findings.empty()) << test::dump(out);
  EXPECT_EQ(out.items, 1u);
  ASSERT_EQ(fx.runner.commands.size(), 1u);
  const base::Command& c = fx.runner.commands[0];
  EXPECT_EQ(c.argv, (std::vector<std::string>{"/usr/sbin/sshd", "-t"}));
  EXPECT_EQ(c.chroot.value_or(""), fx.root->host_path("/"));
  ASSERT_TRUE(c.sandbox);
  EXPECT_EQ(c.sandbox->runtime_dirs, (std::vector<std::string>{"/run/sshd"}));
  EXPECT_EQ(c.timeout, std::chrono::seconds(30));
}

TEST(ValidatorsCheck, AFailureBlocksWithAStableIdAndTheValidatorsOutput) {
  Fixture fx;
  fx.install("/usr/sbin/sshd");
  fx.runner.results["/usr/sbin/sshd"] =
      exited(255, "/etc/ssh/sshd_config line 124: Bad SSH2 cipher spec 'no-such-cipher'.\n");
  auto out = fx.run();
  ASSERT_EQ(out.findings.size(), 1u) << test::dump(out);
  const Finding& f = out.findings[0];
  EXPECT_EQ(f.check, "validators");
  EXPECT_EQ(f.severity, Severity::block);
  EXPECT_EQ(f.path, "/usr/sbin/sshd");
  EXPECT_EQ(f.id, "validator:sshd");
  EXPECT_EQ(f.message,
            "validator 'sshd' (/usr/sbin/sshd -t) exited with status 255: /etc/ssh/sshd_config line 124: Bad SSH2 "
            "cipher spec 'no-such-cipher'.");
  // The key a baseline stores does not hold the volatile message.
  Finding other = f;
  other.message = "exited with status 1";
  EXPECT_EQ(other.key(), f.key());
}

TEST(ValidatorsCheck, OutputThatOnlyABootProvidesIsAWarning) {
  Fixture fx;
  fx.install("/usr/sbin/sshd");
  fx.runner.results["/usr/sbin/sshd"] = exited(1, "sshd: no hostkeys available -- exiting.\n");
  auto out = fx.run();
  ASSERT_EQ(out.findings.size(), 1u);
  EXPECT_EQ(out.findings[0].severity, Severity::warn);
}

TEST(ValidatorsCheck, ATimeoutIsAWarningNotAPass) {
  Fixture fx;
  fx.policy.validators.push_back({"slow", "/usr/bin/slow", {"/usr/bin/slow"}, std::chrono::seconds(2), {}, {},
                                  Severity::block, true});
  fx.install("/usr/bin/slow");
  base::ProcessResult r;
  r.timed_out = true;
  r.duration = std::chrono::seconds(2);
  fx.runner.results["/usr/bin/slow"] = r;
  auto out = fx.run();
  ASSERT_EQ(out.findings.size(), 1u) << test::dump(out);
  EXPECT_EQ(out.findings[0].severity, Severity::warn);
  EXPECT_NE(out.findings[0].message.find("timed out after 2s"), std::string::npos) << out.findings[0].message;
  EXPECT_EQ(fx.runner.commands[0].timeout, std::chrono::seconds(2));
}

TEST(ValidatorsCheck, ASandboxThatCannotBeBuiltIsAWarning) {
  Fixture fx;
  fx.install("/usr/sbin/sshd");
  fx.runner.errors["/usr/sbin/sshd"] = "Operation not permitted";
  auto out = fx.run();
  ASSERT_EQ(out.findings.size(), 1u);
  EXPECT_EQ(out.findings[0].severity, Severity::warn);
  EXPECT_NE(out.findings[0].message.find("could not run in its sandbox"), std::string::npos);
}

TEST(ValidatorsCheck, DisabledAndOffValidatorsDoNotRun) {
  Fixture fx;
  fx.install("/usr/sbin/sshd");
  fx.install("/usr/sbin/nginx");
  for (auto& v : fx.policy.validators) {
    if (v.name == "sshd") v.enabled = false;
    if (v.name == "nginx") v.severity = Severity::off;
  }
  auto out = fx.run();
  EXPECT_TRUE(fx.runner.commands.empty());
  EXPECT_EQ(out.items, 0u);
}

TEST(ValidatorsCheck, TheProgramIsLookedUpInsideTheRoot) {
  Fixture fx;
  // An absolute symlink resolves inside the root, not on the host.
  guard::testing::make_dirs(fx.dir / "usr/sbin");
  ASSERT_EQ(::symlink("/bin/true", (fx.dir / "usr/sbin/sshd").c_str()), 0);
  auto out = fx.run();
  EXPECT_TRUE(fx.runner.commands.empty()) << "the host's /bin/true counted as the root's sshd";
}

TEST(OutputExcerpt, FirstLinesBoundedAndControlCharactersEscaped) {
  EXPECT_EQ(output_excerpt("\n  one\n\ntwo\x1b[31m\nthree\nfour\nfive\n"), "one | two\\x1b[31m | three | four | ...");
  EXPECT_EQ(output_excerpt(std::string(500, 'a')), std::string(200, 'a') + "...");
  EXPECT_EQ(output_excerpt(""), "");
  EXPECT_EQ(output_excerpt("caf\xc3\xa9"), "caf\\xc3\\xa9");
}

}  // namespace
}  // namespace guard::checks
