#include "formats/fstab.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "formats/mount_table.h"
#include "tests/common/mutations.h"

namespace guard::formats {
namespace {

TEST(Fstab, ParsesEntriesKeepingTags) {
  auto t = parse_fstab(
      "# /etc/fstab: static file system information.\n"
      "UUID=1b2c-aaaa /               ext4    errors=remount-ro 0       1\n"
      "LABEL=data     /srv\\040data    xfs     defaults,nofail   0       2\n"
      "/dev/sdb1      /mnt/usb        vfat    noauto,user       0       0\n"
      "UUID=5555      none            swap    sw                0       0\n"
      "tmpfs          /tmp            tmpfs   mode=1777         0       0\n");
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_TRUE(t->bad_lines.empty());
  ASSERT_EQ(t->entries.size(), 5U);
  EXPECT_EQ(t->entries[0].source, "UUID=1b2c-aaaa");
  EXPECT_EQ(t->entries[0].target, "/");
  EXPECT_EQ(t->entries[0].fstype, "ext4");
  EXPECT_FALSE(t->entries[0].nofail);
  EXPECT_EQ(t->entries[1].target, "/srv data");
  EXPECT_TRUE(t->entries[1].nofail);
  EXPECT_TRUE(t->entries[2].noauto);
  EXPECT_TRUE(t->entries[3].swap);
  ASSERT_NE(t->find_target("/"), nullptr);
  EXPECT_EQ(t->find_target("/")->source, "UUID=1b2c-aaaa");
  EXPECT_EQ(t->find_target("/nowhere"), nullptr);
}

TEST(Fstab, UnparsableLinesAreNumbered) {
  auto t = parse_fstab("UUID=1 / ext4 defaults 0 1\n\n# comment\ngarbage\nUUID=2 /home ext4 defaults 0 2\n");
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(t->bad_lines, std::vector<std::size_t>{4});
  EXPECT_EQ(t->entries.size(), 2U);
}

TEST(Fstab, EmptyIsEmpty) {
  auto t = parse_fstab("");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->entries.empty());
  auto c = parse_fstab("# UNCONFIGURED FSTAB FOR BASE SYSTEM\n");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->entries.empty());
  EXPECT_TRUE(c->bad_lines.empty());
}

TEST(Fstab, RootOptions) {
  auto entries = parse_fstab(
      "# comment\nUUID=abc / btrfs defaults,subvol=@ 0 0\nUUID=abc /home btrfs subvol=@home 0 0\n"
      "/dev/vda1 /boot/efi vfat umask=0077 0 1\n");
  ASSERT_TRUE(entries) << entries.error().to_string();
  ASSERT_EQ(entries->entries.size(), 3u);
  EXPECT_EQ(entries->entries[0].target, "/");
  EXPECT_EQ(get_option(entries->entries[0].options, "subvol").value_or("?"), "@");
  EXPECT_FALSE(get_option(entries->entries[2].options, "subvol").has_value());
}

TEST(Fstab, RootUuidIsTheLastRootEntrysUuid) {
  auto t = parse_fstab(
      "# <file system> <mount point> <type> <options> <dump> <pass>\n"
      "UUID=1b2c-aaaa / btrfs defaults,subvol=@rootfs 0 0\n"
      "UUID=3333 /boot ext4 defaults 0 2\n");
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(t->root_uuid().value_or("?"), "1b2c-aaaa");

  // Quoted, as blkid accepts it.
  auto quoted = parse_fstab("UUID=\"1b2c-bbbb\" / ext4 defaults 0 1\n");
  ASSERT_TRUE(quoted) << quoted.error().to_string();
  EXPECT_EQ(quoted->root_uuid().value_or("?"), "1b2c-bbbb");

  // The last / entry is the one mount would use.
  auto two = parse_fstab("UUID=old / ext4 defaults 0 1\n/dev/vda2 / ext4 defaults 0 1\n");
  ASSERT_TRUE(two);
  EXPECT_EQ(two->find_target("/")->source, "/dev/vda2");
  EXPECT_FALSE(two->root_uuid().has_value());

  for (const char* text : {"", "# / only in a comment: UUID=x / ext4\n", "LABEL=root / ext4 defaults 0 1\n",
                           "UUID=x /srv ext4 defaults 0 2\n", "PARTUUID=x / ext4 defaults 0 1\n"}) {
    auto f = parse_fstab(text);
    ASSERT_TRUE(f) << text;
    EXPECT_FALSE(f->root_uuid().has_value()) << text;
  }
}

TEST(Fstab, SourceTags) {
  EXPECT_EQ(source_tag("UUID=1b2c-aaaa", "UUID").value_or("?"), "1b2c-aaaa");
  EXPECT_EQ(source_tag("LABEL=\"root fs\"", "LABEL").value_or("?"), "root fs");
  EXPECT_EQ(source_tag("PARTUUID='0a-01'", "PARTUUID").value_or("?"), "0a-01");
  EXPECT_FALSE(source_tag("PARTUUID=0a-01", "UUID").has_value());
  EXPECT_FALSE(source_tag("/dev/sda1", "UUID").has_value());
  EXPECT_FALSE(source_tag("UUID=", "UUID").has_value());
  EXPECT_FALSE(source_tag("UUID", "UUID").has_value());
  EXPECT_FALSE(source_tag("UUIDX=1", "UUID").has_value());
  EXPECT_EQ(source_tag("UUID=\"", "UUID").value_or("?"), "\"");  // one quote is not a quoted value
}

