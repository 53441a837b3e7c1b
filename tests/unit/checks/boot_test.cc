#include "checks/boot.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "checks/kernels.h"
#include "tests/common/test_env.h"
#include "tests/unit/checks/initramfs_fixture.h"
#include "tests/unit/checks/single_check_fixture.h"

namespace guard::checks {
namespace {

using guard::testing::make_symlink;
using guard::testing::TempDir;
using guard::testing::write_file;
using test::count_at_least;
using test::dump;
using test::find;
using test::run_on;

constexpr const char* kVer = "6.1.0-13-amd64";

// A bzImage-shaped file: setup header magic "HdrS" at 0x202, kernel_version at 0x20E pointing
// (less 0x200) at `version_text`.
std::string fake_bzimage(const std::string& version_text) {
  std::string img(0x2000, '\0');
  img.replace(0x202, 4, "HdrS");
  img[0x206] = 0x0f, img[0x207] = 0x02;  // protocol 2.15
  img[0x20E] = 0x00, img[0x20F] = 0x03;  // 0x300 -> string at 0x500
  img.replace(0x500, version_text.size(), version_text);
  return img;
}

// A PE file with one section, .uname, holding `uname`.
std::string fake_uki(const std::string& uname) {
  std::string img(0x400, '\0');
  img.replace(0, 2, "MZ");
  img[0x3c] = static_cast<char>(0x80);
  img.replace(0x80, 4, std::string("PE\0\0", 4));
  img[0x80 + 6] = 1;  // one section, no optional header
  std::size_t s = 0x80 + 24;
  img.replace(s, 6, ".uname");
  img[s + 8] = static_cast<char>(uname.size());
  img[s + 16] = static_cast<char>(uname.size());
  img[s + 21] = 0x02;  // PointerToRawData 0x200
  img.replace(0x200, uname.size(), uname);
  return img;
}

class BootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    add_kernel(kVer);
    make_symlink(std::string("boot/vmlinuz-") + kVer, dir_ / "vmlinuz");
    make_symlink(std::string("boot/initrd.img-") + kVer, dir_ / "initrd.img");
  }
  void add_kernel(const std::string& v) {
    write_file(dir_ / ("boot/vmlinuz-" + v), fake_bzimage(v + " (debian-kernel@lists.debian.org) #1 SMP Debian"));
    write_file(dir_ / ("boot/initrd.img-" + v), testing::newc({{"init", "#!/bin/sh\n", 0100755}}));
    write_file(dir_ / ("boot/config-" + v), "CONFIG_EXT4_FS=y\n");
    write_file(dir_ / ("usr/lib/modules/" + v + "/modules.dep"), "");
    write_file(dir_ / ("usr/lib/modules/" + v + "/modules.builtin"), "kernel/fs/ext4/ext4.ko\nkernel/fs/btrfs/btrfs.ko\n");
    if (!std::filesystem::exists(dir_ / "lib")) make_symlink("usr/lib", dir_ / "lib");
  }
  CheckOutput run() { return run_on(BootCheck(), dir_.path()); }
  std::string p(const std::string& rel) const { return dir_ / rel; }

  TempDir dir_;
  const std::string v_ = kVer;
};

TEST(BootImages, BzImageVersion) {
  EXPECT_EQ(bzimage_version(fake_bzimage("6.1.0-13-amd64 (x@y) #1 SMP")), "6.1.0-13-amd64");
  EXPECT_EQ(bzimage_version(fake_bzimage("6.1.0-13-amd64")), "6.1.0-13-amd64");
  EXPECT_FALSE(bzimage_version("\x1f\x8b compressed"));
  std::string no_ptr = fake_bzimage("x");
  no_ptr[0x20E] = no_ptr[0x20F] = 0;
  EXPECT_FALSE(bzimage_version(no_ptr));
  EXPECT_FALSE(bzimage_version(fake_bzimage("x").substr(0, 0x400)));  // pointer beyond the head
  EXPECT_EQ(uki_uname(fake_uki("6.1.0-13-amd64\n")), "6.1.0-13-amd64");
  EXPECT_FALSE(uki_uname(fake_bzimage("x")));
  EXPECT_FALSE(uki_uname(fake_uki("6.1").substr(0, 0xa0)));  // truncated section table
}

