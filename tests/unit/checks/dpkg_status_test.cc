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
    std::string text = std::string("Package: p\nStatus: install ok ") + words[i] + "\nArchitecture: amd64\nVersion: 1\n";
    if (std::string_view(words[i]) == "triggers-awaited") text += "Triggers-Awaited: man-db\n";
    if (std::string_view(words[i]) == "triggers-pending") text += "Triggers-Pending: /usr/share/man\n";
    auto pkgs = parse_status(text + "\n");
    ASSERT_TRUE(pkgs) << words[i] << ": " << pkgs.error().to_string();
    EXPECT_EQ(static_cast<int>((*pkgs)[0].state), i);
    EXPECT_STREQ(to_string((*pkgs)[0].state), words[i]);
  }
}

// The error of parsing `text` as /var/lib/dpkg/status, which must name `line` and contain `what`.
void expect_refused(const std::string& text, std::size_t line, std::string_view what,
                    StatusFile kind = StatusFile::database) {
  auto r = parse_status(text, "/var/lib/dpkg/status", kind);
  ASSERT_FALSE(r) << "accepted: " << text;
  EXPECT_EQ(r.error().path, "/var/lib/dpkg/status");
  const std::string& m = r.error().message;
  EXPECT_EQ(m.rfind("/var/lib/dpkg/status:" + std::to_string(line) + ": ", 0), 0u) << m;
  EXPECT_NE(m.find(what), std::string::npos) << m;
}

constexpr const char* kGood = "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n";

TEST(ParseStatus, MalformedParagraphNamesTheLine) {
  expect_refused(std::string(kGood) + "Package: b\nthis is not a field\n", 7, "must be followed by colon");
  expect_refused("Package: a\nVersion: 1\nStatus: install ok\n\n", 3, "is not \"want flag state\"");
  expect_refused("Package: a\nStatus: install ok exploded\n\n", 2, "exploded");
  expect_refused("Package: a\nStatus: installed ok installed\n\n", 2, "unknown Status");
  expect_refused("Package: a\nStatus: install broken installed\n\n", 2, "unknown Status");
  expect_refused("Package: a\nStatus: install ok installed junk\n\n", 2, "want flag state");
  expect_refused(std::string(kGood) + "\nVersion: 1\n\n", 7, "stanza from line 7 ends without a 'Package' field");
  expect_refused(" continuation\n", 1, "continuation line without a field");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\nConffiles:\n etc/x 123\n\n",
                 6, "not absolute");
}

