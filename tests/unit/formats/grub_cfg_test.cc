#include "formats/grub_cfg.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/common/test_env.h"
#include "tests/unit/formats/grub_cfg_samples.h"

namespace guard::formats {
namespace {

using guard::testing::kSeparateBoot;

TEST(GrubCfg, EntriesWithTitlesIdsAndPaths) {
  GrubConfig cfg = parse_grub_cfg(kSeparateBoot);
  ASSERT_EQ(cfg.entries.size(), 4U);
  const GrubEntry& e = cfg.entries[0];
  EXPECT_EQ(e.title, "Debian GNU/Linux");
  EXPECT_EQ(e.id, "gnulinux-simple-aaaa-root");
  ASSERT_TRUE(e.kernel);
  EXPECT_EQ(e.kernel->path, "/vmlinuz-6.1.0-13-amd64");
  EXPECT_FALSE(e.kernel->unresolved);
  ASSERT_EQ(e.initrds.size(), 1U);
  EXPECT_EQ(e.initrds[0].path, "/initrd.img-6.1.0-13-amd64");
  EXPECT_EQ(e.root.kind, GrubRoot::Kind::fs_uuid);
  EXPECT_EQ(e.root.value, "bbbb-boot");
  EXPECT_EQ(e.line, 25U);
  EXPECT_FALSE(cfg.entries[3].kernel);  // fwsetup loads nothing
}

TEST(GrubCfg, SubmenuPathsAndSelectors) {
  GrubConfig cfg = parse_grub_cfg(kSeparateBoot);
  const GrubEntry& adv = cfg.entries[1];
  ASSERT_EQ(adv.chain.size(), 2U);
  EXPECT_EQ(GrubConfig::title_path(adv),
            "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-13-amd64");
  EXPECT_EQ(adv.chain[0].index, 1);
  EXPECT_EQ(adv.chain[1].index, 0);
  ASSERT_EQ(adv.initrds.size(), 2U);
  EXPECT_EQ(cfg.entries[2].title, "Debian GNU/Linux, with Linux 6.1.0-13-amd64 (recovery mode)");
  EXPECT_EQ(cfg.entries[3].chain[0].index, 2);  // the submenu counts as an item of the top menu

  EXPECT_TRUE(cfg.selects("0"));
  EXPECT_TRUE(cfg.selects("Debian GNU/Linux"));
  EXPECT_TRUE(cfg.selects("gnulinux-simple-aaaa-root"));
  EXPECT_TRUE(cfg.selects("1>1"));
  EXPECT_TRUE(cfg.selects("gnulinux-advanced-aaaa-root>gnulinux-6.1.0-13-amd64-recovery-aaaa-root"));
  EXPECT_TRUE(cfg.selects("Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-13-amd64"));
  EXPECT_TRUE(cfg.selects("uefi-firmware"));
  EXPECT_FALSE(cfg.selects("1>2"));
  EXPECT_FALSE(cfg.selects("3"));
  EXPECT_FALSE(cfg.selects("gnulinux-6.1.0-12-amd64-advanced-aaaa-root"));
  EXPECT_FALSE(cfg.selects("Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-12-amd64"));
}

TEST(GrubCfg, RootOnOneFilesystemAndSetRoot) {
  GrubConfig cfg = parse_grub_cfg(
      "menuentry 'Debian' {\n  set root=(hd0,msdos1)\n  linux /boot/vmlinuz-6.1.0-13-amd64 ro\n"
      "  initrd (hd0,msdos1)/boot/initrd.img-6.1.0-13-amd64 ($root)/boot/extra.img\n}\n");
  ASSERT_EQ(cfg.entries.size(), 1U);
  const GrubEntry& e = cfg.entries[0];
  EXPECT_EQ(e.root.kind, GrubRoot::Kind::device);
  EXPECT_EQ(e.root.value, "hd0,msdos1");
  EXPECT_EQ(e.kernel->path, "/boot/vmlinuz-6.1.0-13-amd64");
  ASSERT_EQ(e.initrds.size(), 2U);
  EXPECT_EQ(e.initrds[0].device, "hd0,msdos1");
  EXPECT_EQ(e.initrds[0].path, "/boot/initrd.img-6.1.0-13-amd64");
  EXPECT_EQ(e.initrds[1].device, "");  // ($root) is the entry's own root
}

TEST(GrubCfg, VariablesQuotingAndSemicolons) {
  GrubConfig cfg = parse_grub_cfg(
      "set kver=\"6.1.0-13-amd64\"; set boot_dir=/boot\n"
      "menuentry \"It's \\\"quoted\\\"\" { search.fs_uuid cccc root ; linux ${boot_dir}/vmlinuz-$kver ; "
      "initrd $prefix/initrd.img-$kver\n}\n"
      "menuentry 'two words' 'arg' {\n  linux \"/boot/with space/vmlinuz\"\n}\n");
  ASSERT_EQ(cfg.entries.size(), 2U);
  EXPECT_EQ(cfg.entries[0].title, "It's \"quoted\"");
  EXPECT_EQ(cfg.entries[0].root.kind, GrubRoot::Kind::fs_uuid);
  EXPECT_EQ(cfg.entries[0].root.value, "cccc");
  EXPECT_EQ(cfg.entries[0].kernel->path, "/boot/vmlinuz-6.1.0-13-amd64");
  EXPECT_FALSE(cfg.entries[0].kernel->unresolved);
  ASSERT_EQ(cfg.entries[0].initrds.size(), 1U);
  EXPECT_TRUE(cfg.entries[0].initrds[0].unresolved);  // $prefix is known only to GRUB
  EXPECT_EQ(cfg.entries[1].title, "two words");
  EXPECT_EQ(cfg.entries[1].kernel->path, "/boot/with space/vmlinuz");
}

TEST(GrubCfg, FunctionBodiesAreNotEntries) {
  GrubConfig cfg = parse_grub_cfg(
      "function make_entry {\n  menuentry \"$1\" { linux /vmlinuz-$1 }\n}\nmenuentry 'real' {\n linux /vmlinuz\n}\n");
  ASSERT_EQ(cfg.entries.size(), 1U);
  EXPECT_EQ(cfg.entries[0].title, "real");
}

TEST(GrubCfg, GarbageDoesNotCrash) {
  for (const char* s : {"", "{", "}", "}}}{{{", "menuentry", "menuentry '", "menuentry \"x\" {", "linux", "$", "${",
                        "search --set", "set =x", "\\", "'unterminated", "menuentry a { linux ( }"}) {
    GrubConfig cfg = parse_grub_cfg(s);
    (void)cfg.selects("0>0");
  }
}

TEST(GrubCfg, KernelCommandLineIsKeptWordByWord) {
  GrubConfig cfg = parse_grub_cfg(kSeparateBoot);
  ASSERT_EQ(cfg.entries.size(), 4U);
  EXPECT_EQ(cfg.entries[0].kernel_args, (std::vector<std::string>{"root=UUID=aaaa-root", "ro", "quiet"}));
  EXPECT_EQ(cfg.entries[2].kernel_args, (std::vector<std::string>{"root=UUID=aaaa-root", "ro", "single"}));
  EXPECT_TRUE(cfg.entries[3].kernel_args.empty());

  // Quotes go, variables set in the file are expanded, a later linux line replaces an earlier one.
  cfg = parse_grub_cfg(
      "set flags=\"subvol=@rootfs\"\n"
      "menuentry 'Debian' {\n"
      "  linux /@rootfs/boot/vmlinuz-6.1 root=UUID=1 ro \"rootflags=subvol=@\"\n"
      "  linux /@rootfs/boot/vmlinuz-6.1 root=UUID=1 ro rootflags=${flags} quiet\n"
      "}\n"
      "# linux /vmlinuz rootflags=subvol=commented\n"
      "linux /vmlinuz rootflags=subvol=outside-any-entry\n");
  ASSERT_EQ(cfg.entries.size(), 1U);
  EXPECT_EQ(cfg.entries[0].kernel_args,
            (std::vector<std::string>{"root=UUID=1", "ro", "rootflags=subvol=@rootfs", "quiet"}));

  // A variable GRUB sets at boot (the boot counter's fallback entry) is left as written.
  cfg = parse_grub_cfg(
      "menuentry 'Pre-upgrade snapshot' --id upgrade-guard-fallback {\n"
      "  linux \"${ug_fallback_linux}\" root=UUID=${ug_fallback_uuid} ro rootflags=${ug_fallback_rootflags}\n}\n");
  ASSERT_EQ(cfg.entries.size(), 1U);
  ASSERT_TRUE(cfg.entries[0].kernel);
  EXPECT_TRUE(cfg.entries[0].kernel->unresolved);
  EXPECT_EQ(cfg.entries[0].kernel_args,
            (std::vector<std::string>{"root=UUID=${ug_fallback_uuid}", "ro", "rootflags=${ug_fallback_rootflags}"}));
}

TEST(GrubCfg, TruncatedAndHugeInputs) {
  // Cut anywhere, the sample still parses into at most its four entries.
  const std::string full = kSeparateBoot;
  for (std::size_t n = 0; n <= full.size(); n += 7) {
    GrubConfig cfg = parse_grub_cfg(std::string_view(full).substr(0, n));
    EXPECT_LE(cfg.entries.size(), 4U) << n;
  }
  // A huge title, kernel argument and variable value are kept whole.
  std::string big(1 << 20, 'x');
  GrubConfig cfg =
      parse_grub_cfg("set v=" + big + "\nmenuentry '" + big + "' {\n linux /vmlinuz " + big + " a=$v\n}\n");
  ASSERT_EQ(cfg.entries.size(), 1U);
  EXPECT_EQ(cfg.entries[0].title.size(), big.size());
  ASSERT_EQ(cfg.entries[0].kernel_args.size(), 2U);
  EXPECT_EQ(cfg.entries[0].kernel_args[0], big);
  EXPECT_EQ(cfg.entries[0].kernel_args[1], "a=" + big);
  // Deep nesting of unclosed blocks does not recurse.
  std::string deep;
  for (int i = 0; i < 500; ++i) deep += "submenu s {\n";
  deep += "menuentry e { linux /vmlinuz }\n";
  EXPECT_EQ(parse_grub_cfg(deep).entries.size(), 1U);
}

TEST(GrubCfg, FindsTheRootsGrubCfg) {
  guard::testing::TempDir dir;
  auto open_root = [&] {
    auto root = base::Root::open(dir.path());
    EXPECT_TRUE(root) << root.error().to_string();
    return std::move(*root);
  };
  EXPECT_EQ(find_grub_cfg(open_root()), "");
  guard::testing::write_file(dir / "boot/grub2/grub.cfg", "menuentry a { }\n");
  EXPECT_EQ(find_grub_cfg(open_root()), "/boot/grub2/grub.cfg");
  guard::testing::make_dirs(dir / "boot/grub/grub.cfg");  // a directory is not a grub.cfg
  EXPECT_EQ(find_grub_cfg(open_root()), "/boot/grub2/grub.cfg");
  std::filesystem::remove(dir / "boot/grub/grub.cfg");
  guard::testing::make_symlink("/boot/grub2/grub.cfg", dir / "boot/grub/grub.cfg");  // resolved inside the root
  EXPECT_EQ(find_grub_cfg(open_root()), "/boot/grub/grub.cfg");
  // A FIFO (or a device) is a grub.cfg GRUB cannot read: returned, for the boot check to
  // report, not taken for a missing one.
  std::filesystem::remove(dir / "boot/grub/grub.cfg");
  ASSERT_EQ(::mkfifo((dir / "boot/grub/grub.cfg").c_str(), 0644), 0);
  EXPECT_EQ(find_grub_cfg(open_root()), "/boot/grub/grub.cfg");
}

}  // namespace
}  // namespace guard::formats