TEST(BootImages, KernelsSortByVersionAndSkipLeftovers) {
  TempDir dir;
  for (const char* v : {"6.1.0-9-amd64", "6.1.0-13-amd64", "6.1.0-10-amd64", "6.1.0-13-amd64.dpkg-tmp"})
    write_file(dir / (std::string("boot/vmlinuz-") + v), "x");
  auto root = base::Root::open(dir.path());
  ASSERT_TRUE(root);
  auto kernels = installed_kernels(*root);
  ASSERT_TRUE(kernels);
  ASSERT_EQ(kernels->size(), 3U);
  EXPECT_EQ((*kernels)[0].version, "6.1.0-9-amd64");
  EXPECT_EQ((*kernels)[2].version, "6.1.0-13-amd64");
  EXPECT_EQ((*kernels)[2].image, "/boot/vmlinuz-6.1.0-13-amd64");
}

TEST(BootCheckEmpty, RootWithoutKernelIsSkipped) {
  TempDir dir;
  write_file(dir / "etc/hostname", "container\n");
  CheckOutput out = run_on(BootCheck(), dir.path());
  EXPECT_FALSE(out.skipped.empty());
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

TEST_F(BootTest, HealthyRootHasNoFinding) {
  CheckOutput out = run();
  EXPECT_TRUE(out.skipped.empty());
  EXPECT_EQ(count_at_least(out, Severity::info), 0U) << dump(out);
  EXPECT_GE(out.items, 3U);
}

TEST_F(BootTest, MissingInitrdBlocks) {
  std::filesystem::remove(p("boot/initrd.img-" + v_));
  CheckOutput out = run();
  const Finding* f = find(out, "/boot/initrd.img-" + v_, Severity::block, "has no initrd");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->hint, "update-initramfs -c -k " + v_);
  EXPECT_TRUE(f->package.empty());
  EXPECT_TRUE(find(out, "/initrd.img", Severity::block)) << dump(out);
}

TEST_F(BootTest, EmptyInitrdBlocksAndLeftoverWarns) {
  write_file(p("boot/initrd.img-" + v_), "");
  write_file(p("boot/initrd.img-" + v_ + ".new"), "partial");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/boot/initrd.img-" + v_, Severity::block, "empty")) << dump(out);
  EXPECT_TRUE(find(out, "/boot/initrd.img-" + v_ + ".new", Severity::warn, "interrupted")) << dump(out);
}

TEST_F(BootTest, MissingModulesBlock) {
  std::filesystem::remove(p("usr/lib/modules/" + v_ + "/modules.dep"));
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/lib/modules/" + v_ + "/modules.dep", Severity::block)) << dump(out);
  std::filesystem::remove_all(p("usr/lib/modules/" + v_));
  out = run();
  EXPECT_TRUE(find(out, "/lib/modules/" + v_, Severity::block, "no modules directory")) << dump(out);
}

TEST_F(BootTest, ImageWithAnotherVersionBlocks) {
  write_file(p("boot/vmlinuz-" + v_), fake_bzimage("6.1.0-12-amd64 (debian-kernel@lists.debian.org) #1"));
  CheckOutput out = run();
  const Finding* f = find(out, "/boot/vmlinuz-" + v_, Severity::block, "contains kernel 6.1.0-12-amd64");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->id, "version-mismatch");
}

TEST_F(BootTest, ImageThatIsNotABzImageIsOnlyNoted) {
  static const char kGzip[] = "\x1f\x8b\x08\x00 an arm64 Image.gz";
  write_file(p("boot/vmlinuz-" + v_), std::string(kGzip, sizeof(kGzip) - 1));
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/boot/vmlinuz-" + v_, Severity::info, "not a bzImage")) << dump(out);
  EXPECT_EQ(count_at_least(out, Severity::warn), 0U) << dump(out);
}

