#include "checks/mounts.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/common/test_env.h"
#include "tests/unit/checks/single_check_fixture.h"

namespace guard::checks {
namespace {

using guard::testing::TempDir;
using guard::testing::write_file;
using test::count_at_least;
using test::dump;
using test::find;
using test::run_on;

TEST(Fstab, TypeSupportNames) {
  EXPECT_EQ(fs_type_support("vfat").configs, std::vector<std::string>{"VFAT_FS"});
  EXPECT_EQ(fs_type_support("btrfs").modules, std::vector<std::string>{"btrfs"});
  EXPECT_EQ(fs_type_support("iso9660").modules, std::vector<std::string>{"isofs"});
  EXPECT_EQ(fs_type_support("fuse.sshfs").configs, std::vector<std::string>{"FUSE_FS"});
}

// A fake machine whose devices are `present`.
MountsCheck machine(std::set<std::string> present) {
  return MountsCheck([present](std::string_view spec) -> std::optional<std::string> {
    if (present.count(std::string(spec))) return "/dev/fake";
    return std::nullopt;
  });
}

class MountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_ / "boot/vmlinuz-6.1.0-13-amd64", "k");
    write_file(dir_ / "boot/config-6.1.0-13-amd64",
               "CONFIG_EXT4_FS=y\nCONFIG_BTRFS_FS=m\nCONFIG_XFS_FS=m\n# CONFIG_NILFS2_FS is not set\n");
    write_file(dir_ / "lib/modules/6.1.0-13-amd64/kernel/fs/btrfs/btrfs.ko.xz", "m");
    write_file(dir_ / "lib/modules/6.1.0-13-amd64/kernel/fs/fat/vfat.ko.zst", "m");
    for (const char* d : {"srv", "home", "boot/efi", "proc", "tmp"}) testing::make_dirs(dir_ / d);
  }
  CheckOutput run(const MountsCheck& check, bool live = false) { return run_on(check, dir_.path(), live); }
  TempDir dir_;
};

TEST_F(MountsTest, HealthyFstabHasNoFinding) {
  write_file(dir_ / "etc/fstab",
             "UUID=root / ext4 errors=remount-ro 0 1\nUUID=home /home btrfs defaults 0 2\n"
             "UUID=esp /boot/efi vfat umask=0077 0 1\nUUID=swap none swap sw 0 0\n"
             "proc /proc proc defaults 0 0\ntmpfs /tmp tmpfs defaults 0 0\n");
  CheckOutput out = run(machine({"UUID=root", "UUID=home", "UUID=esp", "UUID=swap"}));
  EXPECT_TRUE(out.findings.empty()) << dump(out);
  EXPECT_EQ(out.items, 6U);
}

TEST_F(MountsTest, MissingDeviceBlocksUnlessNofailOrNoauto) {
  write_file(dir_ / "etc/fstab",
             "UUID=root / ext4 defaults 0 1\nUUID=gone /srv ext4 defaults 0 2\n"
             "UUID=gone2 /home ext4 nofail 0 2\nLABEL=usb /mnt ext4 noauto 0 0\n"
             "PARTUUID=0000-swap none swap sw 0 0\n/dev/disk/by-id/nothing-here /data ext4 defaults 0 2\n");
  CheckOutput out = run(machine({"UUID=root"}));
  const Finding* f = find(out, "/etc/fstab", Severity::block, "UUID=gone (for /srv)");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_NE(f->message.find("emergency mode"), std::string::npos);
  EXPECT_FALSE(f->hint.empty());
  EXPECT_TRUE(find(out, "/etc/fstab", Severity::block, "PARTUUID=0000-swap (for swap)")) << dump(out);
  EXPECT_TRUE(find(out, "/etc/fstab", Severity::block, "/dev/disk/by-id/nothing-here")) << dump(out);
  EXPECT_FALSE(find(out, "/etc/fstab", Severity::block, "gone2")) << dump(out);
  EXPECT_FALSE(find(out, "/etc/fstab", Severity::block, "usb")) << dump(out);
  EXPECT_EQ(count_at_least(out, Severity::block), 3U) << dump(out);
  // /data does not exist in the root: only a warning.
  EXPECT_TRUE(find(out, "/etc/fstab", Severity::warn, "mount point /data")) << dump(out);
}

