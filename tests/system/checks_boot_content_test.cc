// The boot check's content validity on real debootstrapped Debian 12 and 13 server roots (a
// real linux-image package, initramfs-tools' own initrd): healthy gives no blocking finding;
// a truncated initrd, a truncated kernel image and a module built for another kernel make
// `upgrade-guard check` exit 1 with the blocking boot finding.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

#include "tests/common/test_env.h"
#include "tests/system/guarded_root.h"

namespace guard::testing {
namespace {

namespace fs = std::filesystem;

// One copy of each cached root for the whole suite; every test puts back what it broke.
struct RootCopy {
  TempDir tmp{"ug-boot-content"};
  std::string root;
  std::string version;
  std::string error;
};

RootCopy& copy_of(const std::string& variant) {
  static std::map<std::string, std::unique_ptr<RootCopy>> copies;
  auto& slot = copies[variant];
  if (slot) return *slot;
  slot = std::make_unique<RootCopy>();
  auto r = run({std::string(UG_SOURCE_DIR) + "/scripts/test-root", variant}, 3600);
  if (!r.ok()) {
    slot->error = "scripts/test-root " + variant + " failed: " + r.describe() + " " + r.err;
    return *slot;
  }
  std::string src = r.out.substr(0, r.out.find('\n'));
  slot->root = slot->tmp / "root";
  auto cp = run({"cp", "-a", "--reflink=auto", src, slot->root});
  if (!cp.ok()) slot->error = "cp failed: " + cp.err;
  for (const auto& e : fs::directory_iterator(slot->root + "/boot")) {
    std::string name = e.path().filename();
    if (name.rfind("vmlinuz-", 0) == 0) slot->version = name.substr(8);
  }
  if (slot->version.empty() && slot->error.empty()) slot->error = "the " + variant + " root has no kernel";
  return *slot;
}

// Keeps a file's bytes and puts them back (or removes the file if it did not exist).
class Restore {
 public:
  explicit Restore(std::string path) : path_(std::move(path)), existed_(fs::exists(path_)) {
    if (existed_) bytes_ = read_file(path_);
  }
  Restore(const Restore&) = delete;
  Restore& operator=(const Restore&) = delete;
  ~Restore() {
    if (existed_) {
      write_file(path_, bytes_);
    } else {
      fs::remove(path_);
    }
  }

 private:
  std::string path_;
  bool existed_;
  std::string bytes_;
};

class BootContent : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!is_root()) UG_SKIP_OR_FAIL("needs root to copy the debootstrapped root");
    RootCopy& c = copy_of(GetParam());
    if (!c.error.empty()) UG_SKIP_OR_FAIL(c.error);
    root_ = c.root;
    v_ = c.version;
  }

  // `upgrade-guard --root ROOT check --json` (all checks, or only `checks`).
  base::ProcessResult check(const std::string& checks = "") {
    std::vector<std::string> args{"--root",    root_,     "--state-dir", state_ / "state", "--log-dir",
                                  state_ / "log", "--run-dir", state_ / "run", "check", "--json"};
    if (!checks.empty()) args.insert(args.end(), {"--checks", checks});
    return run_guard(args, 1800);
  }

  static std::vector<nlohmann::json> boot_blocking(const nlohmann::json& report) {
    std::vector<nlohmann::json> out;
    for (const auto& f : report["findings"])
      if (f["check"] == "boot" && f["blocking"] == true) out.push_back(f);
    return out;
  }

  static bool has(const std::vector<nlohmann::json>& fs, const std::string& path, const std::string& text) {
    for (const auto& f : fs)
      if (f["path"] == path && f["message"].get<std::string>().find(text) != std::string::npos) return true;
    return false;
  }

  std::string root_;
  std::string v_;
  TempDir state_{"ug-boot-content-state"};
};

TEST_P(BootContent, HealthyRootHasNoBlockingBootFinding) {
  // As installed: the root filesystem named in fstab, so its modules must be in the initrd.
  for (const char* fstype : {"", "btrfs", "ext4"}) {
    Restore fstab(root_ + "/etc/fstab");
    if (*fstype != '\0') write_file(root_ + "/etc/fstab", std::string("UUID=aaaa / ") + fstype + " defaults 0 1\n");
    auto started = std::chrono::steady_clock::now();
    auto r = check("boot");
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    nlohmann::json j = parse_json(r);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(boot_blocking(j).empty()) << j.dump(2);
    for (const auto& c : j["checks"])
      if (c["id"] == "boot") {
        EXPECT_EQ(c["status"], "passed") << c.dump();
        std::cout << GetParam() << " root fs '" << fstype << "': boot check " << c["duration_ms"] << " ms, "
                  << c["items"] << " items; upgrade-guard " << seconds << " s\n";
      }
  }
}

