// The CLI as a user meets it: the built binary, its exit codes and output.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tests/common/test_env.h"

namespace guard {
namespace {

using guard::testing::run_guard;
using guard::testing::TempDir;

TEST(CliTest, HelpDescribesEverySubcommandAndExitCodes) {
  auto r = run_guard({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word : {"check", "run", "gate", "audit", "snapshot", "rollback", "history", "recover",
                           "policy", "Exit codes", "rolled back"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word;
  }
  for (const char* sub : {"check", "policy", "history", "audit", "baseline"}) {
    auto h = run_guard({sub, "--help"});
    EXPECT_EQ(h.exit_code, 0) << sub;
    EXPECT_NE(h.out.find("Usage: upgrade-guard " + std::string(sub)), std::string::npos) << h.out;
  }
}

TEST(CliTest, UnknownOptionIsAUsageError) {
  auto r = run_guard({"check", "--no-such-option"});
  EXPECT_EQ(r.exit_code, 2);
  auto none = run_guard({});
  EXPECT_EQ(none.exit_code, 2);
}

TEST(CliTest, PolicyValidateNamesFileLineColumnAndKey) {
  TempDir dir;
  std::string bad = dir / "bad.toml";
  guard::testing::write_file(bad, "on_fail = \"rollback\"\n[checks.symlinks]\nseverity = \"high\"\n", 0644);
  auto r = run_guard({"policy", "validate", "--policy", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(bad + ":3:12: checks.symlinks.severity"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(bad + ":3:12: checks.symlinks.severity: unknown severity 'high' (expected off, info, warn or block): " + bad),
            0u + std::string::npos) << "the file is named once: " << r.err;

  std::string good = dir / "good.toml";
  guard::testing::write_file(good, "on_fail = \"warn\"\n", 0644);
  auto ok = run_guard({"policy", "validate", "--policy", good});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  auto show = run_guard({"policy", "show", "--policy", good});
  EXPECT_EQ(show.exit_code, 0);
  EXPECT_NE(show.out.find("on_fail = \"warn\"  # from " + good + ":1:11"), std::string::npos) << show.out;
}

// Policies that crashed toml++ 3.3.0 (a 40,000-part dotted key overflowed its stack: SIGSEGV, in
// `hook pre` too, which made apt fail) or reached its __builtin_unreachable (a combining accent
// at a line's start): refused by the project's pre-check with the place; `hook pre` leaves apt
// alone (exit 0) and says the run is not guarded.
TEST(CliTest, PoliciesThatCrashedTheTomlParserAreRefusedWithTheirPlace) {
  TempDir dir;
  std::string deep_key = "a";
  for (int i = 1; i < 40000; ++i) deep_key += ".a";
  const struct {
    const char* name;
    std::string text;
    std::string where;
  } cases[] = {
      {"dotted.toml", deep_key + " = 1\n", ":1:33: a key with more than 16 dotted parts"},
      {"combining.toml", "on_fail = \"warn\"\n\xCC\x81 = 1\n", ":2:1: character U+0301 outside a string or comment"},
      {"nested.toml", "a = " + std::string(100000, '[') + std::string(100000, ']') + "\n",
       ":1:13: arrays and inline tables nested more than 8 deep"},
  };
  for (const auto& c : cases) {
    std::string file = dir / c.name;
    guard::testing::write_file(file, c.text, 0644);
    auto v = run_guard({"policy", "validate", "--policy", file}, 60);
    EXPECT_EQ(v.signal, 0) << c.name;
    EXPECT_EQ(v.exit_code, 2) << c.name;
    EXPECT_NE(v.err.find(file + c.where), std::string::npos) << v.err;
    TempDir state;
    auto h = run_guard({"--state-dir", state.path(), "--policy", file, "hook", "pre"}, 60);
    EXPECT_EQ(h.signal, 0) << c.name;
    EXPECT_EQ(h.exit_code, 0) << c.name << ": " << h.err;
    if (::geteuid() == 0) {
      EXPECT_NE(h.err.find("this apt run is NOT guarded: " + file + c.where), std::string::npos) << h.err;
    }
  }
}

TEST(CliTest, GroupWritablePolicyIsRefused) {
  TempDir dir;
  std::string file = dir / "policy.toml";
  guard::testing::write_file(file, "on_fail = \"warn\"\n", 0664);
  auto r = run_guard({"policy", "validate", "--policy", file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("writable by group or other"), std::string::npos) << r.err;
}

TEST(CliTest, CheckOnAMissingRootIsAUsageError) {
  auto r = run_guard({"check", "--root", "/nonexistent-root-ug"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST(CliTest, CheckJsonHasSchemaOne) {
  TempDir root;
  guard::testing::make_dirs(root / "etc");
  TempDir state;
  auto r = run_guard({"check", "--root", root.path(), "--state-dir", state.path(), "--json", "--checks", "symlinks"});
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["schema"], 1);
  EXPECT_EQ(j["root"], root.path());
  EXPECT_TRUE(j["findings"].is_array());
}

// A root's contents with terminal escape sequences (a link target, a dpkg status line): the
// human output of check shows them escaped, never as raw control bytes; JSON escapes them itself.
TEST(CliTest, EscapeSequencesFromTheRootAreNotPrintedRaw) {
  TempDir root;
  TempDir state;
  guard::testing::make_dirs(root / "usr/bin");
  ASSERT_EQ(::symlink("/nonexistent\x1b[2J\x9b\xff", (root / "usr/bin/evil").c_str()), 0);
  guard::testing::write_file(root / "var/lib/dpkg/status",
                             "Package: hello\nStatus: install ok half-configured\nArchitecture: amd64\n"
                             "Version: 2.10\x1b]0;owned\x07\n\n");
  guard::testing::write_file(root / "var/lib/dpkg/info/hello.list", "/usr\n/usr/bin\n");
  const std::vector<std::string> args{"check", "--root", root.path(), "--state-dir", state.path(), "--checks",
                                      "symlinks,dpkg-state"};
  auto r = run_guard(args);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find('\x07'), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/nonexistent\\x1b[2J\\x9b\\xff"), std::string::npos) << r.out;
  // JSON of invalid UTF-8 from the root: the report, with U+FFFD in place of the bad bytes (it
  // used to end with "internal error: [json.exception.type_error.316]", exit 4; the same dump
  // stores a run's report in the state database).
  auto bad_json_args = args;
  bad_json_args.push_back("--json");
  auto bad = run_guard(bad_json_args);
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.out.find("/nonexistent\\u001b[2J\xef\xbf\xbd"), std::string::npos) << bad.out;
  // JSON with a valid-UTF-8 ESC.
  ASSERT_EQ(::unlink((root / "usr/bin/evil").c_str()), 0);
  ASSERT_EQ(::symlink("/nonexistent\x1b[2J", (root / "usr/bin/evil").c_str()), 0);
  auto args_json = args;
  args_json.push_back("--json");
  auto j = run_guard(args_json);
  EXPECT_EQ(j.out.find('\x1b'), std::string::npos);
  EXPECT_NE(j.out.find("\\u001b[2J"), std::string::npos) << j.out;
}

// A host where another tool rewrote one package's files (npm over Debian's nodejs): the human
// report is one line for that package, with the first paths; --verbose and --json give all.
TEST(CliTest, ManyFindingsOfOnePackageAreOneLineWithTheFirstPaths) {
  TempDir root;
  TempDir state;
  std::string status;
  std::string nodejs_list = "/usr\n/usr/lib\n/usr/lib/node_modules\n";
  for (int i = 0; i < 40; ++i) nodejs_list += "/usr/lib/node_modules/npm/lib/f" + std::to_string(i) + ".js\n";
  status += "Package: nodejs\nStatus: install ok installed\nArchitecture: amd64\nVersion: 18.19.0\n\n";
  status += "Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10\n\n";
  guard::testing::write_file(root / "var/lib/dpkg/status", status);
  guard::testing::write_file(root / "var/lib/dpkg/info/nodejs.list", nodejs_list);
  guard::testing::write_file(root / "var/lib/dpkg/info/hello.list", "/usr\n/usr/bin\n/usr/bin/hello\n");
  guard::testing::make_dirs(root / "usr/lib/node_modules/npm/lib");
  const std::vector<std::string> args{"check", "--root", root.path(), "--state-dir", state.path(), "--checks",
                                      "package-files"};
  auto r = run_guard(args);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("BLOCK nodejs: 40 files missing\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/usr/lib/node_modules/npm/lib/f0.js"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("/usr/lib/node_modules/npm/lib/f3.js"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("... and 37 more (--verbose or --json lists every one)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/usr/bin/hello"), std::string::npos) << r.out;  // a lone finding: its own line
  EXPECT_LT(std::count(r.out.begin(), r.out.end(), '\n'), 15) << r.out;

  auto args_verbose = args;
  args_verbose.push_back("--verbose");
  auto verbose = run_guard(args_verbose);
  EXPECT_NE(verbose.out.find("/usr/lib/node_modules/npm/lib/f39.js"), std::string::npos) << verbose.out;
  auto args_json = args;
  args_json.push_back("--json");
  auto j = nlohmann::json::parse(run_guard(args_json).out);
  EXPECT_EQ(j["findings"].size(), 42u);  // and hello's missing /usr/bin directory
}

// /etc/kernel/postinst.d/zz-upgrade-guard: the version is noted for the next trial boot; a bad
// argument is said and never fails the kernel's configure.
TEST(CliTest, HookKernelNotesTheVersionAndNeverFails) {
  TempDir state;
  auto r = run_guard({"--state-dir", state.path(), "hook", "kernel", "6.1.0-99-amd64", "/boot/vmlinuz-6.1.0-99-amd64"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(guard::testing::read_file(state / "next-kernel"), "6.1.0-99-amd64\n");
  auto bad = run_guard({"--state-dir", state.path(), "hook", "kernel", "../../etc"});
  EXPECT_EQ(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("is not noted"), std::string::npos) << bad.err;
  auto missing_dir = run_guard({"--state-dir", state / "no/such/dir", "hook", "kernel", "6.1.0-99-amd64"});
  EXPECT_EQ(missing_dir.exit_code, 0) << missing_dir.err;
}

}  // namespace
}  // namespace guard