TEST_F(BootTest, DanglingDebianLinks) {
  make_symlink("boot/vmlinuz-6.1.0-12-amd64", p("vmlinuz"));
  make_symlink("boot/vmlinuz-6.1.0-11-amd64", p("vmlinuz.old"));
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/vmlinuz", Severity::block, "boot/vmlinuz-6.1.0-12-amd64")) << dump(out);
  EXPECT_TRUE(find(out, "/vmlinuz.old", Severity::warn)) << dump(out);
}

std::string grub_entry(const std::string& title, const std::string& uuid, const std::string& prefix,
                       const std::string& v) {
  return "menuentry '" + title + "' --class debian $menuentry_id_option 'gnulinux-" + v + "' {\n" +
         "\tsearch --no-floppy --fs-uuid --set=root " + uuid + "\n" + "\tlinux\t" + prefix + "/vmlinuz-" + v +
         " root=UUID=aaaa ro quiet\n" + "\tinitrd\t" + prefix + "/initrd.img-" + v + "\n}\n";
}

TEST_F(BootTest, GrubOnTheRootFilesystem) {
  write_file(p("etc/fstab"), "UUID=aaaa / ext4 errors=remount-ro 0 1\n");
  write_file(p("boot/grub/grub.cfg"), grub_entry("Debian GNU/Linux", "aaaa", "/boot", v_));
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());

  write_file(p("boot/grub/grub.cfg"),
             grub_entry("Debian GNU/Linux", "aaaa", "/boot", v_) + "submenu 'Advanced' {\n" +
                 grub_entry("Debian, with Linux 6.1.0-99-amd64", "aaaa", "/boot", "6.1.0-99-amd64") + "}\n");
  CheckOutput out = run();
  const Finding* f = find(out, "/boot/grub/grub.cfg", Severity::block, "/boot/vmlinuz-6.1.0-99-amd64");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_NE(f->message.find("Advanced>Debian, with Linux 6.1.0-99-amd64"), std::string::npos) << f->message;
  EXPECT_EQ(f->id, "missing:/boot/vmlinuz-6.1.0-99-amd64");
  EXPECT_EQ(f->hint, "update-grub");
  EXPECT_TRUE(find(out, "/boot/grub/grub.cfg", Severity::block, "/boot/initrd.img-6.1.0-99-amd64")) << dump(out);
}

TEST_F(BootTest, GrubWithSeparateBoot) {
  write_file(p("etc/fstab"), "UUID=aaaa / ext4 errors=remount-ro 0 1\nUUID=bbbb /boot ext4 defaults 0 2\n");
  // GRUB reads the /boot filesystem: paths without the /boot prefix.
  write_file(p("boot/grub/grub.cfg"), grub_entry("Debian GNU/Linux", "bbbb", "", v_));
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());
  // The same config with the prefix would not boot: there is no /boot inside /boot.
  write_file(p("boot/grub/grub.cfg"), grub_entry("Debian GNU/Linux", "bbbb", "/boot", v_));
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/boot/grub/grub.cfg", Severity::block, "/boot/boot/vmlinuz-" + v_)) << dump(out);
  // A search for the root filesystem's UUID reads the root filesystem, where /boot is a mount point.
  write_file(p("boot/grub/grub.cfg"), grub_entry("Debian GNU/Linux", "aaaa", "/boot", v_));
  out = run();
  EXPECT_TRUE(find(out, "/boot/grub/grub.cfg", Severity::block, "the root filesystem")) << dump(out);
}

TEST_F(BootTest, GrubPathsWithUnknownVariablesAreOnlyNoted) {
  write_file(p("boot/grub/grub.cfg"),
             "menuentry 'x' {\n linux $prefix/../vmlinuz-" + v_ + "\n initrd (hd1,gpt9)/v\n}\n");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/boot/grub/grub.cfg", Severity::info, "${prefix}")) << dump(out);
  EXPECT_TRUE(find(out, "/boot/grub/grub.cfg", Severity::info, "hd1,gpt9")) << dump(out);
  EXPECT_EQ(count_at_least(out, Severity::warn), 0U) << dump(out);
}