TEST_P(BootContent, TruncatedInitrdBlocks) {
  std::string initrd = root_ + "/boot/initrd.img-" + v_;
  Restore keep(initrd);
  std::uintmax_t size = fs::file_size(initrd);
  fs::resize_file(initrd, size * 2 / 3);
  // The breakage is real: initramfs-tools' own tools cannot read it to its end either.
  if (GetParam() == "server") {  // bookworm: one zstd stream
    auto t = run({"zstd", "-t", "-q", initrd});
    EXPECT_FALSE(t.ok()) << "zstd -t accepted the truncated initrd";
  } else {  // trixie: the cut falls in the uncompressed cpio of (already compressed) modules
    auto t = run({"sh", "-c", "cpio -t --quiet < " + initrd + " > /dev/null"});
    EXPECT_FALSE(t.ok()) << "cpio -t accepted the truncated initrd";
    EXPECT_NE(t.err.find("premature end"), std::string::npos) << t.err;
  }
  auto r = check();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto fs = boot_blocking(parse_json(r));
  EXPECT_TRUE(has(fs, "/boot/initrd.img-" + v_, "is damaged")) << r.out;
  EXPECT_TRUE(has(fs, "/boot/initrd.img-" + v_, "truncated")) << r.out;
}

TEST_P(BootContent, TruncatedKernelImageBlocks) {
  std::string image = root_ + "/boot/vmlinuz-" + v_;
  Restore keep(image);
  fs::resize_file(image, fs::file_size(image) - 4096);
  auto r = check("boot");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(boot_blocking(parse_json(r)), "/boot/vmlinuz-" + v_, "is truncated")) << r.out;
}

// A real module of the kernel copied under updates/ (where DKMS puts its builds) with its
// vermagic rewritten in place to another kernel version of the same length.
TEST_P(BootContent, ModuleBuiltForAnotherKernelBlocks) {
  std::string dir = root_ + "/usr/lib/modules/" + v_;
  std::string plain = dir + "/kernel/fs/btrfs/btrfs.ko";
  std::string bytes;
  if (fs::exists(plain)) {
    bytes = read_file(plain);
  } else {
    auto x = run({"xz", "-dc", plain + ".xz"});
    ASSERT_TRUE(x.ok()) << x.err;
    bytes = x.out;
  }
  std::string key = "vermagic=" + v_;
  std::size_t at = bytes.find(key);
  ASSERT_NE(at, std::string::npos);
  std::string other = v_;
  other[0] = other[0] == '9' ? '8' : static_cast<char>(other[0] + 1);  // 6.1.0-50-amd64 -> 7.1.0-50-amd64
  bytes.replace(at + 9, v_.size(), other);
  ASSERT_TRUE(fs::create_directories(dir + "/updates/dkms") || fs::exists(dir + "/updates/dkms"));
  std::string module = dir + "/updates/dkms/ugtest.ko";
  Restore keep_plain(module);
  write_file(module, bytes);
  auto r = check();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::string path = "/lib/modules/" + v_ + "/updates/dkms/ugtest.ko";
  EXPECT_TRUE(has(boot_blocking(parse_json(r)), path, "was built for kernel " + other)) << r.out;
  fs::remove(module);

  // The same, xz-compressed as trixie's kernel and DKMS store modules.
  write_file(module, bytes);
  auto xz = run({"xz", "-f", "--check=crc32", module});
  ASSERT_TRUE(xz.ok()) << xz.err;
  Restore keep_xz(module + ".xz");
  r = check("boot");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(boot_blocking(parse_json(r)), path + ".xz", "was built for kernel " + other)) << r.out;
}

// The root filesystem's module deleted from the kernel's tree (modules.dep still names it):
// the next update-initramfs cannot add it and modprobe cannot load it.
TEST_P(BootContent, RootFilesystemModuleRemovedBlocks) {
  Restore fstab(root_ + "/etc/fstab");
  write_file(root_ + "/etc/fstab", "UUID=aaaa / btrfs defaults,subvol=@ 0 0\n");
  std::string rel = "kernel/fs/btrfs/btrfs.ko";
  std::string dir = root_ + "/usr/lib/modules/" + v_ + "/";
  if (!fs::exists(dir + rel)) rel += ".xz";
  ASSERT_TRUE(fs::exists(dir + rel));
  Restore keep(dir + rel);
  fs::remove(dir + rel);
  auto r = check("boot");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(boot_blocking(parse_json(r)), "/lib/modules/" + v_ + "/modules.dep", "names " + rel)) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Roots, BootContent, ::testing::Values("server", "trixie-server"),
                         [](const auto& info) { return info.param == "server" ? "Bookworm" : "Trixie"; });

}  // namespace
}  // namespace guard::testing
