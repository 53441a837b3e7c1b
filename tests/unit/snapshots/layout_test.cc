#include "snapshots/layout.h"

#include <gtest/gtest.h>

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