TEST_F(MountsTest, ForeignRootSkipsDeviceChecks) {
  write_file(dir_ / "etc/fstab", "UUID=root / ext4 defaults 0 1\nUUID=gone /srv ext4 defaults 0 2\n");
  CheckOutput out = run(machine({}));
  EXPECT_EQ(count_at_least(out, Severity::warn), 0U) << dump(out);
  const Finding* f = find(out, "/etc/fstab", Severity::info, "not a device of this machine");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->id, "devices-unchecked");
  // The live system is this machine by definition.
  out = run(machine({}), /*live=*/true);
  EXPECT_TRUE(find(out, "/etc/fstab", Severity::block, "UUID=root (for /)")) << dump(out);
  EXPECT_TRUE(find(out, "/etc/fstab", Severity::block, "UUID=gone (for /srv)")) << dump(out);
}

TEST_F(MountsTest, UnparsableLineBlocksWithItsNumber) {
  write_file(dir_ / "etc/fstab", "# comment\nUUID=root / ext4 defaults 0 1\nthis-is-not-an-entry\n");
  CheckOutput out = run(machine({"UUID=root"}));
  const Finding* f = find(out, "/etc/fstab", Severity::block, "line 3 ");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_NE(f->message.find("this-is-not-an-entry"), std::string::npos);
}

TEST_F(MountsTest, FilesystemTypesMustBeKnownToTheNextKernel) {
  write_file(dir_ / "etc/fstab",
             "UUID=root / ext4 defaults 0 1\nUUID=srv /srv xfs defaults 0 2\nUUID=home /home btrfs defaults 0 2\n"
             "UUID=esp /boot/efi vfat defaults 0 1\n");
  auto present = machine({"UUID=root", "UUID=srv", "UUID=home", "UUID=esp"});
  CheckOutput out = run(present);
  // xfs is a module in the config, but no xfs.ko is installed.
  const Finding* f = find(out, "/etc/fstab", Severity::block, "/srv is mounted as xfs");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_NE(f->message.find("6.1.0-13-amd64"), std::string::npos);
  EXPECT_EQ(count_at_least(out, Severity::warn), 1U) << dump(out);
  write_file(dir_ / "lib/modules/6.1.0-13-amd64/kernel/fs/xfs/xfs.ko", "m");
  out = run(present);
  EXPECT_EQ(count_at_least(out, Severity::warn), 0U) << dump(out);
  // The newest kernel decides: a newer one without btrfs.
  write_file(dir_ / "boot/vmlinuz-6.1.0-14-amd64", "k");
  write_file(dir_ / "boot/config-6.1.0-14-amd64", "CONFIG_EXT4_FS=y\nCONFIG_VFAT_FS=y\nCONFIG_XFS_FS=y\n");
  out = run(present);
  EXPECT_TRUE(find(out, "/etc/fstab", Severity::block, "/home is mounted as btrfs, which kernel 6.1.0-14-amd64"))
      << dump(out);
  EXPECT_EQ(count_at_least(out, Severity::warn), 1U) << dump(out);
}

TEST(MountsNoKernel, TypeCheckSkippedAndNoFstabSkipsAll) {
  TempDir dir;
  testing::make_dirs(dir / "srv");
  write_file(dir / "etc/fstab", "UUID=root / ext4 defaults 0 1\nUUID=srv /srv weirdfs defaults 0 2\n");
  CheckOutput out = run_on(machine({"UUID=root", "UUID=srv"}), dir.path());
  EXPECT_EQ(count_at_least(out, Severity::warn), 0U) << dump(out);
  EXPECT_TRUE(find(out, "/etc/fstab", Severity::info, "no kernel")) << dump(out);

  TempDir empty;
  testing::make_dirs(empty / "etc");
  out = run_on(machine({}), empty.path());
  EXPECT_FALSE(out.skipped.empty());
}

}  // namespace
}  // namespace guard::checks
