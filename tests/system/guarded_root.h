// A Debian root on a loop-mounted btrfs image, laid out like a Debian/Ubuntu install
// (`@` pinned by subvol=@ in its fstab), and .deb packages built at test time: the ground
// for end-to-end tests of `upgrade-guard run`. Everything is released by RAII.
#pragma once

#include <sys/types.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/common/test_env.h"
#include "tests/system/loop_image.h"

namespace guard::testing {

class GuardedRoot {
 public:
  // Copies the cached `variant` root into `<dir>/top/@` on a fresh btrfs image.
  GuardedRoot(const TempDir& dir, const std::string& variant = "minbase", std::uint64_t size = 3ULL << 30);
  // The installed layout: the root in subvolume `@rootfs` (fstab subvol=@rootfs), mounted at
  // `<dir>/root` with subvol=@rootfs as an installed system's / is, and the top level not
  // mounted: the guard mounts it itself. top() is "" until mount_top().
  struct Installed {};
  GuardedRoot(const TempDir& dir, Installed, const std::string& variant = "minbase", std::uint64_t size = 3ULL << 30);
  // Installed layout: mounts the top level at <dir>/top for a look at the subvolumes, and
  // unmounts it again.
  bool mount_top();
  void unmount_top();
  // Installed layout: mounts subvol=@rootfs at root() again, so it shows what that subvolume
  // is now (after a rollback exchanged it).
  bool remount_root();
  [[nodiscard]] const std::string& device() const { return image_->device(); }

  [[nodiscard]] bool ok() const { return error_.empty(); }
  [[nodiscard]] const std::string& error() const { return error_; }
  // The root as --root takes it, e.g. /tmp/ug-test.X/top/@
  [[nodiscard]] const std::string& root() const { return root_; }
  // The top level of the image, e.g. /tmp/ug-test.X/top
  [[nodiscard]] const std::string& top() const { return top_; }
  [[nodiscard]] std::string state_dir() const { return dir_ + "/state"; }
  [[nodiscard]] std::string log_dir() const { return dir_ + "/log"; }
  // root() + rel
  [[nodiscard]] std::string path(const std::string& rel) const { return root_ + rel; }

  // Runs argv chrooted into the root (/proc, /sys, /dev bound), e.g. {"apt-get", "update"}.
  base::ProcessResult chroot(const std::vector<std::string>& argv, int timeout_seconds = 900);
  // Copies a host file into the root's /tmp; returns its path inside, e.g. "/tmp/x_1.0.deb".
  std::string copy_into_tmp(const std::string& host_file);
  // Runs the built upgrade-guard with --root, --state-dir and --log-dir of this root.
  base::ProcessResult guard(const std::vector<std::string>& args, int timeout_seconds = 1800);
  // Starts the built upgrade-guard with --root, --state-dir, --log-dir and --run-dir of this
  // root and `args` in the background (output to /dev/null); returns its pid for waitpid/kill.
  pid_t guard_in_background(const std::vector<std::string>& args) const;
  // Runs the built upgrade-guard with `args` under gdb and kills it (SIGKILL) the first time it
  // enters `function` (with `after_return`, once that call returned): exactly what kill -9 at
  // that moment leaves, with no test hook in the program. e.g.
  // guard_killed_at("guard::state::StateStore::set_rollback_state", {"run", "--", ...}).
  // True when the program was killed there; false (and a test failure) when it never got there.
  bool guard_killed_at(const std::string& function, const std::vector<std::string>& args, bool after_return = false);
  // The guard's arguments for this root, before the subcommand's own.
  [[nodiscard]] std::vector<std::string> guard_args(const std::vector<std::string>& args) const;

 private:
  std::string dir_;
  std::string top_;
  std::string root_;
  std::string error_;
  std::unique_ptr<LoopImage> image_;
  void populate(const std::string& variant, std::uint64_t size, const std::string& subvol);
};

// A binary package built with dpkg-deb. Files map an absolute path to (content, mode).
struct DebSpec {
  std::string name;
  std::string version = "1.0";
  std::string depends;
  std::map<std::string, std::pair<std::string, mode_t>> files;
  std::string preinst;   // script text, may be empty
  std::string postinst;  // script text, may be empty
};

// Builds `spec` into `<out_dir>/<name>_<version>.deb`; returns its path ("" and a test
// failure when dpkg-deb fails).
std::string build_deb(const DebSpec& spec, const std::string& out_dir);

// Compiles C `source` with `flags` into a file under `dir` and returns its bytes (a test
// failure when cc fails), e.g. compile_elf(dir, "int main(void){return 0;}", {}).
std::string compile_elf(const TempDir& dir, const std::string& source, const std::vector<std::string>& flags);

// A test on a GuardedRoot of the cached minbase root: skipped without root (failed in CI),
// with a temp dir for packages and ELF files built at test time.
class GuardedRootTest : public ::testing::Test {
 protected:
  void SetUp() override;
  // Builds a package and copies it into the root's /tmp; returns the path inside the root.
  std::string deb_in_root(const DebSpec& spec);
  std::string elf(const std::string& source, const std::vector<std::string>& flags);
  // Installs (dpkg -i) libugdemo1 1.0, shipping /usr/lib/x86_64-linux-gnu/libugdemo.so.1, and
  // ugdemo-tool, whose /usr/bin/ugdemo-tool needs it. Returns the library's bytes.
  std::string install_ugdemo();
  // libugdemo1 2.0, which no longer ships the library the tool needs: the path in the root.
  std::string ugdemo_breaking_upgrade();

  TempDir dir_{"ug-sys"};
  std::unique_ptr<GuardedRoot> root_;
};

// A command's stdout as JSON; a test failure (and null) when it is not JSON.
nlohmann::json parse_json(const base::ProcessResult& r);

// Reads a file's bytes, or "" when it does not exist.
std::string slurp(const std::string& path);

}  // namespace guard::testing
