// The pam, nss and preload checks on fixture roots: real PAM and NSS configuration text,
// modules compiled at test time (one whose DT_NEEDED is missing), and the libraries check's
// severity by role for a module a stack names.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "checks/configured_objects.h"
#include "checks/libraries.h"
#include "checks/nss.h"
#include "checks/pam.h"
#include "checks/preload.h"
#include "tests/unit/checks/fixture_root.h"

namespace guard::checks {
namespace {

using namespace guard::testing;

constexpr const char* kSec = "/usr/lib/x86_64-linux-gnu/security";
constexpr const char* kModule = "int pam_sm_authenticate(void *h, int f, int c, const char **v) { return 0; }\n";

class ConfigRefsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_ / "root";
    build_ = dir_ / "build";
    make_dirs(build_);
    make_base_root(root_);
    build_exe(root_ + "/usr/bin/dash", "int main(void) { return 0; }\n", {});
    make_symlink("dash", root_ + "/usr/bin/sh");
    // libmissing.so.1 exists only in the build dir: what links against it finds nothing in the root.
    build_lib(build_ + "/libmissing.so.1", "libmissing.so.1", "int gone(void) { return 0; }\n");
    for (const char* m : {"pam_unix.so", "pam_deny.so", "pam_permit.so", "pam_env.so"})
      build_lib(root_ + kSec + "/" + m, m, kModule);
    build_lib(root_ + kSec + "/pam_broken.so", "pam_broken.so",
              "int gone(void);\nint pam_sm_authenticate(void *h, int f, int c, const char **v) { return gone(); }\n",
              "", {build_ + "/libmissing.so.1"});
  }
  void pam(const std::string& name, const std::string& text, const std::string& dir = "/etc/pam.d") {
    write_file(root_ + dir + "/" + name, text);
  }
  const Finding* find(const std::vector<Finding>& fs, const std::string& path, const std::string& text) {
    for (const auto& f : fs)
      if (f.path == path && f.message.find(text) != std::string::npos) return &f;
    return nullptr;
  }

  // The finding at `path` whose message contains `text` (or whose id starts with `id`), of
  // `severity`; nullptr and a test failure when there is none.
  const Finding* expect_text(const std::vector<Finding>& fs, const std::string& path, const std::string& text,
                             Severity severity) {
    return checked(find(fs, path, text), fs, path + " \"" + text + "\"", severity);
  }
  const Finding* expect_id(const std::vector<Finding>& fs, const std::string& path, const std::string& id,
                           Severity severity) {
    return checked(find_finding(fs, path, id), fs, path + " [" + id + "]", severity);
  }
  static const Finding* checked(const Finding* f, const std::vector<Finding>& fs, const std::string& what,
                                Severity severity) {
    EXPECT_NE(f, nullptr) << "no finding " << what << " in:\n" << dump(fs);
    if (f != nullptr) {
      EXPECT_EQ(f->severity, severity) << f->message;
    }
    return f;
  }

  TempDir dir_;
  std::string root_;
  std::string build_;
};

// Debian's own common-auth, the shape pam-auth-update writes.
constexpr const char* kCommonAuth =
    "#\n# /etc/pam.d/common-auth - authentication settings common to all services\n#\n"
    "# here are the per-package modules (the \"Primary\" block)\n"
    "auth\t[success=1 default=ignore]\tpam_unix.so nullok\n"
    "# here's the fallback if no module succeeds\n"
    "auth\trequisite\t\t\tpam_deny.so\n"
    "auth\trequired\t\t\tpam_permit.so\n";

TEST_F(ConfigRefsTest, HealthyStacksHaveNoFindings) {
  pam("common-auth", kCommonAuth);
  pam("common-session", "session [default=1] pam_permit.so\nsession requisite pam_deny.so\n"
                        "session required pam_permit.so\n-session optional pam_systemd.so\n");
  pam("login", "auth optional pam_faildelay.so.absent\n@include common-auth\nsession include common-session\n"
               "auth required pam_env.so \\\n  readenv=1 envfile=/etc/default/locale\n");
  std::uint64_t items = 0;
  auto fs = run_one(PamCheck(), root_, &items);
  EXPECT_EQ(blocking(fs), 0u) << dump(fs);
  // The optional module that was never installed is a note, nothing more.
  ASSERT_EQ(fs.size(), 1u) << dump(fs);
  EXPECT_EQ(fs[0].severity, Severity::info);
  EXPECT_GE(items, 10u);
}