std::string grubenv(const std::string& vars, std::size_t size = 1024) {
  std::string b = "# GRUB Environment Block\n" + vars;
  b.resize(size, '#');
  return b;
}

TEST_F(BootTest, GrubenvEntriesMustExist) {
  write_file(p("boot/grub/grub.cfg"),
             "submenu 'Advanced' $menuentry_id_option 'adv' {\n" + grub_entry("Debian", "x", "/boot", v_) + "}\n");
  write_file(p("boot/grub/grubenv"), grubenv("saved_entry=adv>gnulinux-" + v_ + "\nnext_entry=0>0\n"));
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());

  write_file(p("boot/grub/grubenv"), grubenv("saved_entry=adv>gnulinux-6.1.0-12-amd64\n"));
  CheckOutput out = run();
  const Finding* f = find(out, "/boot/grub/grubenv", Severity::warn, "saved_entry=adv>gnulinux-6.1.0-12-amd64");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->id, "unknown-saved_entry");

  write_file(p("boot/grub/grubenv"), grubenv("next_entry=0\n", 1000));
  out = run();
  EXPECT_TRUE(find(out, "/boot/grub/grubenv", Severity::warn, "1000 bytes")) << dump(out);
}

TEST_F(BootTest, BlsEntriesOnBootAndEsp) {
  write_file(p("boot/loader/entries/debian-" + v_ + ".conf"),
             "title Debian\nversion " + v_ + "\nlinux /boot/vmlinuz-" + v_ + "\ninitrd /boot/initrd.img-" + v_ + "\n");
  write_file(p("boot/efi/EFI/debian/grubx64.efi"), "x");
  write_file(p("boot/efi/loader/entries/uki.conf"), "title UKI\nefi /EFI/Linux/debian.efi\n");
  write_file(p("boot/efi/EFI/Linux/debian.efi"), fake_uki(v_));
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());

  std::filesystem::remove(p("boot/efi/EFI/Linux/debian.efi"));
  write_file(p("boot/loader/entries/old.conf"), "title Old\nlinux /boot/vmlinuz-6.1.0-1-amd64\n");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/boot/loader/entries/old.conf", Severity::block, "/boot/vmlinuz-6.1.0-1-amd64")) << dump(out);
  EXPECT_TRUE(find(out, "/boot/efi/loader/entries/uki.conf", Severity::block, "/boot/efi/EFI/Linux/debian.efi"))
      << dump(out);
}

TEST_F(BootTest, UkiNeedsItsModules) {
  write_file(p("efi/EFI/Linux/debian-6.1.0-77-amd64.efi"), fake_uki("6.1.0-77-amd64"));
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/lib/modules/6.1.0-77-amd64", Severity::block, "unified kernel image")) << dump(out);
}

TEST(BootCheckEmpty, OnlyAGrubConfigWithoutKernelsStillChecks) {
  TempDir dir;
  write_file(dir / "boot/grub/grub.cfg", "menuentry 'Debian' {\n linux /boot/vmlinuz-6.1.0-13-amd64\n}\n");
  CheckOutput out = run_on(BootCheck(), dir.path());
  EXPECT_TRUE(out.skipped.empty());
  EXPECT_TRUE(find(out, "/boot/grub/grub.cfg", Severity::block, "/boot/vmlinuz-6.1.0-13-amd64")) << dump(out);
}

}  // namespace
}  // namespace guard::checks

