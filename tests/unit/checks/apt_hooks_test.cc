#include "checks/apt_hooks.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "tests/common/test_env.h"
#include "tests/unit/checks/single_check_fixture.h"

namespace guard::checks {
namespace {

using guard::testing::make_symlink;
using guard::testing::TempDir;
using guard::testing::write_file;
using test::dump;
using test::find;
using test::run_on;

std::vector<std::string> words(const std::string& cmd) {
  std::vector<std::string> out;
  for (const auto& p : shell_programs(cmd)) out.push_back(p.word + (p.guarded ? "?" : "") + (p.tested ? "t" : ""));
  return out;
}

TEST(ShellPrograms, SplitsCommandsAndSkipsBuiltinsAndAssignments) {
  EXPECT_EQ(words("/usr/bin/gone-tool"), std::vector<std::string>{"/usr/bin/gone-tool"});
  EXPECT_EQ(words("A=1 B=\"x y\" run-me --flag; echo done && /bin/other | tee /tmp/x 2>/dev/null"),
            (std::vector<std::string>{"run-me", "/bin/other?", "tee"}));
  EXPECT_EQ(words("rm -f /var/cache/apt/*.bin || true"), std::vector<std::string>{"rm?"});
  EXPECT_EQ(words("$TOOL x; `which y`; \"$(z)\" arg"), std::vector<std::string>{});
  EXPECT_EQ(words("exec /usr/lib/x/helper; command -v foo; command bar"),
            (std::vector<std::string>{"/usr/lib/x/helper", "bar"}));
  EXPECT_EQ(words("for f in a b; do process \"$f\"; done"), std::vector<std::string>{"process"});
}

TEST(ShellPrograms, TestsGuardWhatFollows) {
  EXPECT_EQ(words("test -x /usr/bin/t && /usr/bin/t run"), std::vector<std::string>{"/usr/bin/t?t"});
  EXPECT_EQ(words("[ -x /usr/bin/t ] && /usr/bin/t run; /usr/bin/after"),
            (std::vector<std::string>{"/usr/bin/t?t", "/usr/bin/after"}));
  EXPECT_EQ(words("if [ -x /usr/bin/t ]; then /usr/bin/t; else /usr/bin/fallback; fi"),
            (std::vector<std::string>{"/usr/bin/t?t", "/usr/bin/fallback"}));
  EXPECT_EQ(words("[ -x /usr/bin/t ] || exit 0; /usr/bin/t; [ ! -e /x ] || /usr/bin/u"),
            (std::vector<std::string>{"/usr/bin/t?t", "/usr/bin/u?"}));
  EXPECT_EQ(words("command -v foo >/dev/null && foo --x; which bar && bar"),
            (std::vector<std::string>{"foo?t", "which", "bar?t"}));
  // packagekit's hook: the first test runs unguarded, the rest only after it.
  EXPECT_EQ(words("/usr/bin/test -e /usr/share/x.service && /usr/bin/test -S /run/dbus/s && /usr/bin/gdbus call "
                  "> /dev/null; /bin/echo > /dev/null"),
            (std::vector<std::string>{"/usr/bin/test", "/usr/bin/test?", "/usr/bin/gdbus?", "/bin/echo"}));
  // appstream's: a failing `if` condition does not fail the command.
  EXPECT_EQ(words("if /usr/bin/test -w /var/cache/swcatalog -a -e /usr/bin/appstreamcli; then appstreamcli refresh "
                  "--source=os > /dev/null || true; fi"),
            (std::vector<std::string>{"/usr/bin/test?", "appstreamcli?t"}));
}

TEST(ShellPrograms, CasePatternsAreNotCommands) {
  std::ifstream in(std::string(UG_SOURCE_DIR) + "/packaging/apt/80upgrade-guard.in");
  std::stringstream ss;
  ss << in.rdbuf();
  AptConfig conf;
  auto err = parse_apt_config(ss.str(), "80upgrade-guard", conf, 0, [](const std::string&, unsigned) { return true; });
  ASSERT_FALSE(err) << err->line << ": " << err->what;
  auto hooks = apt_hooks(conf);
  ASSERT_EQ(hooks.size(), 2u);
  EXPECT_EQ(hooks[0].key, "DPkg::Pre-Invoke");
  EXPECT_EQ(words(hooks[0].command), std::vector<std::string>{"@UG_SBINDIR@/upgrade-guard?t"});
}

TEST(AptConfigName, FollowsAptsFilter) {
  for (const char* ok : {"70debconf", "01autoremove", "99x.conf", "a:b", "docker-clean", "x.y.conf"})
    EXPECT_TRUE(is_apt_config_name(ok)) << ok;
  for (const char* no : {".hidden", "01autoremove.dpkg-old", "50x~", "x.bak", "x.ucf-dist", "x.conf.", "a b", "x.",
                         "20auto-upgrades.save"})
    EXPECT_FALSE(is_apt_config_name(no)) << no;
}

std::optional<AptSyntaxError> parse(const std::string& text, AptConfig& conf) {
  return parse_apt_config(text, "/etc/apt/apt.conf.d/x", conf, 0, [](const std::string&, unsigned) { return true; });
}

TEST(AptConfigParse, NestedListsAndCommentsLikeApt) {
  AptConfig conf;
  auto err = parse(
      "// a comment\n"
      "# another\n"
      "/* a block\n   comment */ APT { Update { Pre-Invoke { \"/usr/bin/one\"; \"two // not a comment\"; }; }; };\n"
      "apt::update::pre-invoke:: \"/usr/bin/three\";\n"
      "DPkg::Post-Invoke {\"a\" \"b\";};\n"
      "Quoted::\"Key\" \"v\";\n",
      conf);
  ASSERT_FALSE(err) << err->line << ": " << err->what;
  auto hooks = apt_hooks(conf);
  ASSERT_EQ(hooks.size(), 4u);
  EXPECT_EQ(hooks[0].command, "/usr/bin/one");
  EXPECT_EQ(hooks[0].line, 4u);
  EXPECT_EQ(hooks[1].command, "two // not a comment");
  EXPECT_EQ(hooks[2].command, "/usr/bin/three");
  EXPECT_EQ(hooks[2].line, 5u);
  EXPECT_EQ(hooks[3].command, "b");  // apt reads `"a" "b"` as the tag a with the value b
  ASSERT_NE(conf.find("quoted::key"), nullptr);
}

TEST(AptConfigParse, ClearRemovesATree) {
  AptConfig conf;
  ASSERT_FALSE(parse("DPkg::Pre-Invoke { \"x\"; };\n#clear DPkg::Pre-Invoke;\nDPkg::Pre-Invoke:: \"y\";\n", conf));
  auto hooks = apt_hooks(conf);
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].command, "y");
}

