#include "tests/system/guarded_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace guard::testing {

GuardedRoot::GuardedRoot(const TempDir& dir, const std::string& variant, std::uint64_t size) : dir_(dir.path()) {
  populate(variant, size, "@");
}

GuardedRoot::GuardedRoot(const TempDir& dir, Installed, const std::string& variant, std::uint64_t size)
    : dir_(dir.path()) {
  populate(variant, size, "@rootfs");
  if (!ok()) return;
  image_->unmount(top_);
  top_.clear();
  root_ = dir_ + "/root";
  if (!image_->mount(root_, "subvol=@rootfs")) error_ = "cannot mount subvol=@rootfs";
}

bool GuardedRoot::mount_top() {
  top_ = dir_ + "/top";
  return image_->mount(top_, "subvolid=5");
}

void GuardedRoot::unmount_top() {
  image_->unmount(top_);
  top_.clear();
}

bool GuardedRoot::remount_root() {
  image_->unmount(root_);
  return image_->mount(root_, "subvol=@rootfs");
}

void GuardedRoot::populate(const std::string& variant, std::uint64_t size, const std::string& subvol) {
  std::string cache = cached_root(variant);
  if (cache.empty()) {
    error_ = "cannot build the cached " + variant + " root (scripts/test-root " + variant + ")";
    return;
  }
  image_ = std::make_unique<LoopImage>(dir_ + "/image", size, "btrfs");
  if (!image_->ok()) {
    error_ = image_->error();
    return;
  }
  top_ = dir_ + "/top";
  if (!image_->mount(top_, "subvolid=5")) {
    error_ = "cannot mount the image";
    return;
  }
  root_ = top_ + "/" + subvol;
  auto sub = run({"btrfs", "subvolume", "create", root_});
  if (!sub.ok()) {
    error_ = "btrfs subvolume create: " + sub.err;
    return;
  }
  auto cp = run({"cp", "-a", "--reflink=auto", cache + "/.", root_ + "/"}, 900);
  if (!cp.ok()) {
    error_ = "cp: " + cp.err;
    return;
  }
  std::string id = image_->uuid();
  write_file(root_ + "/etc/fstab", "UUID=" + id + " / btrfs subvol=" + subvol + ",defaults 0 0\n");
  make_dirs(state_dir(), 0700);
  make_dirs(log_dir(), 0750);
}

base::ProcessResult GuardedRoot::chroot(const std::vector<std::string>& argv, int timeout_seconds) {
  base::SystemCommandRunner runner;
  base::Command cmd;
  cmd.argv = argv;
  cmd.chroot = root_;
  cmd.bind_system_dirs = true;
  cmd.timeout = std::chrono::seconds(timeout_seconds);
  cmd.env["DEBIAN_FRONTEND"] = "noninteractive";
  auto r = runner.run(cmd);
  if (!r) {
    ADD_FAILURE() << "chroot " << argv.front() << ": " << r.error().to_string();
    return {};
  }
  return *r;
}

std::string GuardedRoot::copy_into_tmp(const std::string& host_file) {
  std::string inside = "/tmp/" + std::filesystem::path(host_file).filename().string();
  std::filesystem::copy_file(host_file, path(inside), std::filesystem::copy_options::overwrite_existing);
  return inside;
}

void GuardedRootTest::SetUp() {
  if (!is_root()) UG_SKIP_OR_FAIL("needs root: loop devices, btrfs, chroot");
  root_ = std::make_unique<GuardedRoot>(dir_);
  ASSERT_TRUE(root_->ok()) << root_->error();
  make_dirs(dir_ / "pkgs");
}

std::string GuardedRootTest::deb_in_root(const DebSpec& spec) {
  return root_->copy_into_tmp(build_deb(spec, dir_ / "pkgs"));
}

std::string GuardedRootTest::elf(const std::string& source, const std::vector<std::string>& flags) {
  return compile_elf(dir_, source, flags);
}

std::string GuardedRootTest::install_ugdemo() {
  std::string lib = elf("int ug_answer(void) { return 42; }", {"-shared", "-fPIC", "-Wl,-soname,libugdemo.so.1"});
  write_file(dir_ / "libugdemo.so.1", lib, 0644);
  std::string tool = elf("int ug_answer(void); int main(void) { return ug_answer() == 42 ? 0 : 1; }",
                         {"-L" + dir_.path(), "-l:libugdemo.so.1"});
  DebSpec lib_v1{"libugdemo1", "1.0", "", {{"/usr/lib/x86_64-linux-gnu/libugdemo.so.1", {lib, 0644}}}, "", ""};
  DebSpec tool_pkg{"ugdemo-tool", "1.0", "", {{"/usr/bin/ugdemo-tool", {tool, 0755}}}, "", ""};
  auto setup = root_->chroot({"dpkg", "-i", deb_in_root(lib_v1), deb_in_root(tool_pkg)});
  EXPECT_TRUE(setup.ok()) << setup.out << setup.err;
  return lib;
}