TEST(Fstab, CommentsBlankLinesAndMissingFields) {
  auto t = parse_fstab(
      "   # indented comment\n\n\t\n"
      "UUID=a / ext4\n"               // no options, dump or pass: defaults
      "UUID=b /home ext4 defaults\n"  // no dump or pass
      "UUID=c\n"                      // truncated after the source
      "UUID=d /srv\n"                 // truncated after the mount point
      "UUID=e /var xfs defaults 0 2 # trailing comment\n"
      "UUID=f /opt ext4 defaults 0 2");  // no final newline
  ASSERT_TRUE(t) << t.error().to_string();
  std::vector<std::string> targets;
  for (const auto& e : t->entries) targets.push_back(e.target);
  // Missing options, dump and pass are defaults; a comment after the fields is ignored.
  EXPECT_EQ(targets, (std::vector<std::string>{"/", "/home", "/var", "/opt"}));
  EXPECT_EQ(t->entries[0].options, "");
  EXPECT_EQ(t->entries[2].options, "defaults");
  // A line without a mount point or without a type cannot be mounted: numbered, not guessed.
  EXPECT_EQ(t->bad_lines, (std::vector<std::size_t>{6, 7}));
}

TEST(Fstab, HugeFieldsAndManyLines) {
  std::string big_source = "srv:/" + std::string(64 << 10, 'x');
  std::string big_options = "defaults," + std::string(64 << 10, 'o') + "=1";
  auto t = parse_fstab(big_source + " /mnt/big nfs " + big_options + " 0 0\nUUID=a / ext4 defaults 0 1\n");
  ASSERT_TRUE(t) << t.error().to_string();
  ASSERT_EQ(t->entries.size(), 2U);
  EXPECT_EQ(t->entries[0].source, big_source);
  EXPECT_EQ(t->entries[0].options, big_options);
  EXPECT_EQ(t->root_uuid().value_or("?"), "a");

  std::string many;
  for (int i = 0; i < 20000; ++i)
    many += "UUID=" + std::to_string(i) + " /m/" + std::to_string(i) + " ext4 defaults 0 2\n";
  auto m = parse_fstab(many);
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(m->entries.size(), 20000U);
  EXPECT_EQ(m->find_target("/m/19999")->source, "UUID=19999");
}

TEST(Fstab, RandomMutationsDoNotCrash) {
  std::mt19937 rng(20261123);
  const std::string seed =
      "# /etc/fstab\nUUID=1b2c-aaaa / btrfs defaults,subvol=@rootfs 0 0\nLABEL=data /srv\\040data xfs nofail 0 2\n"
      "/dev/sdb1 /mnt/usb vfat noauto,user 0 0\nUUID=5555 none swap sw 0 0\ntmpfs /tmp tmpfs mode=1777 0 0\n";
  const char alphabet[] = " \t\n#=\\\"',/0aZ\0";
  for (int round = 0; round < 2000; ++round) {
    std::string s = guard::testing::mutate(seed, rng, std::string_view(alphabet, sizeof(alphabet) - 1));
    auto t = parse_fstab(s);
    if (t) (void)t->root_uuid();
  }
}

TEST(Options, GetOption) {
  EXPECT_EQ(get_option("rw,subvol=@,compress=zstd", "subvol").value_or("?"), "@");
  EXPECT_EQ(get_option("rw,subvolid=256,subvol=/@", "subvolid").value_or("?"), "256");
  EXPECT_EQ(get_option("rw,noatime", "noatime").value_or("?"), "");
  EXPECT_FALSE(get_option("rw", "subvol").has_value());
  EXPECT_FALSE(get_option("", "subvol").has_value());
  EXPECT_FALSE(get_option("subvolid=5", "subvol").has_value());  // a longer name is another option
}

TEST(MountTable, ThisProcesssMountsContainEveryPath) {
  auto t = MountTable::mountinfo();
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_FALSE(t->entries().empty());
  EXPECT_TRUE(t->bad_lines().empty());
  auto root = t->find_mountpoint("/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->target, "/");
  auto proc = t->find_mountpoint("/proc/self");
  ASSERT_TRUE(proc);
  EXPECT_EQ(proc->target, "/proc");
  EXPECT_EQ(proc->fstype, "proc");
  ASSERT_TRUE(t->find_target("/proc"));
  EXPECT_FALSE(t->find_target("/proc/self").has_value());  // inside a mount, not a mount point
}

TEST(MountTable, FstabTableKeepsFlagsAndBadLines) {
  auto t = MountTable::parse_fstab("UUID=1 / ext4 defaults 0 1\ngarbage\nUUID=2 none swap sw,nofail 0 0\n");
  ASSERT_TRUE(t) << t.error().to_string();
  ASSERT_EQ(t->entries().size(), 2U);
  EXPECT_EQ(t->bad_lines(), std::vector<std::size_t>{2});
  EXPECT_TRUE(t->entries()[1].swap);
  EXPECT_TRUE(t->entries()[1].nofail);
  EXPECT_EQ(t->entries()[0].fs_root, "");
  ASSERT_TRUE(t->find_target("/"));
  EXPECT_EQ(t->find_target("/")->source, "UUID=1");
  auto empty = MountTable::parse_fstab("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->entries().empty());
}

}  // namespace
}  // namespace guard::formats
