// The dpkg checks on fake roots: a status file, info/*.list and *.md5sums, diversions and
// dpkg.cfg.d written into a TempDir with merged-/usr links like Debian 12.
// Fixtures name only the FakePackage fields they need.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <thread>
#include <sys/stat.h>

#include "base/root.h"
#include "checks/bounded_findings.h"
#include "checks/dpkg_db.h"
#include "checks/dpkg_state_check.h"
#include "checks/hash_cache.h"
#include "checks/md5.h"
#include "checks/package_files_check.h"
#include "checks/package_hashes_check.h"
#include "tests/common/test_env.h"

namespace guard::checks {
namespace {

using guard::testing::make_dirs;
using guard::testing::make_symlink;
using guard::testing::TempDir;
using guard::testing::read_file;
using guard::testing::write_file;

struct FakePackage {
  std::string name;
  std::string status = "install ok installed";
  std::string version = "1.0-1";
  std::string multi_arch;
  std::map<std::string, std::string> files;                   // listed path -> content (written, md5summed)
  std::vector<std::string> dirs;                              // listed directories (created)
  std::map<std::string, std::string> links;                   // listed symlink -> target
  std::map<std::string, std::string> conffiles;               // path -> content (written, in Conffiles)
  std::vector<std::string> extra_conffile_lines;              // raw " /etc/x md5 obsolete" lines
};

class FakeDpkgRoot {
 public:
  FakeDpkgRoot() {
    for (const char* d : {"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "var/lib/dpkg/info",
                          "var/lib/dpkg/updates"})
      make_dirs(dir_ / d);
    make_symlink("usr/bin", dir_ / "bin");
    make_symlink("usr/sbin", dir_ / "sbin");
    make_symlink("usr/lib", dir_ / "lib");
    make_symlink("usr/lib64", dir_ / "lib64");
  }

  void add(const FakePackage& p) {
    std::string key = p.multi_arch == "same" ? p.name + ":amd64" : p.name;
    status_ += "Package: " + p.name + "\nStatus: " + p.status + "\nArchitecture: amd64\n";
    if (!p.multi_arch.empty()) status_ += "Multi-Arch: " + p.multi_arch + "\n";
    status_ += "Version: " + p.version + "\n";
    // dpkg refuses a trigger state without the triggers it names
    if (p.status.find("triggers-pending") != std::string::npos) status_ += "Triggers-Pending: /usr/share/man\n";
    if (p.status.find("triggers-awaited") != std::string::npos) status_ += "Triggers-Awaited: man-db\n";
    if (!p.conffiles.empty() || !p.extra_conffile_lines.empty()) {
      status_ += "Conffiles:\n";
      for (const auto& [path, content] : p.conffiles) status_ += " " + path + " " + md5_bytes(content) + "\n";
      for (const auto& line : p.extra_conffile_lines) status_ += line + "\n";
    }
    status_ += "Description: fake\n long text\n\n";
    std::string list = "/.\n", sums;
    for (const auto& d : p.dirs) {
      make_dirs(dir_ / d.substr(1));
      list += d + "\n";
    }
    for (const auto& [path, content] : p.files) {
      write_file(dir_ / path.substr(1), content);
      list += path + "\n";
      sums += md5_bytes(content) + "  " + path.substr(1) + "\n";
    }
    for (const auto& [path, target] : p.links) {
      make_symlink(target, dir_ / path.substr(1));
      list += path + "\n";
    }
    for (const auto& [path, content] : p.conffiles) {
      write_file(dir_ / path.substr(1), content);
      list += path + "\n";
    }
    write_file(dir_ / ("var/lib/dpkg/info/" + key + ".list"), list);
    if (!sums.empty()) write_file(dir_ / ("var/lib/dpkg/info/" + key + ".md5sums"), sums);
  }

  void finish() { write_file(dir_ / "var/lib/dpkg/status", status_); }

  CheckOutput run(const Check& check, Scope scope = {}) {
    finish();
    auto root = base::Root::open(dir_.path());
    EXPECT_TRUE(root) << root.error().to_string();
    CheckContext ctx{*root, policy_, std::move(scope), nullptr, false, {}, {}, {}};
    auto out = check.run(ctx);
    EXPECT_TRUE(out) << out.error().to_string();
    return out ? *out : CheckOutput{};
  }

  // Runs `check` on the full scope with a verified-hash cache.
  CheckOutput run_cached(const Check& check, const HashCacheOptions& cache) {
    auto root = base::Root::open(dir_.path());
    EXPECT_TRUE(root) << root.error().to_string();
    CheckContext ctx{*root, policy_, {}, nullptr, false, {}, {}, cache};
    auto out = check.run(ctx);
    EXPECT_TRUE(out) << out.error().to_string();
    return out ? *out : CheckOutput{};
  }

  std::string operator/(const std::string& rel) const { return dir_ / rel; }
  policies::Policy policy_;

