// upgrade-guard completion bash|zsh|tree|values KIND (hidden): shell completion generated from
// the command tree CLI11 holds, so a new subcommand or option completes without anyone editing a
// script. CLI11 has no generator of its own. The build runs `completion bash` and `completion zsh`
// and installs the output; `completion tree` is what the man-page and completion drift tests
// read; `completion values` is what the scripts call for snapshot ids, run ids and check ids.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "policies/policy.h"

namespace guard::cli {
namespace {

// What the word after an option (or a positional) is.
struct ValueSpec {
  std::string kind;  // "", "file", "dir", "choice", "snapshots", "runs", "checks", "command"
  std::vector<std::string> choices;
};

struct OptionInfo {
  std::vector<std::string> names;  // "--root", "-v"
  std::string description;
  bool takes_value = false;
  ValueSpec value;
};

struct CommandInfo {
  std::string path;  // "" for the top level, "gate status"
  std::string description;
  std::vector<std::string> subcommands;
  std::vector<OptionInfo> options;
  std::vector<ValueSpec> positionals;
  std::vector<std::string> keys;  // "PATH OPTION" and "PATH NAME" of each option and positional
};

// Values only the running system knows, keyed by "PATH OPTION" (an option) or "PATH NAME" (a
// positional). The drift test checks that each one still names a real option.
struct DynamicValue {
  std::string_view where;
  std::string_view kind;
};
constexpr DynamicValue kDynamicValues[] = {
    {"snapshot delete id", "snapshots"},
    {"rollback --to", "snapshots"},
    {"history --run", "runs"},
    {"check --checks", "checks"},
    {"run command", "command"},
    {"hook kernel version", "kernels"},
};

std::string first_line(const std::string& text) {
  auto line = text.substr(0, text.find('\n'));
  if (line.size() > 70) line = line.substr(0, 67) + "...";
  return line;
}

// CLI11 renders IsMember as "TEXT:{a,b}" and the existence checks as ":DIR"/":FILE".
ValueSpec value_spec(const CLI::Option& opt, const std::string& key) {
  ValueSpec spec;
  for (const auto& d : kDynamicValues)
    if (d.where == key) spec.kind = d.kind;
  if (!spec.kind.empty()) return spec;
  const std::string type = opt.get_type_name();
  if (auto open = type.find('{'); open != std::string::npos) {
    auto close = type.find('}', open);
    std::string list = type.substr(open + 1, close == std::string::npos ? std::string::npos : close - open - 1);
    size_t start = 0;
    while (start <= list.size()) {
      auto comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      if (comma > start) spec.choices.push_back(list.substr(start, comma - start));
      start = comma + 1;
    }
    spec.kind = "choice";
  } else {
    // A directory by its type (":DIR"), else a file by its type or name, else a directory by name.
    const bool file = type.find(":FILE") != std::string::npos || opt.get_name().find("file") != std::string::npos ||
                      opt.check_lname("policy") || opt.check_lname("prometheus") || opt.check_lname("packages-from");
    const bool dir_by_name = opt.check_lname("config-dir") || opt.check_lname("state-dir") ||
                             opt.check_lname("log-dir") || opt.check_lname("run-dir");
    if (type.find(":DIR") != std::string::npos || (!file && dir_by_name)) {
      spec.kind = "dir";
    } else if (file) {
      spec.kind = "file";
    }
  }
  return spec;
}

void collect(const CLI::App& app, const std::string& path, std::vector<CommandInfo>& out) {
  CommandInfo info;
  info.path = path;
  info.description = first_line(app.get_description());
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional()) {
      info.keys.push_back(path + " " + opt->get_name());
      info.positionals.push_back(value_spec(*opt, info.keys.back()));
      continue;
    }
    if (opt->get_group().empty()) continue;  // hidden
    if (!path.empty() && opt == app.get_help_ptr()) continue;  // every level has it: listed once
    OptionInfo o;
    for (const auto& l : opt->get_lnames()) o.names.push_back("--" + l);
    for (const auto& s : opt->get_snames()) o.names.push_back("-" + s);
    o.description = first_line(opt->get_description());
    o.takes_value = opt->get_expected_max() > 0;  // a flag expects 0 values
    info.keys.push_back(path.empty() ? o.names.front() : path + " " + o.names.front());
    if (o.takes_value) o.value = value_spec(*opt, info.keys.back());
    info.options.push_back(std::move(o));
  }
  std::vector<const CLI::App*> children;
  for (const CLI::App* sub : const_cast<CLI::App&>(app).get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_group().empty() || sub->get_name().empty()) continue;  // hidden, or an option group
    info.subcommands.push_back(sub->get_name());
    children.push_back(sub);
  }
  out.push_back(std::move(info));
  for (const CLI::App* sub : children)
    collect(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
}

std::string join(const std::vector<std::string>& words, std::string_view sep = " ") {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : std::string(sep)) + w;
  return s;
}