TEST_F(ConfigRefsTest, MissingRequiredModuleOfCommonAuthBlocks) {
  std::filesystem::remove(root_ + kSec + "/pam_unix.so");
  pam("common-auth", kCommonAuth);
  auto fs = run_one(PamCheck(), root_);
  const Finding* f = find_finding(fs, "/etc/pam.d/common-auth", "module:pam_unix.so");
  ASSERT_NE(f, nullptr) << dump(fs);
  EXPECT_EQ(f->check, "pam");
  EXPECT_EQ(f->severity, Severity::block);
  EXPECT_EQ(f->id, "module:pam_unix.so");
  EXPECT_EQ(f->message.rfind("line 5: auth [success=1 default=ignore] pam_unix.so: "
                             "/usr/lib/x86_64-linux-gnu/security/pam_unix.so is not installed",
                             0),
            0u)
      << f->message;
  EXPECT_NE(f->hint.find("remove the line"), std::string::npos) << f->hint;
}

TEST_F(ConfigRefsTest, ModuleWhoseLibraryIsMissingBlocksInSshd) {
  pam("sshd", "# sshd\n\nauth required pam_broken.so\naccount required pam_broken.so\n");
  auto fs = run_one(PamCheck(), root_);
  const Finding* f = expect_id(fs, "/etc/pam.d/sshd", "module:pam_broken.so:needed:libmissing.so.1", Severity::block);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->message.rfind("line 3: auth required pam_broken.so: ", 0), 0u) << f->message;
  EXPECT_NE(f->message.find("needs libmissing.so.1"), std::string::npos) << f->message;
  EXPECT_NE(f->message.find("(also on line 4)"), std::string::npos) << f->message;  // one finding per module
  EXPECT_EQ(fs.size(), 1u) << dump(fs);
}

TEST_F(ConfigRefsTest, OtherStacksAndOptionalLinesWarn) {
  pam("cups", "auth required pam_gone.so\n");
  pam("login", "auth optional pam_broken.so\n-session optional pam_gone.so\n-auth required pam_gone.so\n");
  auto fs = run_one(PamCheck(), root_);
  const Finding* other = expect_text(fs, "/etc/pam.d/cups", "line 1: auth required pam_gone.so", Severity::warn);
  ASSERT_NE(other, nullptr);
  const Finding* optional = expect_text(fs, "/etc/pam.d/login", "line 1: auth optional pam_broken.so", Severity::warn);
  ASSERT_NE(optional, nullptr);
  EXPECT_EQ(find(fs, "/etc/pam.d/login", "line 2:"), nullptr) << dump(fs);  // what '-' is for
  // libpam does not special-case '-' when dispatching: a required module that is not there
  // still fails the stack.
  const Finding* silent = expect_text(fs, "/etc/pam.d/login", "line 3: -auth required pam_gone.so", Severity::block);
  ASSERT_NE(silent, nullptr);
}

TEST_F(ConfigRefsTest, StackIncludedByALoginStackGatesLoginsToo) {
  pam("site-auth", "auth required pam_gone.so\n");
  pam("su", "auth sufficient pam_permit.so\nauth substack site-auth\nauth include no-such-stack\n");
  auto fs = run_one(PamCheck(), root_);
  const Finding* f = expect_text(fs, "/etc/pam.d/site-auth", "line 1: auth required pam_gone.so", Severity::block);
  ASSERT_NE(f, nullptr);
  const Finding* inc = expect_id(fs, "/etc/pam.d/su", "include:no-such-stack", Severity::block);
  ASSERT_NE(inc, nullptr);
  EXPECT_EQ(inc->message.rfind("line 3: auth include no-such-stack: ", 0), 0u) << inc->message;
}

TEST_F(ConfigRefsTest, IncludeCycleBlocksAndEnds) {
  pam("common-a", "auth required pam_permit.so\n@include common-b\n");
  pam("common-b", "@include common-a\n");
  pam("selfish", "auth include selfish\n");
  auto fs = run_one(PamCheck(), root_);
  const Finding* f = expect_id(fs, "/etc/pam.d/common-b", "include-cycle:common-a", Severity::block);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->message.find("line 1: @include common-a: includes itself"), std::string::npos) << f->message;
  const Finding* self = find_finding(fs, "/etc/pam.d/selfish", "include-cycle:selfish");
  ASSERT_NE(self, nullptr) << dump(fs);
  EXPECT_EQ(self->severity, Severity::warn);  // not a login stack
}