 private:
  TempDir dir_{"ug-dpkg"};
  std::string status_;
};

const Finding* find(const CheckOutput& out, std::string_view path) {
  auto it = std::find_if(out.findings.begin(), out.findings.end(), [&](const Finding& f) { return f.path == path; });
  return it == out.findings.end() ? nullptr : &*it;
}

const Finding* find_package(const CheckOutput& out, std::string_view package) {
  auto it = std::find_if(out.findings.begin(), out.findings.end(),
                         [&](const Finding& f) { return f.package == package; });
  return it == out.findings.end() ? nullptr : &*it;
}

std::string dump(const CheckOutput& out) {
  std::string s;
  for (const auto& f : out.findings)
    s += std::string(policies::to_string(f.severity)) + " " + f.path + " [" + f.package + "] " + f.message + "\n";
  return s;
}

// ---- dpkg-state ----

TEST(DpkgStateCheck, EveryStateAndTheReinstRequiredFlag) {
  FakeDpkgRoot r;
  const std::pair<const char*, bool> states[] = {
      {"not-installed", false},  {"config-files", false},     {"half-installed", true},   {"unpacked", true},
      {"half-configured", true}, {"triggers-awaited", true},  {"triggers-pending", true}, {"installed", false},
  };
  for (const auto& [state, bad] : states) r.add({.name = std::string("p-") + state, .status = std::string("install ok ") + state});
  r.add({.name = "held", .status = "hold ok installed"});
  r.add({.name = "broken", .status = "install reinstreq installed"});
  CheckOutput out = r.run(DpkgStateCheck());
  EXPECT_EQ(out.items, 10u);
  for (const auto& [state, bad] : states) {
    const Finding* f = find_package(out, std::string("p-") + state);
    if (!bad) {
      EXPECT_EQ(f, nullptr) << state << " must be fine";
      continue;
    }
    ASSERT_NE(f, nullptr) << state << " must be reported\n" << dump(out);
    EXPECT_EQ(f->severity, Severity::block);
    EXPECT_NE(f->message.find(state), std::string::npos) << f->message;
    EXPECT_NE(f->message.find("1.0-1"), std::string::npos) << f->message;
  }
  EXPECT_EQ(find_package(out, "held"), nullptr);
  EXPECT_NE(find_package(out, "p-half-configured")->hint.find("dpkg --configure -a"), std::string::npos);
  EXPECT_NE(find_package(out, "p-triggers-pending")->hint.find("dpkg --triggers-only -a"), std::string::npos);
  EXPECT_NE(find_package(out, "p-half-installed")->hint.find("apt-get install --reinstall p-half-installed"),
            std::string::npos);
  const Finding* broken = find_package(out, "broken");
  ASSERT_NE(broken, nullptr);
  EXPECT_EQ(broken->severity, Severity::block);
  EXPECT_NE(broken->message.find("reinst-required"), std::string::npos);
  EXPECT_NE(broken->hint.find("chroot "), std::string::npos) << "not the host root: the hint chroots";
  EXPECT_NE(broken->hint.find("apt-get install --reinstall broken"), std::string::npos);
  EXPECT_EQ(out.findings.size(), 6u) << dump(out);
}

// The one finding of a root whose update journal holds `entry` as 0001.
Finding journal_finding(const std::string& entry) {
  FakeDpkgRoot r;
  r.add({.name = "a"});
  write_file(r / "var/lib/dpkg/updates/0001", entry);
  write_file(r / "var/lib/dpkg/updates/tmp.i", "");
  CheckOutput out = r.run(DpkgStateCheck());
  EXPECT_EQ(out.findings.size(), 1u) << dump(out);
  if (out.findings.empty()) return {};
  EXPECT_EQ(out.findings[0].path, "/var/lib/dpkg/updates/0001");
  EXPECT_EQ(out.findings[0].severity, Severity::block);
  EXPECT_NE(out.findings[0].hint.find("dpkg --configure -a"), std::string::npos);
  return out.findings[0];
}

TEST(DpkgStateCheck, UpdatesJournalBlocks) {
  Finding f = journal_finding("Package: a\nStatus: install ok half-configured\nArchitecture: amd64\nVersion: 1.0-1\n");
  EXPECT_EQ(f.id, "journal");
}

TEST(DpkgStateCheck, DamagedJournalEntryNamesItsLine) {
  Finding f = journal_finding("Package: a\nStatus: install ok unpacked\nArchi");
  EXPECT_EQ(f.id, "corrupt-journal");
  EXPECT_EQ(f.message.rfind("/var/lib/dpkg/updates/0001:3: the file ends inside field 'Archi'", 0), 0u) << f.message;
}

TEST(DpkgStateCheck, TruncatedStatusBlocksAndTheFileChecksError) {
  FakeDpkgRoot r;
  r.add({.name = "a", .files = {{"/usr/bin/a", "x"}}});
  r.add({.name = "libfoo", .files = {{"/usr/lib/libfoo.so.1", "y"}}});
  r.finish();
  // Cut at a line end (line 10) before libfoo's Version: dpkg refuses the stanza (missing 'Version').
  std::string status = read_file(r / "var/lib/dpkg/status");
  status.resize(status.find("Version: 1.0-1\nDescription: fake\n long text\n\n", status.find("libfoo")));
  write_file(r / "var/lib/dpkg/status", status);
  auto root = base::Root::open(r / "");
  ASSERT_TRUE(root);
  CheckContext ctx{*root, r.policy_, {}, nullptr, false, {}, {}, {}};
  auto out = DpkgStateCheck().run(ctx);
  ASSERT_TRUE(out);
  ASSERT_EQ(out->findings.size(), 1u) << dump(*out);
  EXPECT_EQ(out->findings[0].severity, Severity::block);
  EXPECT_EQ(out->findings[0].id, "corrupt");
  EXPECT_EQ(out->findings[0].message,
            "/var/lib/dpkg/status:10: stanza of package 'libfoo' (from line 8) ends without a 'Version' field (dpkg: "
            "missing 'Version' field); the rest of the database is not trusted");
  PackageFilesCheck files_check;
  PackageHashesCheck hashes_check;
  for (const Check* c : {static_cast<const Check*>(&files_check), static_cast<const Check*>(&hashes_check)}) {
    auto files = c->run(ctx);
    ASSERT_FALSE(files) << c->id() << " ran on a database dpkg refuses";
    EXPECT_NE(files.error().message.find("/var/lib/dpkg/status:10: "), std::string::npos) << files.error().message;
  }
}

TEST(DpkgStateCheck, MalformedStatusIsABlockingFindingWithTheLine) {
  FakeDpkgRoot r;
  r.add({.name = "a"});
  r.finish();
  write_file(r / "var/lib/dpkg/status",
             "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\nPackage: b\nStatus: garbage\n\n");
  auto root = base::Root::open(r / "");
  ASSERT_TRUE(root);
  CheckContext ctx{*root, r.policy_, {}, nullptr, false, {}, {}, {}};
  auto out = DpkgStateCheck().run(ctx);
  ASSERT_TRUE(out);
  ASSERT_EQ(out->findings.size(), 1u);
  EXPECT_EQ(out->findings[0].severity, Severity::block);
  EXPECT_EQ(out->findings[0].path, "/var/lib/dpkg/status");
  EXPECT_EQ(out->findings[0].message.rfind("/var/lib/dpkg/status:7: ", 0), 0u) << out->findings[0].message;
  EXPECT_NE(out->findings[0].message.find("the rest of the database is not trusted"), std::string::npos);
  // The file checks cannot run on it: an error that names the line.
  auto files = PackageFilesCheck().run(ctx);
  ASSERT_FALSE(files);
  EXPECT_NE(files.error().message.find("/var/lib/dpkg/status:7: "), std::string::npos);
  EXPECT_NE(files.error().message.find("no package's files are checked"), std::string::npos);
}

TEST(DpkgStateCheck, LeftoverDpkgNewWarns) {
  FakeDpkgRoot r;
  r.add({.name = "tool", .files = {{"/usr/bin/tool", "x"}}});
  write_file(r / "usr/bin/tool.dpkg-new", "y");
  CheckOutput out = r.run(DpkgStateCheck());
  const Finding* f = find(out, "/usr/bin/tool.dpkg-new");
  ASSERT_NE(f, nullptr) << dump(out);
  EXPECT_EQ(f->severity, Severity::warn);
  EXPECT_EQ(f->package, "tool");
}

TEST(DpkgStateCheck, NoDatabaseIsSkipped) {
  TempDir dir;
  auto root = base::Root::open(dir.path());
  ASSERT_TRUE(root);
  policies::Policy policy;
  CheckContext ctx{*root, policy, {}, nullptr, false, {}, {}, {}};
  auto out = DpkgStateCheck().run(ctx);
  ASSERT_TRUE(out);
  EXPECT_FALSE(out->skipped.empty());
}

// ---- package-files ----

TEST(PackageFilesCheck, HealthyRootHasNoFindings) {
  FakeDpkgRoot r;
  r.add({.name = "tool",
         .files = {{"/bin/tool", "#!/bin/sh\n"}, {"/usr/share/doc/tool/README", "hi"}},
         .dirs = {"/bin", "/usr/share/doc/tool"},
         .links = {{"/usr/bin/tool-alias", "tool"}},
         .conffiles = {{"/etc/tool.conf", "a=1\n"}}});
  r.add({.name = "libx", .multi_arch = "same", .files = {{"/usr/lib/libx.so.1", "\x7f" "ELF"}},
         .links = {{"/lib64/ld-x.so", "/lib/libx.so.1"}}});
  CheckOutput out = r.run(PackageFilesCheck());
  EXPECT_TRUE(out.findings.empty()) << dump(out);
  EXPECT_EQ(out.items, 8u);
}

TEST(PackageFilesCheck, MissingFilesBlockInSystemDirsAndWarnElsewhere) {
  FakeDpkgRoot r;
  r.add({.name = "tool",
         .files = {{"/bin/tool", "x"}, {"/usr/lib/tool/plugin.so", "x"}, {"/usr/share/doc/tool/README", "hi"}},
         .dirs = {"/usr/share/tool-empty"},
         .conffiles = {{"/etc/tool.conf", "a=1\n"}}});
  r.finish();
  std::remove((r / "usr/bin/tool").c_str());  // listed as /bin/tool: the merged-/usr alias
  std::remove((r / "usr/lib/tool/plugin.so").c_str());
  std::remove((r / "usr/share/doc/tool/README").c_str());
  std::remove((r / "etc/tool.conf").c_str());
  ::rmdir((r / "usr/share/tool-empty").c_str());
  CheckOutput out = r.run(PackageFilesCheck());
  const Finding* bin = find(out, "/bin/tool");
  ASSERT_NE(bin, nullptr) << dump(out);
  EXPECT_EQ(bin->severity, Severity::block);
  EXPECT_EQ(bin->package, "tool");
  EXPECT_NE(bin->hint.find("apt-get install --reinstall tool"), std::string::npos);
  ASSERT_NE(find(out, "/usr/lib/tool/plugin.so"), nullptr);
  EXPECT_EQ(find(out, "/usr/lib/tool/plugin.so")->severity, Severity::block);
  ASSERT_NE(find(out, "/usr/share/doc/tool/README"), nullptr);
  EXPECT_EQ(find(out, "/usr/share/doc/tool/README")->severity, Severity::warn);
  ASSERT_NE(find(out, "/etc/tool.conf"), nullptr);
  EXPECT_EQ(find(out, "/etc/tool.conf")->severity, Severity::warn);
  ASSERT_NE(find(out, "/usr/share/tool-empty"), nullptr);
  EXPECT_EQ(find(out, "/usr/share/tool-empty")->severity, Severity::warn);
  EXPECT_EQ(out.findings.size(), 5u) << dump(out);
}

// A package listing thousands of missing files: the check keeps kMaxFindingsPerCheck findings,
// the blocking ones first, and counts the rest, without holding a finding for each (a
// 2-million-line .list took 5 GB).
TEST(PackageFilesCheck, FindingsAreCappedBlockingFirst) {
  FakeDpkgRoot r;
  r.add({.name = "junk", .files = {{"/usr/share/doc/junk/README", "x"}}});
  r.add({.name = "tool", .files = {{"/usr/bin/tool", "x"}}});
  r.finish();
  std::string list = guard::testing::read_file(r / "var/lib/dpkg/info/junk.list");
  for (int i = 0; i < 2500; ++i) list += "/usr/share/junk/w" + std::to_string(i) + "\n";
  write_file(r / "var/lib/dpkg/info/junk.list", list);
  list = guard::testing::read_file(r / "var/lib/dpkg/info/tool.list");
  for (int i = 0; i < 1500; ++i) list += "/usr/bin/b" + std::to_string(i) + "\n";
  write_file(r / "var/lib/dpkg/info/tool.list", list);
  CheckOutput out = r.run(PackageFilesCheck());
  ASSERT_EQ(out.findings.size(), kMaxFindingsPerCheck + 1);
  EXPECT_EQ(std::count_if(out.findings.begin(), out.findings.end(),
                          [](const Finding& f) { return f.severity == Severity::block; }),
            1500);
  EXPECT_EQ(out.findings.front().path, "/usr/share/junk/w0");  // package order, then the .list's
  EXPECT_EQ(out.findings[kMaxFindingsPerCheck - 1].path, "/usr/bin/b1499");
  EXPECT_EQ(out.findings.back().id, kFindingsCutId);
  EXPECT_EQ(out.findings.back().message, "2,000 more findings not kept (at most 2,000 a check), 0 of them blocking");
}

// A .list over base::limits::kDpkgListBytes is refused with a finding naming it and the cap.
TEST(PackageFilesCheck, ListOverTheSizeCapIsAFindingNotRead) {
  FakeDpkgRoot r;
  r.add({.name = "huge", .files = {{"/usr/bin/huge", "x"}}});
  r.finish();
  std::string list = guard::testing::read_file(r / "var/lib/dpkg/info/huge.list");
  list.resize(16 * 1024 * 1024 + 1, '/');
  write_file(r / "var/lib/dpkg/info/huge.list", list);
  CheckOutput out = r.run(PackageFilesCheck());
  const Finding* f = find(out, "/var/lib/dpkg/info/huge.list");
  ASSERT_NE(f, nullptr) << dump(out);
  EXPECT_EQ(f->id, "no-list");
  EXPECT_NE(f->message.find("is larger than 16 MiB"), std::string::npos) << f->message;
}

TEST(PackageFilesCheck, MergedUsrBothWays) {
  FakeDpkgRoot r;
  // One package lists the /usr spelling, the other the old one; both are on disk once.
  r.add({.name = "a", .files = {{"/usr/sbin/a-daemon", "x"}, {"/lib/a.so", "x"}}});
  r.add({.name = "b", .files = {{"/sbin/b-daemon", "x"}, {"/usr/lib64/b.so", "x"}}});
  CheckOutput out = r.run(PackageFilesCheck());
  EXPECT_TRUE(out.findings.empty()) << dump(out);
  // A broken /lib64 alias link is exactly what must be caught.
  r.finish();
  std::remove((r / "lib64").c_str());
  out = r.run(PackageFilesCheck());
  const Finding* f = find(out, "/usr/lib64/b.so");
  EXPECT_EQ(f, nullptr) << "listed through /usr: still there";
  std::remove((r / "usr/sbin/b-daemon").c_str());
  out = r.run(PackageFilesCheck());
  ASSERT_NE(find(out, "/sbin/b-daemon"), nullptr) << dump(out);
  EXPECT_EQ(find(out, "/sbin/b-daemon")->severity, Severity::block);
}

TEST(PackageFilesCheck, DivertedFilesLiveAtTheDivertToPath) {
  FakeDpkgRoot r;
  // coreutils lists /bin/tool; local-tool diverted it away to /usr/bin/tool.real and ships its own.
  r.add({.name = "coreutils", .files = {{"/usr/bin/tool.real", "orig"}}});
  r.add({.name = "local-tool", .files = {{"/usr/bin/tool", "mine"}}});
  r.finish();
  // Rewrite coreutils' list to name the diverted path, as dpkg records it.
  write_file(r / "var/lib/dpkg/info/coreutils.list", "/.\n/bin/tool\n");
  write_file(r / "var/lib/dpkg/info/coreutils.md5sums", md5_bytes("orig") + "  bin/tool\n");
  write_file(r / "var/lib/dpkg/diversions", "/usr/bin/tool\n/usr/bin/tool.real\nlocal-tool\n");
  CheckOutput out = r.run(PackageFilesCheck());
  EXPECT_TRUE(out.findings.empty()) << dump(out);
  CheckOutput hashes = r.run(PackageHashesCheck());
  EXPECT_TRUE(hashes.findings.empty()) << dump(hashes);

  std::remove((r / "usr/bin/tool.real").c_str());
  out = r.run(PackageFilesCheck());
  const Finding* f = find(out, "/usr/bin/tool.real");
  ASSERT_NE(f, nullptr) << dump(out);
  EXPECT_EQ(f->package, "coreutils");
  EXPECT_NE(f->message.find("diverted from /bin/tool"), std::string::npos);
}

TEST(PackageFilesCheck, PathExcludeIsHonoured) {
  FakeDpkgRoot r;
  r.add({.name = "tool", .files = {{"/usr/share/doc/tool/README", "x"}, {"/usr/share/doc/tool/copyright", "c"}}});
  r.finish();
  write_file(r / "etc/dpkg/dpkg.cfg.d/excludes",
             "path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\n");
  write_file(r / "etc/dpkg/dpkg.cfg.d/ignored.conf", "path-include=/usr/share/doc/*\n");  // dpkg skips the name
  std::remove((r / "usr/share/doc/tool/README").c_str());
  CheckOutput out = r.run(PackageFilesCheck());
  EXPECT_TRUE(out.findings.empty()) << dump(out);
  std::remove((r / "usr/share/doc/tool/copyright").c_str());
  out = r.run(PackageFilesCheck());
  EXPECT_NE(find(out, "/usr/share/doc/tool/copyright"), nullptr) << dump(out);
}

TEST(PackageFilesCheck, DanglingPackageLinks) {
  FakeDpkgRoot r;
  r.add({.name = "libx",
         .files = {{"/usr/lib/libx.so.1.2", "x"}},
         .dirs = {"/usr/share/x"},
         .links = {{"/usr/lib/libx.so.1", "libx.so.1.2"}, {"/usr/share/x/data", "/usr/share/x-data"}}});
  r.finish();
  std::remove((r / "usr/lib/libx.so.1").c_str());
  make_symlink("libx.so.9", r / "usr/lib/libx.so.1");  // retargeted into nowhere
  CheckOutput out = r.run(PackageFilesCheck());
  const Finding* lib = find(out, "/usr/lib/libx.so.1");
  ASSERT_NE(lib, nullptr) << dump(out);
  EXPECT_EQ(lib->severity, Severity::block);
  EXPECT_EQ(lib->id, "dangling");
  EXPECT_NE(lib->message.find("libx.so.9"), std::string::npos);
  const Finding* data = find(out, "/usr/share/x/data");
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->severity, Severity::warn);
}

TEST(PackageFilesCheck, ScopeLimitsThePackages) {
  FakeDpkgRoot r;
  r.add({.name = "a", .files = {{"/usr/bin/a", "x"}}});
  r.add({.name = "libb", .multi_arch = "same", .files = {{"/usr/lib/b.so", "x"}}});
  r.finish();
  std::remove((r / "usr/bin/a").c_str());
  std::remove((r / "usr/lib/b.so").c_str());
  Scope only_b;
  only_b.full = false;
  only_b.packages = {"libb"};  // the bare name finds libb:amd64
  CheckOutput out = r.run(PackageFilesCheck(), only_b);
  ASSERT_EQ(out.findings.size(), 1u) << dump(out);
  EXPECT_EQ(out.findings[0].package, "libb:amd64");
  EXPECT_EQ(out.items, 1u);
  Scope by_path;
  by_path.full = false;
  by_path.paths = {"/usr/bin/a"};
  out = r.run(PackageFilesCheck(), by_path);
  ASSERT_EQ(out.findings.size(), 1u) << dump(out);
  EXPECT_EQ(out.findings[0].path, "/usr/bin/a");
}

// ---- package-hashes ----

TEST(PackageHashesCheck, ChangedLibraryBlocksEditedConffileWarns) {
  FakeDpkgRoot r;
  std::string elf = std::string("\x7f" "ELF\x02\x01\x01", 7) + std::string(5000, 'a');
  r.add({.name = "libx",
         .multi_arch = "same",
         .files = {{"/lib/x86_64-linux-gnu/libx.so.1", elf},
                   {"/usr/share/doc/libx/README", "doc"},
                   {"/usr/share/libx/helper", elf}},
         .conffiles = {{"/etc/libx.conf", "a=1\n"}},
         .extra_conffile_lines = {" /etc/libx-old.conf 0123456789abcdef0123456789abcdef obsolete",
                                  " /etc/libx-new.conf newconffile"}});
  CheckOutput clean = r.run(PackageHashesCheck());
  EXPECT_TRUE(clean.findings.empty()) << dump(clean);
  EXPECT_EQ(clean.items, 4u);

  std::string changed = elf;
  changed[100] = 'b';
  write_file(r / "usr/lib/x86_64-linux-gnu/libx.so.1", changed);
  write_file(r / "usr/share/libx/helper", changed);
  write_file(r / "usr/share/doc/libx/README", "DOC");
  write_file(r / "etc/libx.conf", "a=2\n");
  write_file(r / "etc/libx-old.conf", "whatever");
  CheckOutput out = r.run(PackageHashesCheck());
  const Finding* lib = find(out, "/lib/x86_64-linux-gnu/libx.so.1");
  ASSERT_NE(lib, nullptr) << dump(out);
  EXPECT_EQ(lib->severity, Severity::block);
  EXPECT_EQ(lib->package, "libx:amd64");
  EXPECT_EQ(lib->id, "changed");
  EXPECT_NE(lib->hint.find("apt-get install --reinstall libx:amd64"), std::string::npos);
  ASSERT_NE(find(out, "/usr/share/libx/helper"), nullptr);
  EXPECT_EQ(find(out, "/usr/share/libx/helper")->severity, Severity::block) << "an ELF object anywhere blocks";
  ASSERT_NE(find(out, "/usr/share/doc/libx/README"), nullptr);
  EXPECT_EQ(find(out, "/usr/share/doc/libx/README")->severity, Severity::warn);
  const Finding* conf = find(out, "/etc/libx.conf");
  ASSERT_NE(conf, nullptr);
  EXPECT_EQ(conf->severity, Severity::warn);
  EXPECT_EQ(conf->id, "conffile-changed");
  EXPECT_EQ(out.findings.size(), 4u) << dump(out);

  r.policy_.conffiles = Severity::block;
  out = r.run(PackageHashesCheck());
  EXPECT_EQ(find(out, "/etc/libx.conf")->severity, Severity::block);
  r.policy_.conffiles = Severity::off;
  out = r.run(PackageHashesCheck());
  EXPECT_EQ(find(out, "/etc/libx.conf"), nullptr);
}

TEST(PackageHashesCheck, MissingFilesAreLeftToPackageFiles) {
  FakeDpkgRoot r;
  r.add({.name = "a", .files = {{"/usr/bin/a", "x"}}});
  r.finish();
  std::remove((r / "usr/bin/a").c_str());
  CheckOutput out = r.run(PackageHashesCheck());
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

TEST(PackageHashesCheck, ScopeLimitsThePackages) {
  FakeDpkgRoot r;
  r.add({.name = "a", .files = {{"/usr/bin/a", "x"}}});
  r.add({.name = "b", .files = {{"/usr/bin/b", "x"}}});
  r.finish();
  write_file(r / "usr/bin/a", "changed");
  write_file(r / "usr/bin/b", "changed");
  Scope only_b;
  only_b.full = false;
  only_b.packages = {"b"};
  CheckOutput out = r.run(PackageHashesCheck(), only_b);
  ASSERT_EQ(out.findings.size(), 1u) << dump(out);
  EXPECT_EQ(out.findings[0].path, "/usr/bin/b");
  EXPECT_EQ(out.items, 1u);
}

TEST(PackageHashesCheck, BadMd5sumsFileWarns) {
  FakeDpkgRoot r;
  r.add({.name = "a", .files = {{"/usr/bin/a", "x"}}});
  r.finish();
  write_file(r / "var/lib/dpkg/info/a.md5sums", "garbage\n");
  CheckOutput out = r.run(PackageHashesCheck());
  const Finding* f = find(out, "/var/lib/dpkg/info/a.md5sums");
  ASSERT_NE(f, nullptr) << dump(out);
  EXPECT_EQ(f->severity, Severity::warn);
  EXPECT_NE(f->message.find(":1: "), std::string::npos);
}

// ---- the verified-hash cache of package-hashes ----

class HashCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    r_.add({.name = "a", .files = {{"/usr/bin/a", "binary a"}, {"/usr/share/doc/a/README", "read me"}}});
    r_.add({.name = "b", .files = {{"/usr/lib/libb.so.1", "library b"}}, .conffiles = {{"/etc/b.conf", "x=1\n"}}});
    r_.finish();
    // Files changed less than a second before a run are not cached (a write in the same clock
    // tick could leave ctime as it was): let the fixture settle.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  }
  CheckOutput run(bool deep = false) { return r_.run_cached(PackageHashesCheck(), {cache_file(), deep}); }
  std::string cache_file() const { return state_ / "verified-hashes"; }

  FakeDpkgRoot r_;
  TempDir state_{"ug-state"};
};

TEST_F(HashCacheTest, SecondRunHashesNothing) {
  CheckOutput first = run();
  EXPECT_EQ(first.hashed, 4u) << first.note;
  EXPECT_EQ(first.cached, 0u);
  EXPECT_NE(first.note.find("deep"), std::string::npos) << first.note;
  EXPECT_TRUE(first.findings.empty()) << dump(first);
  CheckOutput second = run();
  EXPECT_EQ(second.hashed, 0u) << second.note;
  EXPECT_EQ(second.cached, 4u);
  EXPECT_EQ(second.items, 4u);
  EXPECT_EQ(second.note, "0 files hashed, 4 verified by the hash cache");
  CheckOutput deep = run(/*deep=*/true);
  EXPECT_EQ(deep.hashed, 4u) << deep.note;
  r_.policy_.audit.deep_every = std::chrono::seconds(0);  // every run deep
  EXPECT_EQ(run().hashed, 4u);
}

TEST_F(HashCacheTest, ChangedContentIsRehashedEvenWithSizeAndMtimeRestored) {
  (void)run();
  const std::string lib = r_ / "usr/lib/libb.so.1";
  struct stat before {};
  ASSERT_EQ(::stat(lib.c_str(), &before), 0);
  write_file(lib, "library B");  // same size
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, lib.c_str(), times, 0), 0);
  CheckOutput out = run();
  EXPECT_EQ(out.hashed, 1u) << out.note;  // its ctime changed
  EXPECT_EQ(out.cached, 3u);
  const Finding* f = find(out, "/usr/lib/libb.so.1");
  ASSERT_NE(f, nullptr) << dump(out);
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_EQ(run().hashed, 1u) << "a changed file is never cached";
}