// A word list inside single quotes for both shells ('\'' for a quote).
std::string sh_quote(std::string_view s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string spec_string(const ValueSpec& v) {
  if (v.kind == "choice") return "choice:" + join(v.choices);
  return v.kind.empty() ? "text" : v.kind;
}

// The table both scripts share: subcommands, options and value specs per command path.
void print_tables(const std::vector<CommandInfo>& tree, const char* declare) {
  std::printf("%s _upgrade_guard_subs _upgrade_guard_opts _upgrade_guard_values _upgrade_guard_descs\n", declare);
  for (const auto& c : tree) {
    std::printf("_upgrade_guard_subs[%s]=%s\n", sh_quote("/" + c.path).c_str(), sh_quote(join(c.subcommands)).c_str());
    std::vector<std::string> names;
    for (const auto& o : c.options) {
      for (const auto& n : o.names) {
        names.push_back(n);
        if (o.takes_value)
          std::printf("_upgrade_guard_values[%s]=%s\n", sh_quote("/" + c.path + "|" + n).c_str(),
                      sh_quote(spec_string(o.value)).c_str());
      }
    }
    std::printf("_upgrade_guard_opts[%s]=%s\n", sh_quote("/" + c.path).c_str(), sh_quote(join(names)).c_str());
    for (size_t i = 0; i < c.positionals.size(); ++i)
      std::printf("_upgrade_guard_values[%s]=%s\n", sh_quote("/" + c.path + "|#" + std::to_string(i)).c_str(),
                  sh_quote(spec_string(c.positionals[i])).c_str());
    if (!c.path.empty()) {
      auto sep = c.path.rfind(' ');
      auto name = sep == std::string::npos ? c.path : c.path.substr(sep + 1);
      std::printf("_upgrade_guard_descs[%s]=%s\n", sh_quote("/" + c.path).c_str(),
                  sh_quote(name + ":" + c.description).c_str());
    }
  }
}

// Both scripts walk the words before the cursor the same way: a subcommand name descends, an
// option that takes a value skips the next word, "--" ends upgrade-guard's own words (what
// follows is the guarded command), anything else is a positional.
constexpr const char* kBash = R"SH(
_upgrade_guard_spec() {  # PATH WORD: the value spec of option WORD in PATH (or a global one)
  local s=${_upgrade_guard_values["/$1|$2"]}
  [[ -z $s ]] && s=${_upgrade_guard_values["/|$2"]}
  printf '%s' "$s"
}

_upgrade_guard_complete_value() {  # SPEC CUR
  local spec=$1 cur=$2
  case $spec in
    choice:*) COMPREPLY=($(compgen -W "${spec#choice:}" -- "$cur")) ;;
    file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
    dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
    command) COMPREPLY=($(compgen -c -- "$cur")) ;;
    snapshots|runs|checks|kernels)
      COMPREPLY=($(compgen -W "$(upgrade-guard completion values "$spec" 2>/dev/null)" -- "$cur")) ;;
    *) COMPREPLY=() ;;
  esac
}

_upgrade_guard() {
  local cur=${COMP_WORDS[COMP_CWORD]} cmdpath="" w spec
  local -i i pos=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [[ $w == -- ]]; then
      if ((i == COMP_CWORD - 1)); then COMPREPLY=($(compgen -c -- "$cur"))
      else compopt -o default 2>/dev/null; COMPREPLY=(); fi
      return
    fi
    if [[ $w == -* ]]; then
      spec=$(_upgrade_guard_spec "$cmdpath" "$w")
      [[ -n $spec && $w != *=* ]] && ((i++))
      continue
    fi
    if [[ " ${_upgrade_guard_subs["/$cmdpath"]} " == *" $w "* ]]; then
      cmdpath=${cmdpath:+$cmdpath }$w
      pos=0
    else
      pos+=1
    fi
  done
  if ((COMP_CWORD > 1)); then
    w=${COMP_WORDS[COMP_CWORD - 1]}
    if [[ $w == -* && $w != *=* ]]; then
      spec=$(_upgrade_guard_spec "$cmdpath" "$w")
      if [[ -n $spec ]]; then
        _upgrade_guard_complete_value "$spec" "$cur"
        return
      fi
    fi
  fi
  if [[ $cur == -* ]]; then
    w=${_upgrade_guard_opts["/$cmdpath"]}
    [[ -n $cmdpath ]] && w+=" ${_upgrade_guard_opts["/"]}"
    COMPREPLY=($(compgen -W "$w" -- "$cur"))
    return
  fi
  if [[ -n ${_upgrade_guard_subs["/$cmdpath"]} ]]; then
    COMPREPLY=($(compgen -W "${_upgrade_guard_subs["/$cmdpath"]}" -- "$cur"))
    return
  fi
  spec=${_upgrade_guard_values["/$cmdpath|#$pos"]}
  [[ -n $spec ]] && _upgrade_guard_complete_value "$spec" "$cur"
}
complete -F _upgrade_guard upgrade-guard
)SH";

constexpr const char* kZsh = R"SH(
_upgrade_guard_value() {  # SPEC
  local spec=$1
  case $spec in
    choice:*) compadd -- ${=spec#choice:} ;;
    file) _files ;;
    dir) _files -/ ;;
    command) _command_names -e ;;
    snapshots|runs|checks|kernels) compadd -- ${(f)"$(upgrade-guard completion values $spec 2>/dev/null)"} ;;
  esac
}

