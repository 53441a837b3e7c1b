#include "checks/dpkg_status.h"

#include <gtest/gtest.h>

#include <random>

namespace guard::checks {
namespace {

constexpr const char* kStatus = R"(Package: bash
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Multi-Arch: foreign
Version: 5.2.15-2+b7
Conffiles:
 /etc/bash.bashrc 89269e1298235f1b12b4c16e4065ad0d
 /etc/skel/.bashrc ee35a240758f374832e809ae0ea4883a
 /etc/old.conf 0123456789abcdef0123456789abcdef obsolete
 /etc/gone.conf 0123456789abcdef0123456789abcdef remove-on-upgrade
 /etc/with space.conf newconffile
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.
 .
 more text: with a colon

Package: libc6
Status: hold reinstreq half-configured
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u4

Package: old-thing
Status: deinstall ok config-files
Architecture: all
Version: 1.0
)";

TEST(ParseStatus, ReadsPackagesStatesAndConffiles) {
  auto pkgs = parse_status(kStatus);
  ASSERT_TRUE(pkgs) << pkgs.error().to_string();
  ASSERT_EQ(pkgs->size(), 3u);
  const auto& bash = (*pkgs)[0];
  EXPECT_EQ(bash.name, "bash");
  EXPECT_EQ(bash.key(), "bash");
  EXPECT_EQ(bash.version, "5.2.15-2+b7");
  EXPECT_EQ(bash.want, Want::install);
  EXPECT_EQ(bash.flag, DpkgFlag::ok);
  EXPECT_EQ(bash.state, DpkgState::installed);
  EXPECT_EQ(bash.line, 1u);
  ASSERT_EQ(bash.conffiles.size(), 5u);
  EXPECT_EQ(bash.conffiles[0].path, "/etc/bash.bashrc");
  EXPECT_EQ(bash.conffiles[0].md5, "89269e1298235f1b12b4c16e4065ad0d");
  EXPECT_TRUE(bash.conffiles[2].obsolete);
  EXPECT_TRUE(bash.conffiles[3].remove_on_upgrade);
  EXPECT_EQ(bash.conffiles[4].path, "/etc/with space.conf");
  EXPECT_EQ(bash.conffiles[4].md5, "newconffile");

  const auto& libc = (*pkgs)[1];
  EXPECT_EQ(libc.key(), "libc6:amd64");  // Multi-Arch: same is named with its arch
  EXPECT_EQ(libc.want, Want::hold);
  EXPECT_EQ(libc.flag, DpkgFlag::reinstreq);
  EXPECT_EQ(libc.state, DpkgState::half_configured);
  EXPECT_EQ(libc.line, 19u);
  EXPECT_EQ((*pkgs)[2].state, DpkgState::config_files);
}

TEST(ParseStatus, EveryStateWord) {
  const char* words[] = {"not-installed",   "config-files",     "half-installed", "unpacked",
                         "half-configured", "triggers-awaited", "triggers-pending", "installed"};
  for (int i = 0; i < 8; ++i) {
    std::string text = std::string("Package: p\nStatus: install ok ") + words[i] + "\n";
    auto pkgs = parse_status(text);
    ASSERT_TRUE(pkgs) << words[i];
    EXPECT_EQ(static_cast<int>((*pkgs)[0].state), i);
    EXPECT_STREQ(to_string((*pkgs)[0].state), words[i]);
  }
}

TEST(ParseStatus, MalformedParagraphNamesTheLine) {
  auto bad_line = parse_status("Package: a\nStatus: install ok installed\n\nPackage: b\nthis is not a field\n",
                               "/var/lib/dpkg/status");
  ASSERT_FALSE(bad_line);
  EXPECT_EQ(bad_line.error().path, "/var/lib/dpkg/status");
  EXPECT_NE(bad_line.error().message.find("line 5:"), std::string::npos) << bad_line.error().message;

  auto bad_status = parse_status("Package: a\nVersion: 1\nStatus: install ok\n");
  ASSERT_FALSE(bad_status);
  EXPECT_NE(bad_status.error().message.find("line 3:"), std::string::npos) << bad_status.error().message;

  auto unknown_state = parse_status("Package: a\nStatus: install ok exploded\n");
  ASSERT_FALSE(unknown_state);
  EXPECT_NE(unknown_state.error().message.find("exploded"), std::string::npos);

  auto no_package = parse_status("Package: a\nStatus: install ok installed\n\n\nVersion: 1\n");
  ASSERT_FALSE(no_package);
  EXPECT_NE(no_package.error().message.find("line 5: paragraph has no Package"), std::string::npos)
      << no_package.error().message;

  auto leading_continuation = parse_status(" continuation\n");
  ASSERT_FALSE(leading_continuation);
  EXPECT_NE(leading_continuation.error().message.find("line 1:"), std::string::npos);

  auto bad_conffile = parse_status("Package: a\nStatus: install ok installed\nConffiles:\n etc/x 123\n");
  ASSERT_FALSE(bad_conffile);
  EXPECT_NE(bad_conffile.error().message.find("line 4:"), std::string::npos);
}

TEST(ParseStatus, EmptyAndCrlfInput) {
  auto empty = parse_status("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto crlf = parse_status("Package: a\r\nStatus: install ok installed\r\n\r\n");
  ASSERT_TRUE(crlf);
  EXPECT_EQ((*crlf)[0].state, DpkgState::installed);
}

TEST(ParseStatus, RandomBytesNeverCrash) {
  std::mt19937 rng(42);
  const std::string alphabet = "Package: Status install ok installed half-configured\n \t:Conffiles/etc 0123abc";
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    std::size_t len = rng() % 300;
    for (std::size_t i = 0; i < len; ++i)
      text += (rng() % 8 == 0) ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    (void)parse_status(text);
    (void)parse_diversions(text);
    (void)parse_md5sums(text);
    (void)parse_list(text);
    PathFilter f;
    f.add_config(text);
  }
}

TEST(ParseDiversions, TriplesAndIncompleteOnes) {
  auto d = parse_diversions("/bin/sh\n/bin/sh.distrib\ndash\n/etc/x\n/etc/x.orig\n:\n");
  ASSERT_TRUE(d) << d.error().to_string();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0].from, "/bin/sh");
  EXPECT_EQ((*d)[0].to, "/bin/sh.distrib");
  EXPECT_EQ((*d)[0].package, "dash");
  EXPECT_EQ((*d)[1].package, ":");

  auto incomplete = parse_diversions("/bin/sh\n/bin/sh.distrib\ndash\n/etc/x\n");
  ASSERT_FALSE(incomplete);
  EXPECT_NE(incomplete.error().message.find("line 4:"), std::string::npos) << incomplete.error().message;
  auto relative = parse_diversions("bin/sh\n/x\ndash\n");
  ASSERT_FALSE(relative);
  EXPECT_NE(relative.error().message.find("line 1:"), std::string::npos);
}