TEST_F(ConfigRefsTest, IncludesOutsideThePamDirectoriesAreNotEchoed) {
  write_file(root_ + "/etc/shadow", "root:$y$j9T$secrethash:19000:0:99999:7:::\n");
  pam("login", "@include ../shadow\nauth include /etc/shadow\n");
  auto fs = run_one(PamCheck(), root_);
  for (const auto& f : fs) EXPECT_EQ(f.message.find("secrethash"), std::string::npos) << f.message;
  ASSERT_NE(expect_text(fs, "/etc/pam.d/login", "line 1: @include ../shadow: /etc/shadow is outside", Severity::info),
            nullptr);
  EXPECT_EQ(blocking(fs), 0u) << dump(fs);
}

TEST_F(ConfigRefsTest, MalformedLinesAndContinuationsKeepTheirLineNumbers) {
  pam("passwd", "password \\\n  required \\\n  pam_gone.so\nauht required pam_unix.so\n"
                "auth [success=jump] pam_unix.so\nauth\n");
  auto fs = run_one(PamCheck(), root_);
  const Finding* cont = find(fs, "/etc/pam.d/passwd", "line 1: password required pam_gone.so");
  ASSERT_NE(cont, nullptr) << dump(fs);
  const Finding* type = expect_text(fs, "/etc/pam.d/passwd", "line 4: auht required pam_unix.so: libpam cannot parse it", Severity::block);
  ASSERT_NE(type, nullptr);
  EXPECT_NE(find(fs, "/etc/pam.d/passwd", "line 5: auth [success=jump] pam_unix.so"), nullptr) << dump(fs);
  EXPECT_NE(find(fs, "/etc/pam.d/passwd", "line 6: auth: libpam cannot parse it (no control flag)"), nullptr)
      << dump(fs);
}

TEST_F(ConfigRefsTest, VendorStacksAreOverriddenByEtc) {
  pam("login", "auth required pam_gone.so\n", "/usr/lib/pam.d");
  pam("login", "auth required pam_unix.so\n");
  pam("systemd-user", "account required pam_gone.so\n", "/usr/lib/pam.d");
  auto fs = run_one(PamCheck(), root_);
  EXPECT_EQ(find(fs, "/usr/lib/pam.d/login", ""), nullptr) << dump(fs);
  const Finding* f = expect_text(fs, "/usr/lib/pam.d/systemd-user", "line 1: account required pam_gone.so", Severity::block);
  ASSERT_NE(f, nullptr);
}

TEST_F(ConfigRefsTest, NotElfModuleAndHostileFilesAreFindingsNotHangs) {
  write_file(root_ + kSec + "/pam_text.so", "not an ELF object\n");
  pam("login", "auth required pam_text.so\n");
  write_file(root_ + "/etc/pam.d/cron", std::string(3U << 20, '#'));
  ASSERT_EQ(::mkfifo((root_ + "/etc/pam.d/sshd").c_str(), 0644), 0);
  auto fs = run_one(PamCheck(), root_);
  const Finding* text = expect_text(fs, "/etc/pam.d/login", "is not an ELF shared object", Severity::block);
  ASSERT_NE(text, nullptr);
  const Finding* huge = expect_text(fs, "/etc/pam.d/cron", "cannot be read", Severity::warn);
  ASSERT_NE(huge, nullptr);
  const Finding* fifo = expect_text(fs, "/etc/pam.d/sshd", "not a regular file", Severity::block);
  ASSERT_NE(fifo, nullptr);
}

TEST(PamParse, TokensBracketsAndComments) {
  auto lines = parse_pam_stack("auth [success=2 default=ignore new_authtok_reqd=ok] pam_a.so x=1 # c\n"
                               "# only a comment\n-session optional pam_b.so\n@include common-c\n");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].control, "[success=2 default=ignore new_authtok_reqd=ok]");
  EXPECT_EQ(lines[0].target, "pam_a.so");
  EXPECT_TRUE(lines[0].hard);
  EXPECT_EQ(lines[1].line, 3u);
  EXPECT_TRUE(lines[1].silent);
  EXPECT_FALSE(lines[1].hard);
  EXPECT_EQ(lines[2].kind, PamLine::Kind::at_include);
  EXPECT_FALSE(parse_pam_stack("auth [default=ignore success=ok] pam_x.so\n")[0].hard);
}