TEST(AptConfigParse, SyntaxErrorsAptRefuses) {
  struct Case {
    const char* text;
    std::size_t line;
    const char* what;
  } cases[] = {
      {"A::B \"v\";\n{ x; };\n", 2, "Block starts with no name."},
      {"A::B \"v\" junk;\n", 1, "Extra junk after value"},
      {"A::B \"v\";\nA::C \"w\"\n", 2, "Extra junk at end of file"},
      {"A { #include \"/x\"; };\n", 1, "Directives can only be done at the top level"},
      {"#frobnicate x;\n\"#frobnicate\" x;\n", 2, "Unsupported directive 'frobnicate'"},
      {"\n\nA::B \"unterminated;\n", 3, "Extra junk at end of file"},
  };
  for (const auto& c : cases) {
    AptConfig conf;
    auto err = parse(c.text, conf);
    ASSERT_TRUE(err) << c.text;
    EXPECT_EQ(err->line, c.line) << c.text;
    EXPECT_EQ(err->what, c.what) << c.text;
  }
}

class AptHooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    make_symlink("usr/bin", dir_ / "bin");
    make_symlink("usr/sbin", dir_ / "sbin");
    write_file(dir_ / "usr/bin/test", "", 0755);
    write_file(dir_ / "usr/bin/rm", "", 0755);
    write_file(dir_ / "usr/sbin/dpkg-preconfigure", "", 0755);
    write_file(conf("01autoremove"), "APT { NeverAutoRemove { \"^firmware-linux.*\"; }; };\n");
    write_file(conf("70debconf"), "DPkg::Pre-Install-Pkgs {\"/usr/sbin/dpkg-preconfigure --apt || true\";};\n");
    write_file(conf("docker-clean"),
               "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb || true\"; };\n"
               "APT::Update::Post-Invoke { \"rm -f /var/cache/apt/*.bin\"; };\n");
  }
  std::string conf(const std::string& name) const { return dir_ / ("etc/apt/apt.conf.d/" + name); }
  CheckOutput run() { return run_on(AptHooksCheck(), dir_.path()); }
  TempDir dir_;
};

TEST_F(AptHooksTest, HealthyHooksPass) {
  CheckOutput out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
  EXPECT_GE(out.items, 6u);
}

TEST_F(AptHooksTest, MissingHookProgramBlocksNamingFileAndLine) {
  write_file(conf("99gone"), "// mine\nAPT::Update::Pre-Invoke {\n  \"/usr/bin/gone-tool --refresh\";\n};\n");
  CheckOutput out = run();
  const Finding* f = find(out, "/etc/apt/apt.conf.d/99gone", Severity::block, "line 3: APT::Update::Pre-Invoke");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_EQ(f->check, "apt-hooks");
  EXPECT_NE(f->message.find("/usr/bin/gone-tool"), std::string::npos);
  EXPECT_NE(f->message.find("apt-get update"), std::string::npos);
  EXPECT_EQ(f->id, "APT::Update::Pre-Invoke:/usr/bin/gone-tool");
  EXPECT_FALSE(f->hint.empty());
}

