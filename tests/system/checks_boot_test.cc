// The boot, mounts and services checks on a real debootstrapped Debian 12 server root: healthy
// gives no blocking finding; each way of breaking it gives the finding an admin needs.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>

#include "base/root.h"
#include "checks/check.h"
#include "policies/policy.h"
#include "tests/common/test_env.h"
#include "tests/system/loop_image.h"

namespace guard::checks {
namespace {

using guard::testing::LoopImage;
using guard::testing::make_symlink;
using guard::testing::run;
using guard::testing::TempDir;
using guard::testing::write_file;

const std::vector<std::string> kChecks{"boot", "mounts", "services"};
constexpr const char* kVersion = "6.1.0-50-amd64";  // overwritten by the kernel found in the root

// The cached root of `variant` (built on first use), or "" with a reason.
std::string cached_root(const std::string& variant, std::string* why) {
  auto r = run({std::string(UG_SOURCE_DIR) + "/scripts/test-root", variant}, 3600);
  if (!r.ok()) {
    *why = "scripts/test-root " + variant + " failed: " + r.describe() + " " + r.err;
    return {};
  }
  std::string path = r.out;
  while (!path.empty() && path.back() == '\n') path.pop_back();
  return path;
}

std::string describe(const Report& report) {
  std::string out;
  for (const auto& f : report.findings)
    out += std::string(policies::to_string(f.severity)) + " " + f.check + " " + f.path + ": " + f.message + "\n";
  for (const auto& c : report.checks)
    out += "check " + c.id + ": " + to_string(c.status) + " (" + std::to_string(c.items) + " items, " +
           std::to_string(c.duration.count()) + " ms) " + c.note + "\n";
  return out;
}

Report check(const std::string& dir, bool live = false) {
  auto root = base::Root::open(dir);
  EXPECT_TRUE(root) << root.error().to_string();
  policies::Policy policy;
  CheckContext ctx{*root, policy, {}, nullptr, live, {}, {}, {}};
  auto report = run_checks(ctx, kChecks);
  EXPECT_TRUE(report) << report.error().to_string();
  return report ? *report : Report{};
}

bool has_blocking(const Report& r, const std::string& check, const std::string& path) {
  for (const auto& f : r.findings)
    if (f.check == check && f.path == path && is_blocking(f)) return true;
  return false;
}

class ChecksBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root to copy the debootstrapped root");
    std::string why;
    std::string src = cached_root("server", &why);
    if (src.empty()) UG_SKIP_OR_FAIL(why);
    root_ = tmp_ / "root";
    auto r = run({"cp", "-a", "--reflink=auto", src, root_});
    ASSERT_TRUE(r.ok()) << r.err;
    for (const auto& e : std::filesystem::directory_iterator(root_ + "/boot")) {
      std::string name = e.path().filename();
      if (name.rfind("vmlinuz-", 0) == 0) version_ = name.substr(8);
    }
    ASSERT_FALSE(version_.empty()) << "the server root has no kernel";
  }

  TempDir tmp_{"ug-checks-boot"};
  std::string root_;
  std::string version_ = kVersion;
};

TEST_F(ChecksBootTest, HealthyServerRootHasNoBlockingFinding) {
  Report r = check(root_);
  EXPECT_EQ(r.blocking_count(), 0U) << describe(r);
  ASSERT_EQ(r.checks.size(), 3U) << describe(r);
  for (const auto& c : r.checks) {
    EXPECT_NE(c.status, CheckStatus::error) << describe(r);
    // boot and services really looked (a kernel, enabled units); mounts has no fstab entries.
    if (c.id != "mounts") {
      EXPECT_EQ(c.status, CheckStatus::passed) << describe(r);
      EXPECT_GT(c.items, 0U) << c.id;
    }
  }
  std::cout << describe(r);
}

// minbase: no kernel, no fstab entries; boot is skipped, nothing blocks.
TEST(ChecksBootMinbase, HealthyMinbaseRootHasNoBlockingFinding) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root to copy the debootstrapped root");
  std::string why;
  std::string src = cached_root("minbase", &why);
  if (src.empty()) UG_SKIP_OR_FAIL(why);
  TempDir tmp("ug-checks-minbase");
  auto cp = run({"cp", "-a", "--reflink=auto", src, tmp / "root"});
  ASSERT_TRUE(cp.ok()) << cp.err;
  Report r = check(tmp / "root");
  EXPECT_EQ(r.blocking_count(), 0U) << describe(r);
  for (const auto& c : r.checks) {
    EXPECT_NE(c.status, CheckStatus::error) << describe(r);
    if (c.id == "boot") {
      EXPECT_EQ(c.status, CheckStatus::skipped) << describe(r);
    }
  }
  std::cout << describe(r);
}

TEST_F(ChecksBootTest, MissingInitrdBlocks) {
  std::filesystem::remove(root_ + "/boot/initrd.img-" + version_);
  Report r = check(root_);
  EXPECT_TRUE(has_blocking(r, "boot", "/boot/initrd.img-" + version_)) << describe(r);
  EXPECT_TRUE(has_blocking(r, "boot", "/initrd.img")) << describe(r);  // Debian's link now dangles
}

TEST_F(ChecksBootTest, MissingModulesDirBlocks) {
  std::filesystem::remove_all(root_ + "/usr/lib/modules/" + version_);
  Report r = check(root_);
  EXPECT_TRUE(has_blocking(r, "boot", "/lib/modules/" + version_)) << describe(r);
}