TEST_F(HashCacheTest, ANewExpectedMd5IsRehashed) {
  (void)run();
  // As an upgrade does: new content, new md5sums entry.
  write_file(r_ / "usr/bin/a", "binary a, version 2");
  write_file(r_ / "var/lib/dpkg/info/a.md5sums",
             md5_bytes("binary a, version 2") + "  usr/bin/a\n" + md5_bytes("read me") + "  usr/share/doc/a/README\n");
  CheckOutput out = run();
  EXPECT_EQ(out.hashed, 1u) << out.note;
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

TEST_F(HashCacheTest, DamagedCacheIsIgnoredWithANoteAndRebuilt) {
  (void)run();
  std::string good = read_file(cache_file());
  for (const std::string& bad : {std::string("garbage"), good.substr(0, good.size() - 9),
                                 good.substr(0, 60) + std::string(1, static_cast<char>(good[60] ^ 1)) + good.substr(61)}) {
    write_file(cache_file(), bad);
    CheckOutput out = run();
    EXPECT_EQ(out.hashed, 4u) << out.note;
    EXPECT_NE(out.note.find("the hash cache is ignored and rebuilt"), std::string::npos) << out.note;
    EXPECT_EQ(run().cached, 4u) << "rebuilt";
  }
}

TEST_F(HashCacheTest, AnotherFormatVersionIsIgnored) {
  (void)run();
  std::string bytes = read_file(cache_file());
  bytes[8] = static_cast<char>(kHashCacheVersion + 1);  // the version follows the 8-byte magic
  write_file(cache_file(), bytes);
  CheckOutput out = run();
  EXPECT_EQ(out.hashed, 4u) << out.note;
  EXPECT_NE(out.note.find("format version 2"), std::string::npos) << out.note;
}

TEST_F(HashCacheTest, ACacheOfAnotherRootIsNotUsed) {
  (void)run();
  FakeDpkgRoot other;  // the same packages in another directory: another root
  other.add({.name = "a", .files = {{"/usr/bin/a", "binary a"}, {"/usr/share/doc/a/README", "read me"}}});
  other.add({.name = "b", .files = {{"/usr/lib/libb.so.1", "library b"}}, .conffiles = {{"/etc/b.conf", "x=1\n"}}});
  other.finish();
  CheckOutput out = other.run_cached(PackageHashesCheck(), {cache_file(), false});
  EXPECT_EQ(out.hashed, 4u) << out.note;
  EXPECT_NE(out.note.find("written for another root"), std::string::npos) << out.note;
}

TEST_F(HashCacheTest, ScopedRunsNeitherReadNorWriteIt) {
  auto root = base::Root::open(r_ / "");
  ASSERT_TRUE(root);
  Scope scope;
  scope.full = false;
  scope.packages = {"a"};
  CheckContext ctx{*root, r_.policy_, scope, nullptr, false, {}, {}, {cache_file(), false}};
  auto out = PackageHashesCheck().run(ctx);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->hashed, 2u);
  struct stat st {};
  EXPECT_NE(::stat(cache_file().c_str(), &st), 0) << "a scoped run wrote the cache";
}

