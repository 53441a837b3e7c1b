#include "snapshots/layout.h"

#include <gtest/gtest.h>

#include "snapshots/backend.h"
#include "tests/common/test_env.h"

namespace guard::snapshots {
namespace {

TEST(LayoutParse, CmdlineRootflagsSubvol) {
  auto pins =
      parse_cmdline_pins("BOOT_IMAGE=/@/boot/vmlinuz root=UUID=1 ro rootflags=subvol=@,compress=zstd quiet", "cmdline");
  ASSERT_EQ(pins.size(), 1u);
  EXPECT_EQ(pins[0].source, "cmdline");
  EXPECT_EQ(pins[0].option, "subvol");
  EXPECT_EQ(pins[0].value, "@");
}

TEST(LayoutParse, CmdlineWithoutRootflagsHasNoPin) {
  EXPECT_TRUE(parse_cmdline_pins("root=/dev/vda1 ro subvol=@", "cmdline").empty());
}

TEST(LayoutParse, GrubLinuxLinesDeduplicated) {
  const char* cfg =
      "menuentry 'Debian' {\n"
      "  linux /@/boot/vmlinuz-6.1 root=UUID=1 ro rootflags=subvol=@ quiet\n"
      "}\n"
      "menuentry 'Debian rescue' {\n"
      "  linux /@/boot/vmlinuz-6.1 root=UUID=1 ro rootflags=subvolid=256,subvol=@ single\n"
      "}\n"
      "# linux rootflags=subvol=commented\n";
  auto pins = parse_grub_pins(cfg);
  ASSERT_EQ(pins.size(), 2u);
  EXPECT_EQ(pins[0].option, "subvol");
  EXPECT_EQ(pins[0].value, "@");
  EXPECT_EQ(pins[1].option, "subvolid");
  EXPECT_EQ(pins[1].value, "256");
}

// A btrfs root at `subvol_path` with these pins, as detect_layout would fill it in.
Layout pinned_layout(const std::string& subvol_path, std::vector<SubvolPin> pins) {
  Layout l;
  l.root_dir = "/";
  l.fstype = "btrfs";
  l.is_subvolume = true;
  l.subvol_path = subvol_path;
  l.pins = std::move(pins);
  return l;
}

TEST(LayoutRollbackTarget, ThePinnedSubvolumeOfANormalBoot) {
  auto t = rollback_target(pinned_layout("@rootfs", {{"fstab", "subvol", "@rootfs"},
                                                     {"cmdline", "subvol", "/@rootfs"},
                                                     {"grub.cfg", "subvol", "@rootfs"}}));
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(t->subvol_path, "@rootfs");
  EXPECT_EQ(t->running_from, "");
  // Unpinned: the root's own subvolume (the rollback sets the default subvolume).
  auto plain = rollback_target(pinned_layout("rootfs", {}));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->subvol_path, "rootfs");
}

TEST(LayoutRollbackTarget, TheFallbackBootTargetsThePinnedRootNotTheSnapshotItRunsFrom) {
  // Booted by the GRUB fallback entry: the command line pins the snapshot, the snapshot's own
  // fstab and grub.cfg pin @rootfs (the fallback entry's rootflags is a GRUB variable there).
  auto t = rollback_target(pinned_layout("@upgrade-guard/20260122-101500-pre-run-12",
                                         {{"fstab", "subvol", "@rootfs"},
                                          {"cmdline", "subvol", "@upgrade-guard/20260122-101500-pre-run-12"},
                                          {"grub.cfg", "subvol", "@rootfs"},
                                          {"grub.cfg", "subvol", "${ug_fallback_rootflags}"}}));
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(t->subvol_path, "@rootfs");
  EXPECT_EQ(t->running_from, "@upgrade-guard/20260122-101500-pre-run-12");
}

TEST(LayoutRollbackTarget, DisagreeingPinsAreRefusedNamingEachOne) {
  auto t = rollback_target(pinned_layout("@rootfs", {{"fstab", "subvol", "@rootfs"},
                                                     {"cmdline", "subvol", "@"},
                                                     {"grub.cfg", "subvol", "@rootfs"}}));
  ASSERT_FALSE(t);
  EXPECT_TRUE(is_refusal(t.error()));
  std::string msg = t.error().to_string();
  EXPECT_NE(msg.find("disagree (fstab: subvol=@rootfs, cmdline: subvol=@, grub.cfg: subvol=@rootfs)"),
            std::string::npos)
      << msg;
}

TEST(LayoutRollbackTarget, ASnapshotThatNothingPinsAndARootThatIsNotThePinnedOneAreRefused) {
  auto store = rollback_target(pinned_layout("@upgrade-guard/S", {{"cmdline", "subvol", "@upgrade-guard/S"}}));
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().to_string().find("the root is @upgrade-guard/S, a subvolume of the snapshot store"),
            std::string::npos)
      << store.error().to_string();
  auto other = rollback_target(pinned_layout("@old", {{"fstab", "subvol", "@rootfs"}}));
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().to_string().find(
                "the root is subvolume @old but the boot configuration pins @rootfs (fstab: subvol=@rootfs)"),
            std::string::npos)
      << other.error().to_string();
  EXPECT_TRUE(in_snapshot_store("/@upgrade-guard/x/"));
  EXPECT_TRUE(in_snapshot_store("@upgrade-guard"));
  EXPECT_FALSE(in_snapshot_store("@upgrade-guard-old"));
  EXPECT_FALSE(in_snapshot_store("@rootfs"));
}

TEST(LayoutDetect, PlainDirectoryIsNotBtrfsSubvolume) {
  guard::testing::TempDir dir;
  guard::testing::write_file(dir / "etc/fstab", "UUID=abc / btrfs subvol=@,compress=zstd 0 0\n");
  auto layout = detect_layout(dir.path());
  ASSERT_TRUE(layout) << layout.error().to_string();
  EXPECT_FALSE(layout->live);
  EXPECT_TRUE(layout->pinned_by_path());
  EXPECT_FALSE(layout->pinned_by_id());
  if (!layout->btrfs()) {
    EXPECT_NE(render_layout_text(*layout).find("NOT restorable"), std::string::npos) << render_layout_text(*layout);
  }
  EXPECT_NE(render_layout_json(*layout).find("\"fstype\""), std::string::npos);
}

}  // namespace
}  // namespace guard::snapshots