_upgrade_guard() {
  local cmdpath="" w spec
  integer i pos=0
  for ((i = 2; i < CURRENT; i++)); do
    w=${words[i]}
    if [[ $w == -- ]]; then
      if ((i == CURRENT - 1)); then _command_names -e; else _normal; fi
      return
    fi
    if [[ $w == -* ]]; then
      spec=${_upgrade_guard_values[/$cmdpath|$w]:-${_upgrade_guard_values[/|$w]}}
      [[ -n $spec && $w != *=* ]] && ((i++))
      continue
    fi
    if [[ " ${_upgrade_guard_subs[/$cmdpath]} " == *" $w "* ]]; then
      cmdpath=${cmdpath:+$cmdpath }$w
      pos=0
    else
      ((pos++))
    fi
  done
  w=${words[CURRENT-1]}
  if ((CURRENT > 2)) && [[ $w == -* && $w != *=* ]]; then
    spec=${_upgrade_guard_values[/$cmdpath|$w]:-${_upgrade_guard_values[/|$w]}}
    if [[ -n $spec ]]; then
      _upgrade_guard_value $spec
      return
    fi
  fi
  if [[ $PREFIX == -* ]]; then
    compadd -- ${=_upgrade_guard_opts[/$cmdpath]}
    [[ -n $cmdpath ]] && compadd -- ${=_upgrade_guard_opts[/]}
    return
  fi
  if [[ -n ${_upgrade_guard_subs[/$cmdpath]} ]]; then
    local -a described
    for w in ${=_upgrade_guard_subs[/$cmdpath]}; do
      described+=("${_upgrade_guard_descs[/${cmdpath:+$cmdpath }$w]}")
    done
    _describe -t commands 'upgrade-guard command' described
    return
  fi
  spec=${_upgrade_guard_values[/$cmdpath|#$pos]}
  [[ -n $spec ]] && _upgrade_guard_value $spec
}

_upgrade_guard "$@"
)SH";

int print_values(CliContext& ctx, const std::string& kind) {
  if (kind == "checks") {
    for (const auto& id : policies::known_check_ids()) std::printf("%s\n", id.c_str());
    return kExitOk;
  }
  if (kind == "kernels") return kExitOk;  // the kernel hook's argument: nothing to offer
  if (kind != "snapshots" && kind != "runs") {
    std::fprintf(stderr, "upgrade-guard: completion values: unknown kind %s\n", kind.c_str());
    return kExitUsage;
  }
  // Completing must never create the store or print notices: read it when it exists, else nothing.
  auto store = ctx.invocation().existing_store();
  if (!store || *store == nullptr) return kExitOk;
  if (kind == "snapshots") {
    auto snapshots = (*store)->list_snapshots();
    if (snapshots)
      for (const auto& s : *snapshots) std::printf("%s\n", s.id.c_str());
  } else {
    auto runs = (*store)->list_runs(200);
    if (runs)
      for (const auto& r : *runs) std::printf("%lld\n", static_cast<long long>(r.id));
  }
  return kExitOk;
}

}  // namespace

void add_completion_command(CLI::App& app, CliContext& ctx) {
  auto shell = std::make_shared<std::string>();
  auto kind = std::make_shared<std::string>();
  // Group "": hidden from --help, from the scripts it generates and from the drift tests.
  auto* sub = app.add_subcommand("completion", "Shell completion generated from this command tree")->group("");
  sub->add_option("shell", *shell, "bash, zsh, tree (one line per command: its path and options) or values")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "tree", "values"}));
  sub->add_option("kind", *kind, "With values: snapshots, runs or checks");
  sub->callback([&app, &ctx, shell, kind] {
    if (*shell == "values") {
      ctx.exit_code = print_values(ctx, *kind);
      return;
    }
    std::vector<CommandInfo> tree;
    collect(app, "", tree);
    if (*shell == "tree") {
      for (const auto& c : tree) {
        std::vector<std::string> names;
        for (const auto& o : c.options) names.push_back(join(o.names, ","));
        std::printf("%s\t%s\n", c.path.c_str(), join(names).c_str());
      }
      // A dynamic value whose option is gone is a stale table entry: fail, so the drift test does.
      for (const auto& d : kDynamicValues) {
        bool found = false;
        for (const auto& c : tree)
          for (const auto& k : c.keys) found = found || k == d.where;
        if (!found) {
          std::fprintf(stderr, "upgrade-guard: completion: no option or argument \"%.*s\"\n", int(d.where.size()),
                       d.where.data());
          ctx.exit_code = kExitEnvironment;
          return;
        }
      }
    } else if (*shell == "bash") {
      std::printf("# bash completion for upgrade-guard, generated by `upgrade-guard completion bash`\n");
      print_tables(tree, "declare -gA");
      std::fputs(kBash, stdout);
    } else {
      std::printf("#compdef upgrade-guard\n# generated by `upgrade-guard completion zsh`\n");
      print_tables(tree, "typeset -gA");
      std::fputs(kZsh, stdout);
    }
    ctx.exit_code = kExitOk;
  });
}

}  // namespace guard::cli