TEST(HashCacheFormat, RoundTripAndRefusals) {
  HashCache c;
  c.root = {1, 2, 3, 4};
  c.last_deep = 1700000000;
  c.entries.push_back({"/usr/bin/a", std::string(32, 'a'), {1, 2, 3, 4, 5, 6, 7}});
  c.entries.push_back({"/usr/bin/b", std::string(32, 'b'), {8, 9, 10, 11, 12, 13, 14}});
  std::string bytes = serialize_hash_cache(c);
  auto back = parse_hash_cache(bytes);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->root, c.root);
  EXPECT_EQ(back->last_deep, c.last_deep);
  ASSERT_EQ(back->entries.size(), 2u);
  EXPECT_EQ(back->find("/usr/bin/b")->identity, c.entries[1].identity);
  EXPECT_EQ(back->find("/usr/bin/c"), nullptr);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) EXPECT_FALSE(parse_hash_cache(bytes.substr(0, cut))) << cut;
  std::swap(c.entries[0], c.entries[1]);
  EXPECT_FALSE(parse_hash_cache(serialize_hash_cache(c))) << "unsorted entries";
}

// ---- PackageOwners ----

TEST(PackageOwners, AliasesAndDiversions) {
  FakeDpkgRoot r;
  r.add({.name = "bash", .files = {{"/bin/bash", "x"}}, .dirs = {"/bin"}});
  r.add({.name = "libc6", .multi_arch = "same", .files = {{"/usr/lib/x86_64-linux-gnu/libc.so.6", "x"}},
         .dirs = {"/usr/bin"}});
  r.add({.name = "dash", .files = {{"/usr/bin/sh", "x"}}});
  r.add({.name = "other-sh", .files = {{"/usr/bin/sh.distrib", "x"}}});
  r.finish();
  write_file(r / "var/lib/dpkg/info/other-sh.list", "/.\n/bin/sh\n");
  write_file(r / "var/lib/dpkg/diversions", "/bin/sh\n/bin/sh.distrib\ndash\n");
  auto root = base::Root::open(r / "");
  ASSERT_TRUE(root);
  auto owners = PackageOwners::load(*root);
  ASSERT_TRUE(owners) << owners.error().to_string();
  EXPECT_EQ(owners->owner("/bin/bash"), "bash");
  EXPECT_EQ(owners->owner("/usr/bin/bash"), "bash");
  EXPECT_EQ(owners->owner("/lib/x86_64-linux-gnu/libc.so.6"), "libc6:amd64");
  EXPECT_EQ(owners->owner("/usr/lib/x86_64-linux-gnu/libc.so.6"), "libc6:amd64");
  EXPECT_EQ(owners->owner("/usr/lib/x86_64-linux-gnu//./libc.so.6"), "libc6:amd64");
  EXPECT_EQ(owners->owner("/usr/bin"), "bash") << "a shared directory: the first owner by name";
  EXPECT_EQ(owners->owner("/bin/sh"), "dash");
  EXPECT_EQ(owners->owner("/usr/bin/sh.distrib"), "other-sh");
  EXPECT_EQ(owners->owner("/usr/bin/nothing"), "");
  EXPECT_EQ(owners->sole_owner("/usr/bin"), "") << "a shared directory belongs to no single package";
  EXPECT_EQ(owners->sole_owner("/bin/bash"), "bash");
  EXPECT_EQ(owners->sole_owner("/usr/bin/nothing"), "");
}

TEST(DpkgPaths, AliasesAndSystemDirs) {
  EXPECT_EQ(usr_canonical("/bin/ls"), "/usr/bin/ls");
  EXPECT_EQ(usr_canonical("/lib64"), "/usr/lib64");
  EXPECT_EQ(usr_canonical("/libexec/x"), "/libexec/x");
  EXPECT_EQ(usr_canonical("/binary"), "/binary");
  EXPECT_EQ(usr_alias("/usr/sbin/sshd"), "/sbin/sshd");
  EXPECT_EQ(usr_alias("/sbin/sshd"), "/usr/sbin/sshd");
  EXPECT_EQ(usr_alias("/usr/share/x"), "");
  EXPECT_TRUE(is_system_path("/lib/x86_64-linux-gnu/libc.so.6"));
  EXPECT_TRUE(is_system_path("/usr/libexec/x"));
  EXPECT_FALSE(is_system_path("/usr/share/doc/x"));
  EXPECT_FALSE(is_system_path("/usr/library"));
}

}  // namespace
}  // namespace guard::checks
