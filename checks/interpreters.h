// The `interpreters` check, and what the apt-hooks and login-shells checks share with it: how a
// command name resolves in a root, and whether a `#!` script's interpreter would start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/root.h"
#include "checks/check.h"

namespace guard::checks {

// The PATH of /bin/sh run by apt and of systemd's Exec*= lookup.
[[nodiscard]] const std::vector<std::string>& default_exec_path();

// Where `word` resolves as /bin/sh's command lookup would: itself when it holds a '/'
// ("/usr/bin/gdbus"; relative ones from "/"), else the first executable regular file in
// default_exec_path(), else the first existing file there, else "".
[[nodiscard]] std::string resolve_command(const base::Root& root, std::string_view word);

// "" when `path` is an executable regular file in the root, else what is wrong with it
// ("does not exist", "is not a regular file", "is not executable", "is a link loop").
[[nodiscard]] std::string executable_problem(const base::Root& root, const std::string& path);


// The `#!` line of a file as the kernel's binfmt_script reads it: the first 256 bytes, the
// line up to '\n', the interpreter is the first word, the rest (trimmed) one argument.
// e.g. "#!/usr/bin/env python3 -u\n" -> {true, "/usr/bin/env", "python3 -u"}.
struct Shebang {
  bool script = false;
  std::string interpreter;
  std::string arg;
};
// Parses the first bytes of a file.
[[nodiscard]] Shebang parse_shebang(std::string_view head);
// Opens `path` with O_NONBLOCK (a FIFO never hangs), reads at most 256 bytes of a regular file.
// Not a script when it is not a regular file or cannot be read.
[[nodiscard]] Shebang read_shebang(const base::Root& root, const std::string& path);

// What is wrong with the interpreter chain of the script at `path` (nullopt when it is not a
// script or every interpreter would run): the interpreter (after `/usr/bin/env NAME`, NAME
// searched in default_exec_path()) must be an executable file; an interpreter that is itself a
// script is followed, at most 4 levels deep as the kernel does.
// e.g. {"/usr/bin/python3.11", "does not exist"} for a script starting "#!/usr/bin/python3.11".
struct InterpreterProblem {
  std::string interpreter;  // as named, e.g. "/usr/bin/python3.11" or "python3" (env)
  std::string problem;      // e.g. "does not exist"
  std::string script;       // the script naming it (`path`, or an interpreter script deeper down)
};
[[nodiscard]] std::optional<InterpreterProblem> interpreter_problem(const base::Root& root, const std::string& path);

// Reads the `#!` line of everything the system executes by path (see policies/default.toml
// [checks.interpreters]): enabled units' Exec*= programs, the critical programs, the maintainer
// scripts dpkg runs next for packages left unpacked/half-configured/half-installed/awaiting
// triggers, and the programs apt hooks run. A missing interpreter blocks (an apt hook guarded
// by a test or `|| true` only informs); the finding's path is the script, its message
// "line 1: interpreter X does not exist (named by FILE line N)".
class InterpretersCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "interpreters"; }
  [[nodiscard]] std::string_view summary() const override {
    return "#! interpreters of unit Exec programs, critical programs, pending maintainer scripts and apt hooks";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

}  // namespace guard::checks
