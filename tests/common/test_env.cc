#include "tests/common/test_env.h"

#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/root.h"
#include "base/strings.h"

namespace guard::testing {

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

bool is_root() { return ::geteuid() == 0; }

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  const char* keep = std::getenv("UG_KEEP_TEST_DIRS");
  if (keep != nullptr && std::string(keep) == "1") return;
  const char* keep_failed = std::getenv("UG_KEEP_FAILED");
  if (keep_failed != nullptr && std::string(keep_failed) == "1" && ::testing::Test::HasFailure()) return;
  // FTW_MOUNT: never descend into something a failed test left mounted here.
  ::nftw(
      path_.c_str(),
      [](const char* p, const struct stat*, int flag, struct FTW*) -> int {
        if (flag == FTW_DP) {
          ::rmdir(p);
        } else {
          ::chmod(p, 0700);
          ::unlink(p);
        }
        return 0;
      },
      64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  ::rmdir(path_.c_str());
}

std::string TempDir::operator/(const std::string& rel) const { return path_ + "/" + rel; }

void make_dirs(const std::string& path, mode_t mode) {
  std::filesystem::create_directories(path);
  ::chmod(path.c_str(), mode);
}

void write_file(const std::string& path, const std::string& content, mode_t mode) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  ::chmod(path.c_str(), mode);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void make_symlink(const std::string& target, const std::string& link_path) {
  std::filesystem::create_directories(std::filesystem::path(link_path).parent_path());
  std::filesystem::remove(link_path);
  std::filesystem::create_symlink(target, link_path);
}

base::ProcessResult run(const std::vector<std::string>& argv, int timeout_seconds,
                        const std::map<std::string, std::string>& env) {
  base::SystemCommandRunner runner;
  base::Command cmd;
  cmd.argv = argv;
  cmd.timeout = std::chrono::seconds(timeout_seconds);
  cmd.env = env;
  auto r = runner.run(cmd);
  if (!r) {
    ADD_FAILURE() << "cannot run " << argv.front() << ": " << r.error().to_string();
    return {};
  }
  return *r;
}

std::string binary() { return UG_BINARY; }

base::ProcessResult run_guard(const std::vector<std::string>& args, int timeout_seconds) {
  std::vector<std::string> argv{binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, timeout_seconds);
}

bool compile_c(const std::string& source, const std::string& output, const std::vector<std::string>& flags,
               std::string* log) {
  std::string src = output + ".c";
  write_file(src, source);
  std::vector<std::string> argv{"cc", "-o", output, src};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto r = run(argv, 120);
  if (log != nullptr) *log = r.out + r.err;
  return r.ok();
}

base::Result<void> install_guard_into(const std::string& root_dir) {
  namespace fs = std::filesystem;
  auto root = base::Root::open(root_dir);
  if (!root) return base::fail(root.error());
  std::error_code ec;
  std::string target = root_dir + "/usr/sbin/upgrade-guard";
  fs::copy_file(binary(), target, fs::copy_options::overwrite_existing, ec);
  if (ec) return base::fail("copy", binary(), ec.message());
  ::chmod(target.c_str(), 0755);
  // `ldd` lines: "libfmt.so.9 => /lib/x86_64-linux-gnu/libfmt.so.9 (0x...)".
  auto ldd = run({"ldd", binary()}, 60);
  if (ldd.exit_code != 0) return base::fail("ldd", binary(), ldd.err);
  for (auto line : base::split(ldd.out, '\n')) {
    auto fields = base::split_ws(line);
    if (fields.size() < 3 || fields[1] != "=>" || fields[2].empty() || fields[2].front() != '/') continue;
    std::string host_path(fields[2]);
    auto in_root = root->exists(host_path);
    auto in_usr = root->exists("/usr/lib/x86_64-linux-gnu/" + std::string(fields[0]));
    if ((in_root && *in_root) || (in_usr && *in_usr)) continue;
    fs::copy_file(host_path, root_dir + "/usr/local/lib/" + fs::path(host_path).filename().string(),
                  fs::copy_options::overwrite_existing, ec);
    if (ec) return base::fail("copy", host_path, ec.message());
  }
  auto ldconfig = run({"ldconfig", "-r", root_dir}, 120);
  if (ldconfig.exit_code != 0) return base::fail("ldconfig", root_dir, ldconfig.err);
  return {};
}

}  // namespace guard::testing