TEST(PathFilter, LastMatchingFilterWins) {
  PathFilter f;
  f.add_config(
      "# docs are not needed in containers\n"
      "path-exclude=/usr/share/doc/*\n"
      "path-include /usr/share/doc/*/copyright\n"
      "force-unsafe-io\n"
      "path-exclude=/usr/share/locale/*\n"
      "path-include=/usr/share/locale/en*\n");
  EXPECT_TRUE(f.excluded("/usr/share/doc/bash/README"));
  EXPECT_TRUE(f.excluded("/usr/share/doc/bash/examples/x"));  // '*' crosses '/'
  EXPECT_FALSE(f.excluded("/usr/share/doc/bash/copyright"));
  EXPECT_TRUE(f.excluded("/usr/share/locale/de/LC_MESSAGES/bash.mo"));
  EXPECT_FALSE(f.excluded("/usr/share/locale/en_GB/LC_MESSAGES/bash.mo"));
  EXPECT_FALSE(f.excluded("/usr/bin/bash"));
}

TEST(PathFilter, ConfigNames) {
  EXPECT_TRUE(is_dpkg_config_name("docker-apt-speedup"));
  EXPECT_TRUE(is_dpkg_config_name("01_nodoc"));
  EXPECT_FALSE(is_dpkg_config_name("excludes.conf"));
  EXPECT_FALSE(is_dpkg_config_name(".hidden"));
  EXPECT_FALSE(is_dpkg_config_name("x.dpkg-old"));
}

TEST(ParseList, SkipsTheRootEntry) {
  auto paths = parse_list("/.\n/bin\n/bin/bash\n\n/usr/share/doc/with space\n");
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_EQ(paths[0], "/bin");
  EXPECT_EQ(paths[2], "/usr/share/doc/with space");
}

TEST(ParseMd5sums, AddsTheLeadingSlash) {
  auto e = parse_md5sums("d41d8cd98f00b204e9800998ecf8427e  usr/bin/bash\nD41D8CD98F00B204E9800998ECF8427E  a b\n");
  ASSERT_TRUE(e) << e.error().to_string();
  ASSERT_EQ(e->size(), 2u);
  EXPECT_EQ((*e)[0].path, "/usr/bin/bash");
  EXPECT_EQ((*e)[1].md5, "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ((*e)[1].path, "/a b");
  auto bad = parse_md5sums("d41d8cd98f00b204e9800998ecf8427e  ok\nnot-a-sum  x\n", "info/x.md5sums");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("line 2:"), std::string::npos);
}

}  // namespace
}  // namespace guard::checks