// Found by tests/fuzz/pam.cc: a line holding only a vertical tab or a form feed (space to
// isspace, not to libpam, which splits words at " \t\n") gave no words, and the first was read
// anyway. libpam reads such a word as an unknown module type: a handler that always fails.
TEST(PamParse, ALineOfOtherWhitespaceIsAnUnknownType) {
  auto lines = parse_pam_stack("auth required pam_unix.so\n\v\n\f \nauth\vrequired pam_unix.so\n");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].kind, PamLine::Kind::module);
  for (std::size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(lines[i].kind, PamLine::Kind::malformed) << i;
    EXPECT_TRUE(lines[i].hard) << i;
  }
  EXPECT_EQ(lines[1].problem, "unknown module type \"\v\"");
}

// ---- nss ----

constexpr const char* kDebianNsswitch =
    "# /etc/nsswitch.conf\n#\n# Example configuration of GNU Name Service Switch functionality.\n\n"
    "passwd:         files\ngroup:          files\nshadow:         files\ngshadow:        files\n\n"
    "hosts:          files dns\nnetworks:       files\n\nprotocols:      db files\nservices:       db files\n"
    "ethers:         db files\nrpc:            db files\n\nnetgroup:       nis\n";

TEST_F(ConfigRefsTest, DebianDefaultNsswitchDoesNotBlock) {
  write_file(root_ + "/etc/nsswitch.conf", kDebianNsswitch);
  std::uint64_t items = 0;
  auto fs = run_one(NssCheck(), root_, &items);
  EXPECT_EQ(blocking(fs), 0u) << dump(fs);
  for (const auto& f : fs) EXPECT_EQ(f.severity, Severity::info) << dump(fs);
  EXPECT_EQ(items, 5u);  // the db and nis sources; files and dns are part of libc
}

TEST_F(ConfigRefsTest, MissingSourceOfPasswdBlocks) {
  build_lib(root_ + "/usr/lib/x86_64-linux-gnu/libnss_good.so.2", "libnss_good.so.2", "int x(void) { return 0; }\n");
  build_lib(root_ + "/usr/lib/x86_64-linux-gnu/libnss_broken.so.2", "libnss_broken.so.2",
            "int gone(void);\nint x(void) { return gone(); }\n", "", {build_ + "/libmissing.so.1"});
  write_file(root_ + "/etc/nsswitch.conf",
             "passwd: files good\ngroup: files ldap # directory\nhosts: files broken [NOTFOUND=return] dns\n"
             "sudoers: files sss\nautomount: files ldap\nshadow: files [SUCESS=return]\n");
  auto fs = run_one(NssCheck(), root_);
  const Finding* ldap = find_finding(fs, "/etc/nsswitch.conf", "group:ldap");
  ASSERT_NE(ldap, nullptr) << dump(fs);
  EXPECT_EQ(ldap->check, "nss");
  EXPECT_EQ(ldap->severity, Severity::block);
  EXPECT_EQ(ldap->message.rfind("line 2: group: files ldap: libnss_ldap.so.2 is not installed", 0), 0u)
      << ldap->message;
  const Finding* broken = expect_id(fs, "/etc/nsswitch.conf", "hosts:broken:needed:libmissing.so.1", Severity::warn);
  ASSERT_NE(broken, nullptr);
  const Finding* bad = find_finding(fs, "/etc/nsswitch.conf", "malformed:shadow");
  ASSERT_NE(bad, nullptr) << dump(fs);
  EXPECT_NE(bad->message.find("line 6:"), std::string::npos);
  EXPECT_EQ(find_finding(fs, "/etc/nsswitch.conf", "passwd:good"), nullptr) << dump(fs);
  EXPECT_EQ(find_finding(fs, "/etc/nsswitch.conf", "sudoers:sss"), nullptr) << dump(fs);  // not glibc's
  EXPECT_EQ(blocking(fs), 1u) << dump(fs);
}

TEST_F(ConfigRefsTest, NoNsswitchNoPreloadNothingToCheck) {
  std::uint64_t items = 7;
  auto root = base::Root::open(root_);
  ASSERT_TRUE(root);
  policies::Policy policy;
  CheckContext ctx{*root, policy, {}, nullptr, false, {}, {}, {}};
  for (const Check* c : std::initializer_list<const Check*>{new NssCheck(), new PreloadCheck()}) {
    std::unique_ptr<const Check> owned(c);
    auto out = c->run(ctx);
    ASSERT_TRUE(out);
    EXPECT_TRUE(out->findings.empty());
    EXPECT_EQ(out->items, 0u);
    EXPECT_TRUE(out->skipped.empty());
  }
  (void)items;
}

