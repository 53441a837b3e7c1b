#include "checks/bls.h"

#include <gtest/gtest.h>

namespace guard::checks {
namespace {

TEST(Bls, ParsesATypeOneEntry) {
  BlsEntry e = parse_bls_entry(
      "# Boot Loader Specification type#1 entry\n"
      "title      Debian GNU/Linux 12 (bookworm)\n"
      "version    6.1.0-13-amd64\n"
      "machine-id 4f0c8e6b2d3a4e5f8a9b0c1d2e3f4a5b\n"
      "sort-key   debian\n"
      "options    root=UUID=1b2c ro quiet\n"
      "options    systemd.unit=multi-user.target\n"
      "linux      /4f0c8e6b2d3a4e5f8a9b0c1d2e3f4a5b/6.1.0-13-amd64/linux\n"
      "initrd     /4f0c8e6b2d3a4e5f8a9b0c1d2e3f4a5b/6.1.0-13-amd64/microcode\n"
      "initrd     /4f0c8e6b2d3a4e5f8a9b0c1d2e3f4a5b/6.1.0-13-amd64/initrd.img-6.1.0-13-amd64\n"
      "unknown-key whatever\n");
  EXPECT_EQ(e.title, "Debian GNU/Linux 12 (bookworm)");
  EXPECT_EQ(e.version, "6.1.0-13-amd64");
  EXPECT_EQ(e.machine_id, "4f0c8e6b2d3a4e5f8a9b0c1d2e3f4a5b");
  EXPECT_EQ(e.sort_key, "debian");
  EXPECT_EQ(e.kernel, "/4f0c8e6b2d3a4e5f8a9b0c1d2e3f4a5b/6.1.0-13-amd64/linux");
  ASSERT_EQ(e.initrd.size(), 2U);
  EXPECT_EQ(e.initrd[1], "/4f0c8e6b2d3a4e5f8a9b0c1d2e3f4a5b/6.1.0-13-amd64/initrd.img-6.1.0-13-amd64");
  ASSERT_EQ(e.options.size(), 2U);
  EXPECT_EQ(e.options[0], "root=UUID=1b2c ro quiet");
  EXPECT_TRUE(e.efi.empty());
}

TEST(Bls, UkiEntryAndTabs) {
  BlsEntry e = parse_bls_entry("title\tDebian UKI\r\nefi\t/EFI/Linux/debian-6.1.0-13-amd64.efi\n");
  EXPECT_EQ(e.title, "Debian UKI");
  EXPECT_EQ(e.efi, "/EFI/Linux/debian-6.1.0-13-amd64.efi");
  EXPECT_TRUE(e.kernel.empty());
}

}  // namespace
}  // namespace guard::checks