namespace guard::checks {
namespace {

// Debian installed on btrfs subvolume @: update-grub writes paths from the top of the
// filesystem, /@/boot/vmlinuz-…, which the root (mounted from @) sees as /boot/vmlinuz-….
TEST_F(BootTest, GrubOnABtrfsSubvolume) {
  write_file(p("etc/fstab"), "UUID=aaaa / btrfs defaults,subvol=@ 0 0\n");
  write_file(p("boot/grub/grub.cfg"), grub_entry("Debian GNU/Linux", "aaaa", "/@/boot", v_));
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());
  write_file(p("boot/grub/grub.cfg"), grub_entry("Debian GNU/Linux", "aaaa", "/@/boot", "6.1.0-99-amd64"));
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/boot/grub/grub.cfg", Severity::block, "/@/boot/vmlinuz-6.1.0-99-amd64")) << dump(out);
  // Without subvol= in fstab (a default subvolume), an @-named first component is still one.
  write_file(p("etc/fstab"), "UUID=aaaa / btrfs defaults 0 0\n");
  write_file(p("boot/grub/grub.cfg"), grub_entry("Debian GNU/Linux", "aaaa", "/@rootfs/boot", v_));
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());
}

}  // namespace
}  // namespace guard::checks

namespace guard::checks {
namespace {

// Every kernel removed (the incident): Debian's links are all that is left, and they block.
TEST_F(BootTest, AllKernelsRemovedIsNotSkipped) {
  std::filesystem::remove(p("boot/vmlinuz-" + v_));
  std::filesystem::remove(p("boot/initrd.img-" + v_));
  CheckOutput out = run();
  EXPECT_TRUE(out.skipped.empty()) << dump(out);
  EXPECT_TRUE(find(out, "/vmlinuz", Severity::block)) << dump(out);
  EXPECT_TRUE(find(out, "/initrd.img", Severity::block)) << dump(out);
}

}  // namespace
}  // namespace guard::checks

namespace guard::checks {
namespace {

// A snapshot of a root whose /boot is its own partition: /boot is an empty mount point here.
TEST_F(BootTest, UnmountedSeparateBootIsSkipped) {
  std::filesystem::remove_all(p("boot"));
  testing::make_dirs(p("boot"));
  write_file(p("etc/fstab"), "UUID=aaaa / ext4 defaults 0 1\nUUID=bbbb /boot ext4 defaults 0 2\n");
  CheckOutput out = run();
  EXPECT_NE(out.skipped.find("not mounted"), std::string::npos) << dump(out);
  EXPECT_TRUE(out.findings.empty()) << dump(out);
  // Without the fstab entry the same root lost its kernels.
  write_file(p("etc/fstab"), "UUID=aaaa / ext4 defaults 0 1\n");
  out = run();
  EXPECT_TRUE(find(out, "/vmlinuz", Severity::block)) << dump(out);
}

}  // namespace
}  // namespace guard::checks

namespace guard::checks {
namespace {

using testing::compress;
using testing::fake_module;
using testing::microcode_cpio;
using testing::newc;

std::string modules_dir(const std::string& v) { return "usr/lib/modules/" + v + "/"; }

TEST_F(BootTest, InitrdWithoutInitBlocks) {
  auto main = compress("zstd", newc({{"usr", "", 040755}, {"sbin/init", "x", 0100755}}));
  ASSERT_TRUE(main);
  write_file(p("boot/initrd.img-" + v_), microcode_cpio() + *main);
  CheckOutput out = run();
  const Finding* f = find(out, "/boot/initrd.img-" + v_, Severity::block, "has no /init");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->id, "initrd-no-init");
  EXPECT_EQ(f->hint, "update-initramfs -u -k " + v_);
}

TEST_F(BootTest, TruncatedOrCorruptInitrdBlocks) {
  std::string noise;
  std::uint32_t x = 12345;
  for (int i = 0; i < 200000; ++i) noise.push_back(static_cast<char>((x = x * 1103515245 + 12345) >> 24));
  auto main = compress("zstd", newc({{"init", noise, 0100755}}));
  ASSERT_TRUE(main);
  std::string image = microcode_cpio() + *main;
  write_file(p("boot/initrd.img-" + v_), image);
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());