std::string GuardedRootTest::ugdemo_breaking_upgrade() {
  return deb_in_root({"libugdemo1", "2.0", "", {{"/usr/share/doc/libugdemo1/README", {"gone\n", 0644}}}, "", ""});
}

std::string compile_elf(const TempDir& dir, const std::string& source, const std::vector<std::string>& flags) {
  static int n = 0;
  std::string out = dir / ("elf" + std::to_string(++n));
  std::string log;
  EXPECT_TRUE(compile_c(source, out, flags, &log)) << log;
  return read_file(out);
}

std::vector<std::string> GuardedRoot::guard_args(const std::vector<std::string>& args) const {
  std::vector<std::string> all{"--root",    root_,     "--state-dir", state_dir(), "--log-dir",
                               log_dir(),   "--run-dir", dir_ + "/run"};
  all.insert(all.end(), args.begin(), args.end());
  return all;
}

base::ProcessResult GuardedRoot::guard(const std::vector<std::string>& args, int timeout_seconds) {
  std::vector<std::string> argv{binary()};
  auto all = guard_args(args);
  argv.insert(argv.end(), all.begin(), all.end());
  return run(argv, timeout_seconds, {{"DEBIAN_FRONTEND", "noninteractive"}});
}

pid_t GuardedRoot::guard_in_background(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{binary()};
  auto all = guard_args(args);
  argv.insert(argv.end(), all.begin(), all.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> c;
    for (auto& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execv(c[0], c.data());
    ::_exit(127);
  }
  return pid;
}

bool GuardedRoot::guard_killed_at(const std::string& function, const std::vector<std::string>& args,
                                  bool after_return) {
  std::vector<std::string> argv{"gdb", "-q", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
                                "-ex", "break " + function, "-ex", "run"};
  if (after_return) argv.insert(argv.end(), {"-ex", "finish"});
  argv.insert(argv.end(), {"-ex", "kill", "--args", binary()});
  auto all = guard_args(args);
  argv.insert(argv.end(), all.begin(), all.end());
  auto r = run(argv, 1800, {{"DEBIAN_FRONTEND", "noninteractive"}});
  bool hit = r.out.find("Breakpoint 1, ") != std::string::npos && r.out.find("killed]") != std::string::npos;
  EXPECT_TRUE(hit) << "the guard never reached " << function << ":\n" << r.out << r.err;
  return hit;
}

std::string build_deb(const DebSpec& spec, const std::string& out_dir) {
  std::string tree = out_dir + "/" + spec.name + "-" + spec.version + ".tree";
  std::filesystem::remove_all(tree);
  make_dirs(tree + "/DEBIAN");
  std::string control = "Package: " + spec.name + "\nVersion: " + spec.version +
                        "\nArchitecture: amd64\nMaintainer: upgrade-guard tests <tests@invalid>\n"
                        "Description: upgrade-guard test package\n";
  if (!spec.depends.empty()) control += "Depends: " + spec.depends + "\n";
  write_file(tree + "/DEBIAN/control", control);
  if (!spec.preinst.empty()) write_file(tree + "/DEBIAN/preinst", "#!/bin/sh\n" + spec.preinst + "\n", 0755);
  if (!spec.postinst.empty()) write_file(tree + "/DEBIAN/postinst", "#!/bin/sh\n" + spec.postinst + "\n", 0755);
  for (const auto& [path, file] : spec.files) write_file(tree + path, file.first, file.second);
  std::string deb = out_dir + "/" + spec.name + "_" + spec.version + ".deb";
  auto r = run({"dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree, deb});
  if (!r.ok()) {
    ADD_FAILURE() << "dpkg-deb: " << r.err;
    return "";
  }
  return deb;
}

nlohmann::json parse_json(const base::ProcessResult& r) {
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON (" << e.what() << "): " << r.out << "\nstderr: " << r.err;
    return {};
  }
}

std::string slurp(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return "";
  return read_file(path);
}

}  // namespace guard::testing
