// apt's configuration read as apt reads it (apt-pkg/contrib/configuration.cc ReadConfigFile and
// ReadConfigDir, fileutl.cc GetListOfFilesInDir, init.cc pkgInitConfig), and the programs a
// shell command string of an apt hook runs.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/root.h"

namespace guard::checks {

// True when apt reads a file of this name from a configuration directory (apt.conf.d): not
// starting with '.', extension "conf" or none (the text after the last '.'), only letters,
// digits, '_', '-', ':' and '.', not ending in '.'. e.g. "70debconf" and "99x.conf" yes;
// "01autoremove.dpkg-old", "50foo~", "x.bak", ".hidden" no.
[[nodiscard]] bool is_apt_config_name(std::string_view name);

// apt's configuration tree: keys compare case-insensitively; "A::B::" appends an anonymous
// child (a list item). Each node remembers the file and line that set its value.
struct AptNode {
  std::string tag;
  std::string value;
  std::string file;
  std::size_t line = 0;
  bool has_value = false;
  std::vector<std::unique_ptr<AptNode>> children;
};

class AptConfig {
 public:
  AptConfig() : root_(std::make_unique<AptNode>()) {}
  // Sets `item` ("DPkg::Pre-Invoke::" appends) to `value`.
  void set(std::string_view item, std::string value, const std::string& file, std::size_t line);
  // Removes the subtree `item` (#clear).
  void clear(std::string_view item);
  // The node `item`, or nullptr. e.g. find("dpkg::pre-invoke").
  [[nodiscard]] const AptNode* find(std::string_view item) const;

 private:
  AptNode* lookup(std::string_view item, bool create);
  std::unique_ptr<AptNode> root_;
};

// A syntax error apt refuses: every apt-get run fails with "E: Syntax error FILE:LINE: WHAT".
struct AptSyntaxError {
  std::string file;
  std::size_t line = 0;
  std::string what;  // e.g. "Extra junk after value"
};

// Reads one file's bytes into `conf` (the ReadConfigFile state machine: `//`, `#` and `/* */`
// comments outside quotes, `{`, `;`, `}` terminators, #include (calls `include(path, depth)`,
// which reads a file, or a directory when the path ends in '/', and returns false when that
// failed), #clear). Returns the syntax error apt stops reading the file at, if any.
using AptInclude = std::function<bool(const std::string& path, unsigned depth)>;
[[nodiscard]] std::optional<AptSyntaxError> parse_apt_config(std::string_view bytes, const std::string& file,
                                                             AptConfig& conf, unsigned depth,
                                                             const AptInclude& include);

// The whole configuration of a root as apt-get sees it: /etc/apt/apt.conf.d/* (sorted by name,
// filtered by is_apt_config_name, regular files after following links), then /etc/apt/apt.conf.
// Every syntax error is collected (apt reports each file's and then fails). `files` counts the
// files read.
struct AptConfigRead {
  AptConfig conf;
  std::vector<AptSyntaxError> errors;
  std::size_t files = 0;
};
[[nodiscard]] AptConfigRead read_apt_config(const base::Root& root);

// One hook command: the value of a child of a hook key, run by apt through `sh -c`.
struct AptHook {
  std::string key;      // as spelled in kAptHookKeys, e.g. "DPkg::Pre-Invoke"
  std::string command;  // e.g. "/usr/sbin/dpkg-preconfigure --apt || true"
  std::string file;
  std::size_t line = 0;
};

// The hook options apt runs through `sh -c` (RunScripts/RunScriptsWithPkgs).
[[nodiscard]] const std::vector<std::string>& apt_hook_keys();
[[nodiscard]] std::vector<AptHook> apt_hooks(const AptConfig& conf);

// A program a shell command string runs: the first word of a simple command.
struct ShellProgram {
  std::string word;      // e.g. "/usr/bin/gdbus", "appstreamcli"
  bool guarded = false;  // after a test (`test -x P &&`, `if [ -x P ]`, `command -v P &&`) or followed by `||`
  bool tested = false;   // an earlier test names this word (`[ -x /usr/bin/P ] && /usr/bin/P`,
                         // `[ -x P ] || exit 0; P`): guarded too, and absence is expected
};

// The programs `command` runs as /bin/sh would parse it, simplified: commands split on `;`,
// `&`, `&&`, `||`, `|`, newlines and parentheses; variable assignments, redirections,
// reserved words (if/then/else/elif/fi/case/esac/for/while/until/do/done/!/{/}), case
// patterns and shell builtins are skipped; `exec`/`command` name the next word. Words holding
// `$` or backquotes are skipped (unknown until run time).
[[nodiscard]] std::vector<ShellProgram> shell_programs(std::string_view command);

}  // namespace guard::checks
