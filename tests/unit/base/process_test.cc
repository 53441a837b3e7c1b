#include "base/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

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

// Boost.Process 1.74's environment find() compared a key's "NAME=" against every entry for the
// key's length, past the end of shorter entries (a heap over-read ASan aborts on). An entry
// shorter than the key, on the heap (past the short-string buffer), and a key that is not
// there yet make every comparison of the old code read too far; built with -DUG_ASAN=ON
// this test aborted before the environment was built by the project.
TEST(ProcessTest, EnvironmentOverridesLongerThanEntriesAreSetAndReplaced) {
  ASSERT_EQ(::setenv("UG_SHORT_ENTRY", "xy", 1), 0);  // "UG_SHORT_ENTRY=xy": 17 bytes
  ASSERT_EQ(::setenv("UG_REPLACED", "old", 1), 0);
  const std::string long_key = "UG_A_VARIABLE_NAME_LONGER_THAN_THE_SHORT_ENTRY";
  Command cmd = make({"/bin/sh", "-c", "echo \"$" + long_key + "|$UG_REPLACED|$UG_SHORT_ENTRY\"; env | grep -c ^UG_REPLACED="});
  cmd.env[long_key] = "long";
  cmd.env["UG_REPLACED"] = "new";
  auto r = run_ok(cmd);
  ::unsetenv("UG_SHORT_ENTRY");
  ::unsetenv("UG_REPLACED");
  EXPECT_EQ(r.out, "long|new|xy\n1\n");
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

namespace guard::base {
namespace {

TEST(ProcessTest, TeeWritesTheLogAndKeepsTheTail) {
  guard::testing::TempDir dir;
  Command cmd = make({"/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 3"});
  cmd.output = Output::tee;
  cmd.tee_file = dir / "run.log";
  auto r = run_ok(cmd);
  EXPECT_EQ(r.exit_code, 3);
  std::string log = guard::testing::read_file(dir / "run.log");
  EXPECT_NE(log.find("to-out\n"), std::string::npos);
  EXPECT_NE(log.find("to-err\n"), std::string::npos);
  EXPECT_NE(r.out.find("to-out"), std::string::npos);
}

TEST(ProcessTest, ChrootGetsProcSysDevAndLeavesNoMount) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("chroot needs root");
  guard::testing::TempDir dir;
  for (const char* d : {"proc", "sys", "dev"}) guard::testing::make_dirs(dir / d);
  std::string log;
  ASSERT_TRUE(guard::testing::compile_c(R"(
#include <stdio.h>
#include <sys/stat.h>
int main(void) {
  struct stat st;
  if (stat("/proc/self/status", &st) != 0) return 10;
  if (stat("/dev/null", &st) != 0 || !S_ISCHR(st.st_mode) || (st.st_mode & 0666) != 0666) return 11;
  if (stat("/dev/pts", &st) != 0 || stat("/dev/urandom", &st) != 0) return 14;
  if (stat("/sys/kernel", &st) != 0) return 12;
  if (stat("/probe", &st) != 0) return 13;  /* we are inside the chroot */
  puts("inside");
  return 0;
})", dir / "probe", {"-static"}, &log)) << log;
  Command cmd = make({"/probe"});
  cmd.chroot = dir.path();
  cmd.bind_system_dirs = true;
  auto r = run_ok(cmd);
  EXPECT_TRUE(r.ok()) << r.describe() << r.err;
  EXPECT_EQ(r.out, "inside\n");
  // The binds lived in the child's private namespace: nothing is mounted here.
  std::string mounts = guard::testing::read_file("/proc/self/mountinfo");
  EXPECT_EQ(mounts.find(dir.path()), std::string::npos) << mounts;
}

}  // namespace
}  // namespace guard::base
