// Shared test helpers: temp dirs, fixture files, the built binary, and privilege skips that
// become failures in CI.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "base/process.h"

namespace guard::testing {

// True when CI=true: a test that would skip for lack of root, loop devices or network fails.
bool in_ci();

// Skips the test with `reason` on a laptop; fails it in CI. Use as:
//   if (!is_root()) UG_SKIP_OR_FAIL("needs root for loop devices");
#define UG_SKIP_OR_FAIL(reason)                                                   \
  do {                                                                            \
    if (::guard::testing::in_ci()) {                                              \
      FAIL() << "CI=true and this test cannot run: " << (reason);                 \
    } else {                                                                      \
      GTEST_SKIP() << (reason);                                                   \
    }                                                                             \
  } while (0)

bool is_root();

// A directory under $TMPDIR removed (recursively, without crossing mounts) when it goes
// out of scope, unless UG_KEEP_TEST_DIRS=1 or the test failed and UG_KEEP_FAILED=1.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "ug-test");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  [[nodiscard]] const std::string& path() const { return path_; }
  // path() + "/" + rel
  [[nodiscard]] std::string operator/(const std::string& rel) const;

 private:
  std::string path_;
};

// Creates parent directories as needed. `rel` is relative to `dir`.
void write_file(const std::string& path, const std::string& content, mode_t mode = 0644);
std::string read_file(const std::string& path);
void make_dirs(const std::string& path, mode_t mode = 0755);
void make_symlink(const std::string& target, const std::string& link_path);

// Runs argv with the system runner (captured output, timeout) and returns the result;
// fails the test if it cannot start.
base::ProcessResult run(const std::vector<std::string>& argv, int timeout_seconds = 600,
                        const std::map<std::string, std::string>& env = {});

// The built upgrade-guard binary.
std::string binary();
// Runs the built binary with `args`.
base::ProcessResult run_guard(const std::vector<std::string>& args, int timeout_seconds = 600);

// Installs the built binary into a Debian root as /usr/sbin/upgrade-guard, with the host
// libraries it links that the root lacks (libfmt, libtbb, boost...) copied to
// /usr/local/lib and `ldconfig -r`, so that it runs chrooted or booted in that root.
// e.g. install_guard_into("/tmp/ug-boot.X1/root").
[[nodiscard]] base::Result<void> install_guard_into(const std::string& root_dir);

// Compiles C `source` with cc into `output` with extra `flags` (e.g. "-shared", "-m32");
// returns false (with the compiler's output in `log`) on failure.
bool compile_c(const std::string& source, const std::string& output, const std::vector<std::string>& flags,
               std::string* log = nullptr);

}  // namespace guard::testing