TEST_F(AptHooksTest, ProgramFoundInPathAndNotExecutable) {
  write_file(dir_ / "usr/local/bin/mytool", "", 0644);
  write_file(conf("50mine"), "DPkg::Post-Invoke { \"mytool\"; };\n");
  CheckOutput out = run();
  ASSERT_TRUE(find(out, "/etc/apt/apt.conf.d/50mine", Severity::block, "line 1: DPkg::Post-Invoke runs "
                                                                        "/usr/local/bin/mytool, which is not executable"))
      << dump(out);
}

TEST_F(AptHooksTest, GuardedMissingProgramOnlyInforms) {
  write_file(conf("60guarded"),
             "DPkg::Post-Invoke { \"test -x /usr/bin/gone && /usr/bin/gone\"; \"[ -x /usr/bin/g2 ] && /usr/bin/g2\"; "
             "\"if [ -x /usr/bin/g3 ]; then /usr/bin/g3; fi\"; \"/usr/bin/g4 || true\"; };\n");
  CheckOutput out = run();
  EXPECT_EQ(test::count_at_least(out, Severity::warn), 0u) << dump(out);
  // Tested before it runs: the hook expects it may be absent. Only `|| true` is worth a note.
  EXPECT_EQ(out.findings.size(), 1u) << dump(out);
  EXPECT_TRUE(find(out, "/etc/apt/apt.conf.d/60guarded", Severity::info, "/usr/bin/g4")) << dump(out);
}

TEST_F(AptHooksTest, SyntaxErrorBlocksNamingFileAndLine) {
  write_file(conf("55broken"), "APT::Get::Assume-Yes \"true\";\nDPkg::Pre-Invoke { \"x\" y z; };\n");
  CheckOutput out = run();
  const Finding* f = find(out, "/etc/apt/apt.conf.d/55broken", Severity::block, "line 2: ");
  ASSERT_TRUE(f) << dump(out);
  EXPECT_NE(f->message.find("Extra junk after value"), std::string::npos);
  EXPECT_NE(f->message.find("E: Syntax error /etc/apt/apt.conf.d/55broken:2"), std::string::npos);
}

TEST_F(AptHooksTest, FilesAptIgnoresAreIgnored) {
  write_file(conf("99gone.dpkg-old"), "APT::Update::Pre-Invoke { \"/usr/bin/gone\"; };\n");
  write_file(conf("99gone~"), "this is { not apt syntax\n");
  write_file(conf(".hidden"), "this is { not apt syntax\n");
  write_file(conf("x.bak"), "this is { not apt syntax\n");
  CheckOutput out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

TEST_F(AptHooksTest, IncludesAreFollowedAndLoopsBounded) {
  write_file(dir_ / "etc/apt/extra.conf", "DPkg::Pre-Invoke { \"/usr/bin/from-include\"; };\n");
  write_file(conf("10inc"), "#include \"/etc/apt/extra.conf\";\n");
  write_file(conf("11loop"), "#include \"/etc/apt/apt.conf.d/11loop\";\n");
  CheckOutput out = run();
  EXPECT_TRUE(find(out, "/etc/apt/extra.conf", Severity::block, "line 1: DPkg::Pre-Invoke runs /usr/bin/from-include"))
      << dump(out);
  EXPECT_TRUE(find(out, "/etc/apt/apt.conf.d/11loop", Severity::block, "Too many nested includes")) << dump(out);
}

TEST_F(AptHooksTest, DirectoryIncludeLoopsAreBounded) {
  for (const char* n : {"12a", "12b", "12c", "12d"}) write_file(conf(n), "#include \"/etc/apt/apt.conf.d/\";\n");
  CheckOutput out = run();  // 4^11 reads without a bound
  EXPECT_TRUE(find(out, "/etc/apt/apt.conf.d/12a", Severity::block, "line 1: ")) << dump(out);
  EXPECT_LE(out.items, 20000u);  // 4096 files and the hooks they set, each read appending again
}

TEST_F(AptHooksTest, OurOwnHookFilePasses) {
  std::string text = guard::testing::read_file(std::string(UG_SOURCE_DIR) + "/packaging/apt/80upgrade-guard.in");
  for (std::size_t p = text.find("@UG_SBINDIR@"); p != std::string::npos; p = text.find("@UG_SBINDIR@"))
    text.replace(p, 12, "/usr/sbin");
  write_file(conf("80upgrade-guard"), text);
  CheckOutput out = run();
  // upgrade-guard itself is not installed here: `[ -x ... ]` tests for it before running it.
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

TEST_F(AptHooksTest, FifoIsNotReadForever) {
  ASSERT_EQ(::mkfifo((dir_ / "etc/apt/apt.conf.d/20fifo").c_str(), 0644), 0);
  CheckOutput out = run();
  EXPECT_TRUE(out.findings.empty()) << dump(out);
}

}  // namespace
}  // namespace guard::checks