  write_file(p("boot/initrd.img-" + v_), image.substr(0, image.size() - 100));
  CheckOutput out = run();
  const Finding* f = find(out, "/boot/initrd.img-" + v_, Severity::block, "is damaged");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->id, "initrd-damaged");
  EXPECT_NE(f->message.find("zstd data starting at offset " + std::to_string(microcode_cpio().size()) + " ends early"),
            std::string::npos)
      << f->message;

  image[microcode_cpio().size() + main->size() / 2] ^= 0x40;
  write_file(p("boot/initrd.img-" + v_), image);
  out = run();
  EXPECT_TRUE(find(out, "/boot/initrd.img-" + v_, Severity::block, "corrupt near offset")) << dump(out);
}

// A btrfs root: the kernel needs btrfs.ko and what modules.dep says it needs, in the initrd.
TEST_F(BootTest, RootFilesystemModulesMustBeInTheInitrd) {
  write_file(p("etc/fstab"), "UUID=aaaa / btrfs defaults,subvol=@ 0 0\n");
  std::string d = modules_dir(v_);
  write_file(p(d + "modules.builtin"), "kernel/fs/ext4/ext4.ko\n");
  write_file(p(d + "modules.dep"), "kernel/fs/btrfs/btrfs.ko.xz: kernel/lib/libcrc32c.ko.xz\nkernel/lib/libcrc32c.ko.xz:\n");
  auto ko = compress("xz", fake_module(v_ + " SMP preempt mod_unload modversions "));
  ASSERT_TRUE(ko);
  write_file(p(d + "kernel/fs/btrfs/btrfs.ko.xz"), *ko);
  write_file(p(d + "kernel/lib/libcrc32c.ko.xz"), *ko);
  std::string in_initrd = "usr/lib/modules/" + v_ + "/kernel/";
  auto only_btrfs = compress("zstd", newc({{"init", "#!/bin/sh\n", 0100755}, {in_initrd + "fs/btrfs/btrfs.ko.xz", *ko}}));
  ASSERT_TRUE(only_btrfs);
  write_file(p("boot/initrd.img-" + v_), microcode_cpio() + *only_btrfs);
  CheckOutput out = run();
  const Finding* f = find(out, "/boot/initrd.img-" + v_, Severity::block, "kernel/lib/libcrc32c.ko.xz");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->id, "initrd-root-modules");
  EXPECT_NE(f->message.find("btrfs root filesystem"), std::string::npos) << f->message;
  EXPECT_EQ(f->message.find("btrfs.ko.xz,"), std::string::npos) << f->message;  // btrfs itself is there

  // initramfs-tools may store modules decompressed: the name without .xz counts too.
  auto both = compress("gzip", newc({{"init", "#!/bin/sh\n", 0100755},
                                     {in_initrd + "fs/btrfs/btrfs.ko.xz", *ko},
                                     {in_initrd + "lib/libcrc32c.ko", "x"}}));
  write_file(p("boot/initrd.img-" + v_), *both);
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());

  // The module file itself gone: modules.dep names it for the root filesystem.
  std::filesystem::remove(p(d + "kernel/lib/libcrc32c.ko.xz"));
  out = run();
  f = find(out, "/lib/modules/" + v_ + "/modules.dep", Severity::block, "kernel/lib/libcrc32c.ko.xz");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->id, "missing-module:kernel/lib/libcrc32c.ko.xz");

  // Built in: nothing is needed.
  write_file(p(d + "modules.builtin"), "kernel/fs/btrfs/btrfs.ko\n");
  write_file(p(d + "modules.dep"), "");
  write_file(p("boot/initrd.img-" + v_), newc({{"init", "#!/bin/sh\n", 0100755}}));
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());
}

TEST_F(BootTest, RootFilesystemWithoutAModule) {
  write_file(p("etc/fstab"), "tmpfs / tmpfs defaults 0 0\n");  // no module provides it: nothing to require
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());
  write_file(p("etc/fstab"), "UUID=aaaa / ext3 defaults 0 0\n");  // ext4 provides it, built in here
  write_file(p(modules_dir(v_) + "modules.alias"), "alias fs-ext3 ext4\n");
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());
  write_file(p("etc/fstab"), "UUID=aaaa / xfs defaults 0 0\n");  // neither a module nor built in
  CheckOutput out = run();
  const Finding* f = find(out, "/lib/modules/" + v_ + "/modules.dep", Severity::warn, "root filesystem type xfs");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->id, "root-fs-module");
}

