#include "checks/critical.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <fmt/format.h>
#include <optional>
#include <unordered_set>

#include "base/input_limits.h"
#include "base/strings.h"
#include "checks/elf_resolver.h"
#include "checks/ld_so_conf.h"
#include "checks/libraries.h"

namespace guard::checks {
namespace {

// "/bin/sh" -> "/usr/bin/sh": the merged-/usr spelling, so both spellings compare equal.
std::string merged(std::string_view path) {
  for (std::string_view top : {"/bin/", "/sbin/", "/lib/", "/lib64/"})
    if (path.substr(0, top.size()) == top) return "/usr" + std::string(path);
  return std::string(path);
}

bool always_required(std::string_view path) {
  std::string m = merged(path);
  return m == "/usr/bin/sh" || m == "/usr/bin/dpkg" || m == "/usr/bin/apt-get" || m == "/usr/bin/mount" ||
         m == "/usr/bin/login";
}

// Every path installed packages list, in merged spelling.
std::unordered_set<std::string> shipped_paths(const base::Root& root) {
  std::unordered_set<std::string> out;
  for (const auto& list : glob_in_root(root, "/var/lib/dpkg/info/*.list")) {
    auto text = root.read_file(list, base::limits::kDpkgListBytes);
    if (!text) continue;
    for (auto line : base::split(*text, '\n'))
      if (!line.empty()) out.insert(merged(line));
  }
  return out;
}

bool has_kernel(const base::Root& root) {
  return !glob_in_root(root, "/boot/vmlinuz-*").empty() || !glob_in_root(root, "/usr/lib/modules/*").empty();
}

// Loads `top`'s whole dependency tree like ld.so and reports every problem in it.
void check_tree(LibraryResolver& resolver, const LoadedElf& top, const std::string& shown, std::vector<Finding>& out) {
  resolver.load_tree(top, [&](const TreeObject& t) {
    const LoadedElf& who = t.object;
    if (!who.elf->error.empty()) {
      out.push_back(
          make_finding("critical", Severity::block, shown,
                       fmt::format("loads {}, which is not a well-formed ELF object: {}", who.path, who.elf->error),
                       fmt::format("reinstall the package that ships {} (dpkg -S {})", who.path, who.path),
                       who.path + ":malformed-elf"));
      return;
    }
    for (auto& f : dependency_findings(shown, t.problems, Severity::block, "critical")) {
      if (!t.top) {
        f.message = fmt::format("loads {}, which {}", who.path, f.message);
        f.id = who.path + ":" + f.id;
      }
      out.push_back(std::move(f));
    }
  });
}

}  // namespace

const std::vector<std::string>& default_critical_paths() { return policies::default_check_paths("critical"); }

base::Result<CheckOutput> CriticalCheck::run(const CheckContext& ctx) const {
  const auto& configured = ctx.policy.check(std::string(id())).paths;
  const auto& paths = configured.empty() ? default_critical_paths() : configured;
  CheckOutput out;
  LibraryResolver resolver(ctx.root);
  std::optional<std::unordered_set<std::string>> shipped;
  auto is_shipped = [&](const std::string& p) {
    if (!shipped) shipped = shipped_paths(ctx.root);
    return shipped->count(merged(p)) != 0;
  };

  for (const auto& path : paths) {
    ++out.items;
    auto st = ctx.root.stat(path);
    if (!st) {
      int err = st.error().err;
      if (err == ELOOP) {
        out.findings.push_back(make_finding("critical", Severity::block, path, "is a link loop",
                                            fmt::format("reinstall the package that ships it (dpkg -S {})", path),
                                            "loop"));
        continue;
      }
      if (err != ENOENT && err != ENOTDIR) {
        out.findings.push_back(make_finding("critical", Severity::block, path,
                                            "cannot be examined: " + st.error().to_string(), "", "unreadable"));
        continue;
      }
      bool init = merged(path) == "/usr/sbin/init";
      bool required = always_required(path) || is_shipped(path) || (init && has_kernel(ctx.root));
      if (required) {
        out.findings.push_back(make_finding("critical", Severity::block, path,
                                            init ? "is missing: the system cannot boot without an init" : "is missing",
                                            fmt::format("reinstall the package that ships it (dpkg -S {})", path),
                                            "missing"));
      } else if (init) {
        out.findings.push_back(make_finding("critical", Severity::info, path,
                                            "no init is installed (a container or chroot root)", "", "no-init"));
      }
      continue;
    }
    if (!S_ISREG(st->st_mode)) {
      out.findings.push_back(
          make_finding("critical", Severity::block, path, "is not a regular file", "", "not-regular"));
      continue;
    }
    if ((st->st_mode & 0111) == 0) {
      out.findings.push_back(make_finding("critical", Severity::block, path, "is not executable",
                                          fmt::format("chmod 755 {} (in the root), or reinstall its package", path),
                                          "not-executable"));
      continue;
    }
    int err = 0;
    const ElfObject* elf = resolver.load(path, &err);
    if (elf == nullptr) {
      // A script: its interpreter must exist.
      auto head = ctx.root.read_file(path, 1 << 20);
      if (head && head->rfind("#!", 0) == 0) {
        std::string_view line = std::string_view(*head).substr(2, head->find('\n') - 2);
        auto words = base::split_ws(base::trim(line));
        if (!words.empty()) {
          auto ok = ctx.root.stat(words[0]);
          if (!ok)
            out.findings.push_back(
                make_finding("critical", Severity::block, path,
                             fmt::format("is a script whose interpreter {} does not exist", words[0]),
                             fmt::format("install the package that ships {}", words[0]), "interpreter"));
        }
      }
      continue;
    }
    auto real = ctx.root.realpath(path);
    check_tree(resolver, LoadedElf{real ? *real : path, elf}, path, out.findings);
  }
  return out;
}

}  // namespace guard::checks