// ---- preload ----

TEST_F(ConfigRefsTest, PreloadEntriesMustExistAndLoad) {
  build_lib(root_ + "/usr/lib/x86_64-linux-gnu/libgood.so", "libgood.so", "int g(void) { return 0; }\n");
  build_lib(root_ + "/usr/lib/x86_64-linux-gnu/libbroken.so", "libbroken.so",
            "int gone(void);\nint b(void) { return gone(); }\n", "", {build_ + "/libmissing.so.1"});
  write_file(root_ + "/etc/ld.so.preload",
             "# security hooks\n/$LIB/libgood.so:libgood.so\n/usr/lib/libabsent.so   # gone\n"
             "\t/usr/lib/x86_64-linux-gnu/libbroken.so\n");
  std::uint64_t items = 0;
  auto fs = run_one(PreloadCheck(), root_, &items);
  EXPECT_EQ(items, 4u);
  ASSERT_EQ(fs.size(), 2u) << dump(fs);
  const Finding* absent = find_finding(fs, "/etc/ld.so.preload", "preload:/usr/lib/libabsent.so");
  ASSERT_NE(absent, nullptr) << dump(fs);
  EXPECT_EQ(absent->check, "preload");
  EXPECT_EQ(absent->severity, Severity::block);
  EXPECT_EQ(absent->message.rfind("line 3: /usr/lib/libabsent.so: /usr/lib/libabsent.so is not installed", 0), 0u)
      << absent->message;
  const Finding* broken =
      find_finding(fs, "/etc/ld.so.preload", "preload:/usr/lib/x86_64-linux-gnu/libbroken.so:needed:libmissing.so.1");
  ASSERT_NE(broken, nullptr) << dump(fs);
  EXPECT_EQ(broken->severity, Severity::block);
  EXPECT_NE(broken->message.find("line 4:"), std::string::npos);
  EXPECT_NE(broken->message.find("every program on the system fails to start"), std::string::npos);
}

TEST_F(ConfigRefsTest, PreloadFifoIsAWarningNotAHang) {
  ASSERT_EQ(::mkfifo((root_ + "/etc/ld.so.preload").c_str(), 0644), 0);
  auto fs = run_one(PreloadCheck(), root_);
  ASSERT_EQ(fs.size(), 1u) << dump(fs);
  EXPECT_EQ(fs[0].severity, Severity::warn);
  EXPECT_NE(fs[0].message.find("not a regular file"), std::string::npos) << fs[0].message;
}

// ---- severity by role in the libraries check ----

TEST_F(ConfigRefsTest, LibrariesRatesAModuleAStackNamesLikeALinkedLibrary) {
  auto rated = [&] {
    auto fs = run_one(LibrariesCheck(), root_);
    const Finding* f = find_finding(fs, std::string(kSec) + "/pam_broken.so", "needed:libmissing.so.1");
    EXPECT_NE(f, nullptr) << dump(fs);
    return f == nullptr ? Severity::off : f->severity;
  };
  EXPECT_EQ(rated(), Severity::warn);  // nothing names it: an optional dlopen plugin
  pam("login", "auth required pam_broken.so\n");
  EXPECT_EQ(rated(), Severity::block);
  auto named = objects_named_by_configuration(*base::Root::open(root_));
  EXPECT_EQ(named.count(std::string(kSec) + "/pam_broken.so"), 1u);
}

TEST_F(ConfigRefsTest, LibrariesRatesAPreloadedPluginLikeALinkedLibrary) {
  build_lib(root_ + "/usr/lib/x86_64-linux-gnu/hooks/libhook.so", "libhook.so",
            "int gone(void);\nint h(void) { return gone(); }\n", "", {build_ + "/libmissing.so.1"});
  auto severity = [&] {
    auto fs = run_one(LibrariesCheck(), root_);
    const Finding* f = find_finding(fs, "/usr/lib/x86_64-linux-gnu/hooks/libhook.so", "needed:libmissing.so.1");
    return f == nullptr ? Severity::off : f->severity;
  };
  EXPECT_EQ(severity(), Severity::warn);
  write_file(root_ + "/etc/ld.so.preload", "/lib/x86_64-linux-gnu/hooks/libhook.so\n");
  EXPECT_EQ(severity(), Severity::block);
}

}  // namespace
}  // namespace guard::checks