TEST_F(ChecksBootTest, GrubEntryForMissingKernelBlocks) {
  // What update-grub writes for a root on one filesystem, plus an entry for a removed kernel.
  std::string uuid = "0b4a3d9e-5f5e-4b8c-9a1e-6c1f0e2d3c4b";
  auto entry = [&](const std::string& v, const std::string& title) {
    return "menuentry '" + title +
           "' --class debian --class gnu-linux --class gnu --class os "
           "$menuentry_id_option 'gnulinux-" +
           v + "-advanced-" + uuid +
           "' {\n"
           "\tload_video\n\tinsmod gzio\n\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n"
           "\tinsmod part_gpt\n\tinsmod ext2\n\tset root='hd0,gpt2'\n"
           "\tif [ x$feature_platform_search_hint = xy ]; then\n"
           "\t  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 --hint-efi=hd0,gpt2 " +
           uuid +
           "\n"
           "\telse\n\t  search --no-floppy --fs-uuid --set=root " +
           uuid +
           "\n\tfi\n"
           "\techo\t'Loading Linux " +
           v +
           " ...'\n"
           "\tlinux\t/boot/vmlinuz-" +
           v + " root=UUID=" + uuid +
           " ro  quiet\n"
           "\techo\t'Loading initial ramdisk ...'\n"
           "\tinitrd\t/boot/initrd.img-" +
           v + "\n}\n";
  };
  std::string cfg =
      "#\n# DO NOT EDIT THIS FILE\n#\n### BEGIN /etc/grub.d/00_header ###\n"
      "if [ -s $prefix/grubenv ]; then\n  load_env\nfi\n"
      "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\n   set next_entry=\n   save_env next_entry\n"
      "   set boot_once=true\nelse\n   set default=\"0\"\nfi\n"
      "if [ x\"${feature_menuentry_id}\" = xy ]; then\n  menuentry_id_option=\"--id\"\nelse\n"
      "  menuentry_id_option=\"\"\nfi\nexport menuentry_id_option\n"
      "### BEGIN /etc/grub.d/10_linux ###\n" +
      entry(version_, "Debian GNU/Linux") +
      "submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-" + uuid + "' {\n" +
      entry(version_, "Debian GNU/Linux, with Linux " + version_) +
      entry("6.1.0-99-amd64", "Debian GNU/Linux, with Linux 6.1.0-99-amd64") + "}\n";
  write_file(root_ + "/boot/grub/grub.cfg", cfg);
  write_file(root_ + "/etc/fstab", "UUID=" + uuid + " / ext4 errors=remount-ro 0 1\n");
  Report r = check(root_);
  EXPECT_TRUE(has_blocking(r, "boot", "/boot/grub/grub.cfg")) << describe(r);
  bool named = false;
  for (const auto& f : r.findings)
    if (f.message.find("/boot/vmlinuz-6.1.0-99-amd64") != std::string::npos) named = true;
  EXPECT_TRUE(named) << describe(r);
  // Only the missing kernel: the entries for the installed one are fine.
  for (const auto& f : r.findings)
    if (f.check == "boot" && is_blocking(f)) {
      EXPECT_NE(f.message.find("6.1.0-99"), std::string::npos) << f.message;
    }
}

TEST_F(ChecksBootTest, DanglingWantsLinkBlocks) {
  std::string link = "/etc/systemd/system/multi-user.target.wants/gone.service";
  make_symlink("/lib/systemd/system/gone.service", root_ + link);
  Report r = check(root_);
  EXPECT_TRUE(has_blocking(r, "services", link)) << describe(r);
}

// A root on its own loop-mounted btrfs: its `/` entry is the image's real UUID, so the root
// belongs to this machine and every fstab device must be present.
TEST_F(ChecksBootTest, FstabUuidThatDoesNotExistBlocks) {
  LoopImage img(tmp_ / "disk.img", 1ULL << 30, "btrfs");
  if (!img.ok()) UG_SKIP_OR_FAIL("cannot set up a loop-mounted btrfs: " + img.error());
  ASSERT_TRUE(img.mount(tmp_ / "mnt", "compress=zstd"));
  std::string dir = tmp_ / "mnt/root";
  auto cp = run({"cp", "-a", root_, dir});
  ASSERT_TRUE(cp.ok()) << cp.err;
  std::string good = "UUID=" + img.uuid() + " / btrfs defaults 0 0\n";
  write_file(dir + "/etc/fstab", good);
  Report healthy = check(dir);
  for (const auto& f : healthy.findings) EXPECT_NE(f.check, "mounts") << describe(healthy);
  EXPECT_EQ(healthy.blocking_count(), 0U) << describe(healthy);
  std::cout << describe(healthy);

  write_file(dir + "/etc/fstab", good + "UUID=7c2d1e4f-0000-4000-8000-00000000dead /srv ext4 defaults 0 2\n");
  Report broken = check(dir);
  EXPECT_TRUE(has_blocking(broken, "mounts", "/etc/fstab")) << describe(broken);
  bool named = false;
  for (const auto& f : broken.findings)
    if (f.check == "mounts" && f.message.find("7c2d1e4f-0000-4000-8000-00000000dead") != std::string::npos)
      named = true;
  EXPECT_TRUE(named) << describe(broken);
}

}  // namespace
}  // namespace guard::checks