TEST(ParseStatus, RefusesWhatDpkgRefuses) {
  // Cut inside a field: no final newline.
  expect_refused(std::string(kGood) + "Package: b\nStatus: install ok installed\nArchitecture: amd64\nVers", 9,
                 "ends inside field 'Vers' without a final newline");
  // Cut at a line end inside a stanza that lacks a required field.
  expect_refused(std::string(kGood) + "Package: libfoo\nStatus: install ok installed\nArchitecture: amd64\n", 8,
                 "stanza of package 'libfoo' (from line 6) ends without a 'Version' field (dpkg: missing 'Version'");
  // Cut at a line end after every required field: the blank line dpkg writes is missing.
  expect_refused(std::string(kGood) + "Package: b\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2\n"
                                      "Depends: libc6\n",
                 10, "ends inside the stanza of package 'b' (from line 6) without the blank line");
  // A journal entry has no blank line after its stanza.
  EXPECT_TRUE(parse_status("Package: b\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2\n", "0001",
                           StatusFile::journal));
  expect_refused("Package: b\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2", 4,
                 "without a final newline", StatusFile::journal);
  // Fields without a value dpkg requires.
  expect_refused("Package:\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n", 1,
                 "empty value for 'Package' field");
  expect_refused("Package: a\nStatus:\nArchitecture: amd64\nVersion: 1\n\n", 4,
                 "ends without a value for its 'Status' field");
  expect_refused("Package: a\nArchitecture: amd64\nVersion: 1\n\n", 3, "ends without a 'Status' field");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion:\n\n", 4,
                 "ends without a value for its 'Version' field (dpkg: empty value for 'Version' field)");
  expect_refused("Package: a\nStatus: install ok unpacked\nVersion: 1\n\n", 3, "ends without a 'Architecture' field");
  expect_refused("Package: a\nStatus: install ok config-files\nArchitecture: amd64\n\n", 3,
                 "ends without a 'Version' field");
  // Bad names and versions.
  expect_refused("Package: -a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n", 1,
                 "invalid package name '-a'");
  expect_refused("Package: a/b\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n", 1,
                 "character '/' not allowed");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-\n\n", 4,
                 "revision number is empty");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: x:1.0\n\n", 4,
                 "epoch in version is not number");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:\n\n", 4,
                 "nothing after colon");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 99999999999:1\n\n", 4,
                 "epoch in version is too big");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1 2\n\n", 4,
                 "embedded spaces");
  // Field syntax.
  expect_refused(std::string(kGood) + ": value\n\n", 6, "empty field name");
  expect_refused(std::string(kGood) + "X: value\n\n", 6, "field name 'X' too short");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\nversion: 2\n\n", 5,
                 "duplicate value for 'version' field (the first is at line 4)");
  expect_refused("Package: a\nStatus: install ok installed\nDescription: x\n \nArchitecture: amd64\nVersion: 1\n\n", 4,
                 "blank line in value of field 'Description'");
  expect_refused(std::string(kGood) + "\t\n", 6, "a line of only blanks");
  // A NUL byte (a crash can zero-fill a file's end).
  expect_refused(std::string(kGood) + "Package: b\nStatus: install ok inst" + std::string(3, '\0') + "\n\n", 7,
                 "NUL byte");
  // Inconsistent stanzas.
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: all\nMulti-Arch: same\nVersion: 1\n\n", 1,
                 "'Multi-Arch: same' but is architecture all");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: all\nVersion: 1\nConfig-Version: 1\n\n", 1,
                 "Config-Version");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: all\nVersion: 1\nTriggers-Pending: x\n\n", 1,
                 "but triggers are pending");
  expect_refused("Package: a\nStatus: install ok triggers-pending\nArchitecture: all\nVersion: 1\n\n", 1,
                 "no Triggers-Pending");
  expect_refused("Package: a\nStatus: install ok triggers-awaited\nArchitecture: all\nVersion: 1\n\n", 1,
                 "no Triggers-Awaited");
  expect_refused("Package: a\nStatus: install ok installed\nArchitecture: all\nVersion: 1\nTriggers-Awaited: b\n\n", 1,
                 "but triggers are awaited");
  // Two stanzas of one package and architecture; other architectures are other packages.
  expect_refused(std::string(kGood) + kGood, 6, "a second stanza for package 'a' architecture amd64 (the first is at line 1)");
  std::string two_arches = std::string(kGood) + "Package: a\nStatus: install ok installed\nArchitecture: i386\nVersion: 1\n\n";
  EXPECT_TRUE(parse_status(two_arches));
}

TEST(ParseStatus, AcceptsWhatDpkgWrites) {
  // Spaces before the colon, a field value on continuation lines only, a version that does not
  // start with a digit (dpkg only warns), a not-installed stub without Version or Architecture.
  auto r = parse_status(
      "Package: a\nStatus : install ok installed\nArchitecture: amd64\nVersion: 1:a.0~rc1+dfsg-1.2\nConffiles:\n"
      " /etc/a 0123456789abcdef0123456789abcdef\nDescription: x\n y\n .\n z\n\n"
      "Package: b\nStatus: purge ok not-installed\n\n"
      "Package: c\nStatus: install reinstreq half-installed\nArchitecture: amd64\n\n");
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].version, "1:a.0~rc1+dfsg-1.2");
  EXPECT_EQ((*r)[0].conffiles.size(), 1u);
}

TEST(ParseStatus, EmptyAndCrlfInput) {
  auto empty = parse_status("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  // A CR at a line's end is trimmed like dpkg trims blanks, but a CRLF blank line is a line of
  // blanks, which dpkg refuses.
  auto crlf = parse_status("Package: a\r\nStatus: install ok installed\r\nArchitecture: amd64\r\nVersion: 1\r\n\n");
  ASSERT_TRUE(crlf) << crlf.error().to_string();
  EXPECT_EQ((*crlf)[0].state, DpkgState::installed);
  expect_refused("Package: a\r\nStatus: install ok installed\r\nArchitecture: amd64\r\nVersion: 1\r\n\r\n", 5,
                 "blank line in value");
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
  EXPECT_NE(incomplete.error().message.find(":4: "), std::string::npos) << incomplete.error().message;
  auto relative = parse_diversions("bin/sh\n/x\ndash\n");
  ASSERT_FALSE(relative);
  EXPECT_NE(relative.error().message.find(":1: "), std::string::npos);
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
  EXPECT_NE(bad.error().message.find(":2: "), std::string::npos);
}

}  // namespace
}  // namespace guard::checks
