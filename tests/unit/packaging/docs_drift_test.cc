// The man pages and the shell completions against what the program knows: every subcommand and
// option of the CLI's command tree (`upgrade-guard completion tree`) has its section and its
// bold option in upgrade-guard(8); every key the policy loader knows is in
// upgrade-guard-policy(5); every subcommand and option completes in bash, and the zsh script
// carries the same tables. Each checker is also run on a page with something missing, to show
// that it fails.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "policies/loader.h"
#include "policies/policy.h"
#include "tests/common/test_env.h"

namespace guard {
namespace {

using ::testing::HasSubstr;
using testing::read_file;
using testing::run_guard;

struct Command {
  std::string path;                  // "" for the top level, "gate status"
  std::vector<std::string> options;  // "--reason", "--verbose,-v"
};

std::vector<Command> command_tree() {
  auto r = run_guard({"completion", "tree"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<Command> tree;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    Command c{line.substr(0, tab), {}};
    std::istringstream opts(line.substr(tab + 1));
    for (std::string o; opts >> o;) c.options.push_back(o);
    tree.push_back(std::move(c));
  }
  return tree;
}

bool has_children(const std::vector<Command>& tree, const std::string& path) {
  for (const auto& c : tree)
    if (c.path.size() > path.size() && c.path.rfind(path.empty() ? "" : path + " ", 0) == 0) return true;
  return false;
}

// The text of `# HEADING` or `## HEADING` up to the next heading of any level.
std::map<std::string, std::string> sections(const std::string& page) {
  std::map<std::string, std::string> out;
  std::string current;
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# ", 0) == 0 || line.rfind("## ", 0) == 0) {
      current = line.substr(line.find(' ') + 1);
      out[current];
      continue;
    }
    if (!current.empty()) out[current] += line + "\n";
  }
  return out;
}

// What upgrade-guard(8) lacks: a section per command without subcommands (`## gate status`),
// each option in bold in its command's section (the global ones under GLOBAL OPTIONS), and no
// section for a command the CLI does not have.
std::vector<std::string> man_page_gaps(const std::vector<Command>& tree, const std::string& page) {
  std::vector<std::string> gaps;
  const auto secs = sections(page);
  std::set<std::string> paths;
  for (const auto& c : tree) {
    paths.insert(c.path);
    const bool global = c.path.empty();
    if (!global && has_children(tree, c.path)) continue;
    auto it = secs.find(global ? "GLOBAL OPTIONS" : c.path);
    if (it == secs.end()) {
      gaps.push_back("no section \"## " + c.path + "\"");
      continue;
    }
    for (const auto& names : c.options) {
      std::istringstream split(names);
      for (std::string name; std::getline(split, name, ',');) {
        if (!global && (name == "--help" || name == "-h")) continue;
        if (it->second.find("*" + name + "*") == std::string::npos)
          gaps.push_back("\"" + (global ? std::string("GLOBAL OPTIONS") : c.path) + "\" lacks *" + name + "*");
      }
    }
  }
  bool in_commands = false;
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# ", 0) == 0) in_commands = line == "# COMMANDS";
    if (in_commands && line.rfind("## ", 0) == 0 && !paths.count(line.substr(3)))
      gaps.push_back("section \"" + line + "\" names no command");
  }
  return gaps;
}

// What upgrade-guard-policy(5) lacks: each key in bold ("*snapshot.keep*"). A check's own keys
// (checks.dpkg-state.severity) count as documented by the generic *checks.*_ID_*.severity* and
// the check id in bold; custom[].name as *custom[].name*.
std::vector<std::string> policy_page_gaps(const std::vector<std::string>& keys, const std::string& page) {
  std::vector<std::string> gaps;
  for (const auto& key : keys) {
    if (page.find("*" + key + "*") != std::string::npos) continue;
    if (key.rfind("checks.", 0) == 0) {
      auto dot = key.find('.', 7);
      const std::string id = key.substr(7, dot - 7);
      const std::string field = key.substr(dot + 1);
      if (page.find("*checks.*_ID_*." + field + "*") != std::string::npos &&
          page.find("\n*" + id + "*\n") != std::string::npos)
        continue;
    }
    gaps.push_back(key);
  }
  return gaps;
}

std::string source(const std::string& rel) { return read_file(std::string(UG_SOURCE_DIR) + "/" + rel); }

TEST(ManPageDrift, EveryCommandAndOptionIsInUpgradeGuard8) {
  const auto tree = command_tree();
  ASSERT_GT(tree.size(), 20u);
  const auto gaps = man_page_gaps(tree, source("packaging/man/upgrade-guard.8.scd"));
  EXPECT_TRUE(gaps.empty()) << "packaging/man/upgrade-guard.8.scd: " << ::testing::PrintToString(gaps);
}

TEST(ManPageDrift, TheCheckerFailsOnAMissingOptionAndAMissingCommand) {
  std::vector<Command> tree{{"", {"--root"}}, {"gate", {"--help,-h"}}, {"gate close", {"--help,-h", "--reason"}},
                            {"audit", {"--help,-h", "--prometheus"}}};
  const std::string page =
      "# GLOBAL OPTIONS\n*--root* _DIR_\n# COMMANDS\n## gate close\n*--force*\n## gate reopen\n";
  EXPECT_THAT(man_page_gaps(tree, page),
              ::testing::ElementsAre("\"gate close\" lacks *--reason*", "no section \"## audit\"",
                                     "section \"## gate reopen\" names no command"));
}

TEST(ManPageDrift, EveryPolicyKeyIsInUpgradeGuardPolicy5) {
  const auto keys = policies::policy_keys();
  ASSERT_GT(keys.size(), 40u);
  const auto gaps = policy_page_gaps(keys, source("packaging/man/upgrade-guard-policy.5.scd"));
  EXPECT_TRUE(gaps.empty()) << "packaging/man/upgrade-guard-policy.5.scd: " << ::testing::PrintToString(gaps);
}