TEST_F(BootTest, ModuleBuiltForAnotherKernelBlocks) {
  std::string d = modules_dir(v_);
  std::string right = fake_module(v_ + " SMP preempt mod_unload modversions ");
  std::string wrong = fake_module("6.1.0-99-amd64 SMP preempt mod_unload modversions ");
  write_file(p(d + "updates/dkms/zfs.ko"), right);
  write_file(p(d + "modules.dep"), "updates/dkms/zfs.ko:\n");
  std::uint64_t items = run().items;
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());

  write_file(p(d + "updates/dkms/zfs.ko"), wrong);
  CheckOutput out = run();
  std::string path = "/lib/modules/" + v_ + "/updates/dkms/zfs.ko";
  const Finding* f = find(out, path, Severity::block, "built for kernel 6.1.0-99-amd64");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->id, "vermagic:" + path);
  EXPECT_NE(f->message.find("not " + v_), std::string::npos) << f->message;
  EXPECT_NE(f->message.find("Exec format error"), std::string::npos) << f->message;
  EXPECT_GE(out.items, items);

  // xz-compressed, as trixie's kernel and DKMS write them.
  std::filesystem::remove(p(d + "updates/dkms/zfs.ko"));
  write_file(p(d + "modules.dep"), "");
  auto xz = compress("xz", wrong);
  ASSERT_TRUE(xz);
  write_file(p(d + "extra/vbox.ko.xz"), *xz);
  out = run();
  EXPECT_TRUE(find(out, "/lib/modules/" + v_ + "/extra/vbox.ko.xz", Severity::block, "6.1.0-99-amd64")) << dump(out);
  write_file(p(d + "extra/vbox.ko.xz"), xz->substr(0, xz->size() / 2));
  out = run();
  EXPECT_TRUE(find(out, "/lib/modules/" + v_ + "/extra/vbox.ko.xz", Severity::block, "cannot be loaded")) << dump(out);
  std::filesystem::remove(p(d + "extra/vbox.ko.xz"));

  // The kernel package's own compressed modules are read only when root needs them; its
  // uncompressed ones are cheap to read and always are.
  write_file(p(d + "kernel/drivers/x/x.ko.xz"), *xz);
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());
  write_file(p(d + "kernel/drivers/x/y.ko"), wrong);
  EXPECT_TRUE(find(run(), "/lib/modules/" + v_ + "/kernel/drivers/x/y.ko", Severity::block, "6.1.0-99")) << dump(run());
}

TEST_F(BootTest, TruncatedKernelImageBlocks) {
  std::string img = fake_bzimage(v_ + " (debian-kernel@lists.debian.org) #1 SMP Debian");
  img[0x1F1] = 27;                      // setup_sects
  img[0x1F4] = 0x00, img[0x1F5] = 0x02;  // syssize 0x200 paragraphs: 8 KiB
  std::size_t full = 28 * 512 + 0x200 * 16;
  img.resize(full, '\x90');
  write_file(p("boot/vmlinuz-" + v_), img + std::string(700, 's'));  // an appended signature is fine
  EXPECT_EQ(count_at_least(run(), Severity::info), 0U) << dump(run());
  write_file(p("boot/vmlinuz-" + v_), img.substr(0, full - 1));
  CheckOutput out = run();
  const Finding* f = find(out, "/boot/vmlinuz-" + v_, Severity::block, "is truncated");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->id, "truncated");
  EXPECT_NE(f->message.find(std::to_string(full - 1) + " bytes"), std::string::npos) << f->message;
  EXPECT_NE(f->message.find("at least " + std::to_string(full)), std::string::npos) << f->message;
}

}  // namespace
}  // namespace guard::checks
