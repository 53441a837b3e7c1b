#include "base/process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>

#include "tests/common/test_env.h"

namespace guard::base {
namespace {

Command make(std::vector<std::string> argv) {
  Command c;
  c.argv = std::move(argv);
  return c;
}

ProcessResult run_ok(Command cmd) {
  SystemCommandRunner runner;
  auto r = runner.run(cmd);
  EXPECT_TRUE(r) << (r ? "" : r.error().to_string());
  return r ? *r : ProcessResult{};
}

TEST(ProcessTest, CapturesOutputAndExitCode) {
  auto r = run_ok(make({"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}));
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.describe(), "exited with status 7");
}

TEST(ProcessTest, ArgumentsAreNotInterpretedByAShell) {
  auto r = run_ok(make({"printf", "%s|", "a b", "$HOME", "; rm -rf /"}));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "a b|$HOME|; rm -rf /|");
}

TEST(ProcessTest, SignalIsReported) {
  auto r = run_ok(make({"/bin/sh", "-c", "kill -TERM $$"}));
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.describe().find("signal 15"), std::string::npos);
}

TEST(ProcessTest, TimeoutKillsTheWholeProcessGroup) {
  guard::testing::TempDir dir;
  std::string marker = dir / "grandchild-survived";
  Command cmd = make({"/bin/sh", "-c", "(sleep 3; touch " + marker + ") & sleep 30"});
  cmd.timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto r = run_ok(cmd);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_NE(r.describe().find("timed out"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a grandchild outlived the timeout";
}

TEST(ProcessTest, StdinIsFed) {
  Command cmd = make({"cat"});
  cmd.input = "hello\n";
  auto r = run_ok(cmd);
  EXPECT_EQ(r.out, "hello\n");
}

TEST(ProcessTest, EnvironmentIsAdded) {
  Command cmd = make({"/bin/sh", "-c", "echo $UG_TEST_VALUE"});
  cmd.env["UG_TEST_VALUE"] = "42";
  EXPECT_EQ(run_ok(cmd).out, "42\n");
}

TEST(ProcessTest, MissingProgramIsAnError) {
  SystemCommandRunner runner;
  auto r = runner.run(make({"/nonexistent/program"}));
  EXPECT_FALSE(r);
  auto r2 = runner.run(make({"no-such-program-anywhere"}));
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().err, ENOENT);
}

TEST(ProcessTest, LargeOutputDoesNotDeadlock) {
  auto r = run_ok(make({"/bin/sh", "-c", "head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2"}));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out.size(), 3000000u);
  EXPECT_EQ(r.err.size(), 3000000u);
}

}  // namespace
}  // namespace guard::base