TEST(ManPageDrift, ThePolicyCheckerFailsOnAMissingKey) {
  const std::string page = "*checks.*_ID_*.severity*\n*libraries*\n*snapshot.keep*\n";
  EXPECT_THAT(policy_page_gaps({"snapshot.keep", "checks.libraries.severity", "checks.boot.severity",
                                "snapshot.keep_broken"},
                               page),
              ::testing::ElementsAre("checks.boot.severity", "snapshot.keep_broken"));
}

// Completes each query with the generated bash script; one output line per query.
std::vector<std::string> bash_complete(const std::vector<std::vector<std::string>>& queries) {
  testing::TempDir dir("ug-completion");
  auto gen = run_guard({"completion", "bash"});
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
  testing::write_file(dir / "upgrade-guard", gen.out);
  std::string script = "source " + (dir / "upgrade-guard") + "\n";
  for (const auto& words : queries) {
    script += "COMP_WORDS=(";
    for (const auto& w : words) script += "'" + w + "' ";
    script += ")\nCOMP_CWORD=" + std::to_string(words.size() - 1) + "\nCOMPREPLY=()\n_upgrade_guard\n";
    script += "echo \"${COMPREPLY[*]}\"\n";
  }
  testing::write_file(dir / "driver.sh", script);
  auto r = testing::run({"bash", "--norc", "--noprofile", dir / "driver.sh"}, 60,
                        {{"PATH", std::string(UG_BINARY).substr(0, std::string(UG_BINARY).rfind('/')) +
                                      ":/usr/sbin:/usr/bin:/sbin:/bin"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) lines.push_back(" " + line + " ");
  EXPECT_EQ(lines.size(), queries.size()) << r.out << r.err;
  lines.resize(queries.size());
  return lines;
}

TEST(Completion, EverySubcommandAndOptionCompletesInBash) {
  const auto tree = command_tree();
  std::vector<std::vector<std::string>> queries;
  std::vector<std::string> expected;
  for (const auto& c : tree) {
    std::vector<std::string> words{"upgrade-guard"};
    std::istringstream split(c.path);
    for (std::string w; split >> w;) words.push_back(w);
    if (!c.path.empty()) {
      // The last word of the path, from its first two letters.
      auto partial = words;
      expected.push_back(partial.back());
      partial.back() = partial.back().substr(0, 2);
      queries.push_back(partial);
    }
    for (const auto& names : c.options) {
      auto name = names.substr(0, names.find(','));
      auto partial = words;
      partial.push_back(name.substr(0, name.size() - 1));
      queries.push_back(partial);
      expected.push_back(name);
    }
  }
  // Values: choices, check ids, and a global option after a subcommand.
  queries.push_back({"upgrade-guard", "check", "--scope", ""});
  expected.push_back("changed");
  queries.push_back({"upgrade-guard", "check", "--checks", "lib"});
  expected.push_back("libraries");
  queries.push_back({"upgrade-guard", "gate", "status", "--ro"});
  expected.push_back("--root");
  queries.push_back({"upgrade-guard", "--root", "/tmp", "gate", "cl"});
  expected.push_back("close");
  const auto got = bash_complete(queries);
  for (size_t i = 0; i < queries.size(); ++i) {
    std::string q;
    for (const auto& w : queries[i]) q += w + " ";
    EXPECT_THAT(got[i], HasSubstr(" " + expected[i] + " ")) << "completing: " << q;
  }
  // Hidden commands stay hidden.
  EXPECT_THAT(bash_complete({{"upgrade-guard", "com"}})[0], ::testing::Not(HasSubstr("completion")));
}

TEST(Completion, TheZshScriptParsesAndCarriesEveryCommand) {
  if (::access("/usr/bin/zsh", X_OK) != 0 && ::access("/bin/zsh", X_OK) != 0) {
    UG_SKIP_OR_FAIL("zsh is not installed (scripts/install-deps installs it)");
  }
  auto gen = run_guard({"completion", "zsh"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_EQ(gen.out.rfind("#compdef upgrade-guard\n", 0), 0u);
  testing::TempDir dir("ug-completion");
  testing::write_file(dir / "_upgrade-guard", gen.out);
  auto parsed = testing::run({"zsh", "-n", dir / "_upgrade-guard"});
  EXPECT_EQ(parsed.exit_code, 0) << parsed.err;
  for (const auto& c : command_tree()) {
    EXPECT_THAT(gen.out, HasSubstr("_upgrade_guard_subs['/" + c.path + "']=")) << c.path;
    for (const auto& names : c.options)
      EXPECT_THAT(gen.out, HasSubstr(names.substr(0, names.find(',')))) << c.path;
  }
}

TEST(Completion, ValuesOfEachDynamicKindAnswerWithoutAStore) {
  testing::TempDir state("ug-completion-state");
  auto checks = run_guard({"--state-dir", state.path(), "completion", "values", "checks"});
  EXPECT_EQ(checks.exit_code, 0);
  EXPECT_THAT(checks.out, HasSubstr("package-hashes\n"));
  for (const char* kind : {"snapshots", "runs"}) {
    auto r = run_guard({"--state-dir", state.path(), "completion", "values", kind});
    EXPECT_EQ(r.exit_code, 0) << kind << r.err;
    EXPECT_EQ(r.out, "") << kind;
    EXPECT_EQ(r.err, "") << kind;
  }
  EXPECT_FALSE(std::filesystem::exists(state / "state.db"));  // completing creates nothing
}

}  // namespace
}  // namespace guard
