#include "checks/libraries.h"

#include <dirent.h>
#include <elf.h>
#include <sys/stat.h>

#include <algorithm>
#include <execution>
#include <fmt/format.h>
#include <fstream>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_set>

#include "base/atomic_file.h"
#include "base/strings.h"
#include "checks/configured_objects.h"
#include "checks/elf_symbols.h"

namespace guard::checks {
namespace {

// Separate debug info, kernel modules and firmware blobs live under these directories of a
// lib dir; none of them is ever loaded by ld.so, and together they are most of /usr/lib's bytes.
bool skipped_subtree(std::string_view parent, std::string_view name) {
  if (parent != "/usr/lib" && parent != "/lib") return false;
  return name == "modules" || name == "firmware" || name == "debug";
}

// Debian ships optional plugins whose libraries come from packages it only recommends or
// suggests: e.g. /usr/lib/x86_64-linux-gnu/gdk-pixbuf-2.0/2.10.0/loaders/*.so, gconv modules,
// sasl2, krb5 and perl/python extension modules. They are dlopen()ed on demand by their host
// program, which copes with a failure. So a missing library of a shared object that lives in
// such a subdirectory (below /usr/lib/<tuple>/<something>/, or in /usr/lib/<package>/), has no
// program interpreter and that no program links against, directly or through other libraries
// (a dlopen-only plugin, e.g. a JDK's libnet.so needing the libjvm.so its host loaded first),
// is a warning.
// Everything else blocks: programs anywhere (e.g. /usr/lib/systemd/systemd-journald), libraries
// in the lib dirs themselves, and private libraries that programs link against (e.g.
// /usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so). With a baseline, a plugin that
// loses a library it had before still shows up as a new finding.
bool optional_plugin(std::string_view path) {
  std::string_view dir = base::dirname(path);
  for (std::string_view lib : {"/usr/lib/", "/lib/", "/usr/lib64/", "/usr/local/lib/"}) {
    if (dir.substr(0, lib.size()) != lib) continue;
    std::string_view rest = dir.substr(lib.size());  // e.g. "x86_64-linux-gnu/sasl2" or "python3/dist-packages"
    if (rest.empty()) return false;                   // /usr/lib/libfoo.so.1
    std::size_t slash = rest.find('/');
    std::string_view first = rest.substr(0, slash);
    bool tuple = first.find("-linux-gnu") != std::string_view::npos;
    if (tuple) return slash != std::string_view::npos;  // deeper than /usr/lib/<tuple>
    return true;                                        // /usr/lib/<package>/..., e.g. systemd or openssh helpers
  }
  return false;
}

std::string problem_message(const DependencyProblem& p) {
  switch (p.kind) {
    case DependencyProblem::Kind::interp_missing:
      return fmt::format("its program interpreter {} does not exist", p.name);
    case DependencyProblem::Kind::needed_missing:
      return fmt::format("needs {}, which is not found in the library search path", p.name);
    case DependencyProblem::Kind::version_missing:
      if (p.defined.empty())
        return fmt::format("needs {} from {}, which does not define it ({})", p.version, p.name, p.lib_path);
      return fmt::format("needs {} from {}, which defines only up to {} ({})", p.version, p.name, p.defined, p.lib_path);
  }
  return {};
}

std::string problem_id(const DependencyProblem& p) {
  switch (p.kind) {
    case DependencyProblem::Kind::interp_missing: return "interp:" + p.name;
    case DependencyProblem::Kind::needed_missing: return "needed:" + p.name;
    case DependencyProblem::Kind::version_missing: return "version:" + p.name + ":" + p.version;
  }
  return {};
}

std::string problem_hint(const DependencyProblem& p) {
  switch (p.kind) {
    case DependencyProblem::Kind::interp_missing: return "reinstall libc6 (apt-get install --reinstall libc6)";
    case DependencyProblem::Kind::needed_missing:
      return fmt::format("find the package that ships {} (dpkg -S {}) and reinstall it; run ldconfig if it is installed "
                         "in a directory only ld.so.conf names", p.name, p.name);
    case DependencyProblem::Kind::version_missing:
      return fmt::format("upgrade the package that ships {} (dpkg -S {}) to a version providing {}", p.lib_path,
                         p.lib_path, p.version);
  }
  return {};
}

using RescueKey = std::pair<const ElfObject*, std::string>;
struct RescueHash {
  std::size_t operator()(const RescueKey& k) const {
    return std::hash<const void*>()(k.first) ^ (std::hash<std::string>()(k.second) << 1);
  }
};

// Loads the dependency tree of `top` as ld.so does and records every (object, need) pair that
// resolves completely in this context. A library that only works when loaded by a program with
// an RPATH/RUNPATH (e.g. /usr/lib/foo/libbar.so needing a sibling found through the program's
// $ORIGIN) is not a finding.
void simulate_load(LibraryResolver& resolver, const LoadedElf& top, std::mutex& mu,
                   std::unordered_set<RescueKey, RescueHash>& rescued) {
  std::vector<RescueKey> ok;
  resolver.load_tree(top, [&](const TreeObject& t) {
    for (std::size_t i = 0; i < t.resolved.size(); ++i) {
      if (t.resolved[i].elf == nullptr) continue;
      const std::string& need = t.object.elf->needed[i];
      bool versions_ok = std::none_of(t.problems.begin(), t.problems.end(), [&](const DependencyProblem& p) {
        return p.kind == DependencyProblem::Kind::version_missing && p.name == need;
      });
      if (versions_ok) ok.emplace_back(t.object.elf, need);
    }
  });
  std::lock_guard lock(mu);
  for (auto& k : ok) rescued.insert(std::move(k));
}

}  // namespace

const std::vector<std::string>& default_library_scan_paths() {
  return policies::default_check_paths("libraries");
}

std::vector<std::string> canonical_scan_paths(const base::Root& root, const std::vector<std::string>& paths) {
  std::vector<std::string> real;
  for (const auto& p : paths) {
    auto r = root.realpath(p);
    if (!r) continue;  // missing in this root: nothing to scan
    auto st = root.stat(*r);
    if (!st || !S_ISDIR(st->st_mode)) continue;
    if (std::find(real.begin(), real.end(), *r) == real.end()) real.push_back(*r);
  }
  std::vector<std::string> out;
  for (const auto& p : real) {
    bool nested = std::any_of(real.begin(), real.end(), [&](const std::string& q) {
      return q != p && (q == "/" || (p.size() > q.size() && p.compare(0, q.size(), q) == 0 && p[q.size()] == '/'));
    });
    if (!nested) out.push_back(p);
  }
  return out;
}

namespace {

// The ELF objects among `files` (symlinks and non-ELF files are left out), loaded in parallel.
std::vector<LoadedElf> load_files(LibraryResolver& resolver, std::vector<std::string> files) {
  std::vector<const ElfObject*> objs(files.size(), nullptr);
  std::vector<std::size_t> idx(files.size());
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::for_each(std::execution::par, idx.begin(), idx.end(),
                [&](std::size_t i) { objs[i] = resolver.load(files[i], nullptr, base::Follow::no); });
  std::vector<LoadedElf> out;
  for (std::size_t i = 0; i < files.size(); ++i)
    if (objs[i] != nullptr) out.push_back(LoadedElf{std::move(files[i]), objs[i]});
  return out;
}

}  // namespace

std::vector<LoadedElf> scan_elf_objects(LibraryResolver& resolver, const std::vector<std::string>& paths,
                                        std::uint64_t* items) {
  std::vector<std::string> files;
  for (const auto& top : paths) {
    auto walked = resolver.root().walk(top, [&](const base::WalkEntry& e) {
      if (e.error != 0) return base::WalkAction::next;
      if (e.type == DT_DIR && skipped_subtree(base::dirname(e.path), e.name)) return base::WalkAction::skip_subtree;
      if (e.type == DT_REG) files.emplace_back(e.path);
      return base::WalkAction::next;
    });
    (void)walked;  // an unreadable scan path has nothing we could check
  }
  if (items != nullptr) *items = files.size();
  return load_files(resolver, std::move(files));
}

std::vector<Finding> dependency_findings(const std::string& path, const std::vector<DependencyProblem>& problems,
                                         Severity missing_severity, const std::string& check) {
  std::vector<Finding> out;
  out.reserve(problems.size());
  for (const auto& p : problems) {
    out.push_back(make_finding(check,
                               p.kind == DependencyProblem::Kind::needed_missing ? missing_severity : Severity::block,
                               path, problem_message(p), problem_hint(p), problem_id(p)));
  }
  return out;
}

namespace {

// The needed-index (CheckContext::needed_index): one line per dynamic ELF object,
// "PATH<TAB>NAME NAME...", the names being its DT_NEEDED entries and its interpreter's file
// name, e.g. "/usr/bin/grep\tlibpcre2-8.so.0 libc.so.6 ld-linux-x86-64.so.2".
void write_needed_index(const std::string& file, const std::vector<LoadedElf>& objects) {
  std::string text;
  for (const auto& o : objects) {
    if (!o.elf->error.empty() || !o.elf->dynamic) continue;
    text += o.path;
    text += '\t';
    for (const auto& n : o.elf->needed) text += n + " ";
    if (o.elf->has_interp) text += std::string(base::basename(o.elf->interp));
    text += '\n';
  }
  (void)base::write_file_atomic(file, text, 0600);  // without it the post-checks scan everything
}

// The paths of the index that name one of `names`; nullopt when the index is unreadable.
std::optional<std::vector<std::string>> indexed_users(const std::string& file,
                                                      const std::unordered_set<std::string>& names) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) return std::nullopt;  // not an index this program wrote
    for (auto n : base::split_ws(std::string_view(line).substr(tab + 1))) {
      if (names.count(std::string(n)) != 0) {
        out.push_back(line.substr(0, tab));
        break;
      }
    }
  }
  return out;
}

// Loads the ELF objects among `files` (root paths) that lie in the scan paths, each under its
// canonical path (the one the scan would give), once.
std::vector<LoadedElf> load_listed(LibraryResolver& resolver, const std::vector<std::string>& scan_paths,
                                   const std::set<std::string>& files) {
  std::set<std::string> canonical;
  for (const auto& f : files) {
    auto dir = resolver.root().realpath(std::string(base::dirname(f)));
    if (!dir) continue;
    std::string path = (*dir == "/" ? "" : *dir) + "/" + std::string(base::basename(f));
    bool scanned = std::any_of(scan_paths.begin(), scan_paths.end(), [&](const std::string& top) {
      return path.size() > top.size() && path.compare(0, top.size(), top) == 0 && path[top.size()] == '/';
    });
    if (scanned) canonical.insert(std::move(path));
  }
  return load_files(resolver, std::vector<std::string>(canonical.begin(), canonical.end()));
}

}  // namespace

base::Result<CheckOutput> LibrariesCheck::run(const CheckContext& ctx) const {
  const auto& configured = ctx.policy.check(std::string(id())).paths;
  auto paths = canonical_scan_paths(ctx.root, configured.empty() ? default_library_scan_paths() : configured);
  LibraryResolver resolver(ctx.root);
  CheckOutput out;
  for (const auto& e : resolver.setup_problems()) {
    out.findings.push_back(make_finding(
        "libraries", Severity::warn, e.path, "cannot use the dynamic linker configuration: " + e.to_string(),
        "run ldconfig in the root to rebuild /etc/ld.so.cache; fix the named file", "ld-config"));
  }
  if (ctx.progress) ctx.progress(id(), 0, 0);

  // A change-scoped run (after an upgrade) reports only objects that changed or that need a
  // changed library: by inode for what still exists, by file name for what is gone.
  const bool scoped = !ctx.scope.full;
  std::unordered_set<const ElfObject*> changed_objects;
  std::unordered_set<std::string> changed_names;
  if (scoped) {
    for (const auto& p : ctx.scope.paths) {
      changed_names.emplace(base::basename(p));
      if (const ElfObject* o = resolver.load(p)) {
        changed_objects.insert(o);
        if (!o->soname.empty()) changed_names.insert(o->soname);
      }
    }
  }
  // With the baseline's needed-index, a scoped run loads only the changed files and the
  // objects that named a changed library or interpreter before the change; opening every
  // file of the lib dirs (most of a full check's time) is left to full runs.
  std::vector<LoadedElf> objects;
  bool indexed = false;
  if (scoped && !ctx.needed_index.empty()) {
    if (auto users = indexed_users(ctx.needed_index, changed_names)) {
      std::set<std::string> files(ctx.scope.paths.begin(), ctx.scope.paths.end());
      files.insert(users->begin(), users->end());
      objects = load_listed(resolver, paths, files);
      indexed = true;
    }
  }
  if (!indexed) objects = scan_elf_objects(resolver, paths);
  if (!scoped && !ctx.needed_index.empty()) write_needed_index(ctx.needed_index, objects);
  out.items = objects.size();
  if (ctx.progress) ctx.progress(id(), 0, objects.size());
  auto touches_change = [&](const LoadedElf& o, const std::vector<LoadedElf>& resolved) {
    if (changed_objects.count(o.elf) != 0) return true;
    for (std::size_t k = 0; k < o.elf->needed.size(); ++k) {
      if (changed_names.count(o.elf->needed[k]) != 0) return true;
      if (k < resolved.size() && resolved[k].elf != nullptr && changed_objects.count(resolved[k].elf) != 0) return true;
    }
    return false;
  };
  std::vector<char> in_scope(objects.size(), scoped ? 0 : 1);
  if (scoped)
    for (std::size_t i = 0; i < objects.size(); ++i) in_scope[i] = changed_objects.count(objects[i].elf) != 0 ? 1 : 0;
  std::vector<std::vector<DependencyProblem>> problems(objects.size());
  std::vector<std::vector<LoadedElf>> deps(objects.size());
  std::mutex mu;
  std::unordered_set<RescueKey, RescueHash> rescued;
  std::vector<std::size_t> idx(objects.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::for_each(std::execution::par, idx.begin(), idx.end(), [&](std::size_t i) {
    const LoadedElf& o = objects[i];
    if (!o.elf->error.empty() || !o.elf->dynamic || !resolver.runs_here(o.elf->ident)) return;
    problems[i] = resolver.check_direct(o, {}, nullptr, &deps[i]);
    if (scoped) in_scope[i] = touches_change(o, deps[i]) ? 1 : 0;
  });
  // The libraries some program loads at start-up: the closure of the programs' dependencies.
  std::unordered_map<const ElfObject*, std::vector<const ElfObject*>> graph;
  std::vector<const ElfObject*> queue;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    auto& edges = graph[objects[i].elf];
    for (const auto& le : deps[i])
      if (le.elf != nullptr) edges.push_back(le.elf);
    if (objects[i].elf->has_interp) queue.push_back(objects[i].elf);
  }
  deps.clear();
  std::unordered_set<const ElfObject*> linked(queue.begin(), queue.end());
  while (!queue.empty()) {
    const ElfObject* o = queue.back();
    queue.pop_back();
    if (auto it = graph.find(o); it != graph.end())
      for (const ElfObject* d : it->second)
        if (linked.insert(d).second) queue.push_back(d);
  }
  // An object that configuration names (a PAM module, an NSS module, a preloaded library) is
  // loaded by role, not on a whim: judged like a linked library, never as an optional plugin.
  std::optional<std::set<std::string>> named;
  auto dlopen_only_plugin = [&](const LoadedElf& o) {
    if (!optional_plugin(o.path) || linked.count(o.elf) != 0) return false;
    if (!named) named = objects_named_by_configuration(ctx.root);
    return named->count(o.path) == 0;
  };
  // Only objects with a search path of their own can make a dependency work that fails alone.
  bool any_failed = std::any_of(problems.begin(), problems.end(), [](const auto& p) { return !p.empty(); });
  // A failure is judged with every object at hand (which program links a failing plugin,
  // which search path rescues a dependency): the indexed run hands over to a full scan.
  bool scope_failed = false;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    if (in_scope[i] != 0 && (!problems[i].empty() || !objects[i].elf->error.empty())) scope_failed = true;
  }
  // Symbol binding: each program's load scope defines what its objects need; plugins alone.
  SymbolCheckInput symbols_in;
  symbols_in.objects = &objects;
  symbols_in.linked = &linked;
  symbols_in.changed = scoped ? &changed_objects : nullptr;
  auto symbol_fs = symbol_findings(resolver, symbols_in);
  if (indexed && (scope_failed || !symbol_fs.empty())) {
    CheckContext scan_all = ctx;
    scan_all.needed_index.clear();
    return run(scan_all);
  }
  if (any_failed) {
    std::for_each(std::execution::par, idx.begin(), idx.end(), [&](std::size_t i) {
      const LoadedElf& o = objects[i];
      if (!o.elf->error.empty() || !o.elf->dynamic || !resolver.runs_here(o.elf->ident)) return;
      if (o.elf->has_rpath || o.elf->has_runpath) simulate_load(resolver, o, mu, rescued);
    });
  }

  if (ctx.progress) ctx.progress(id(), objects.size(), objects.size());
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const LoadedElf& o = objects[i];
    if (in_scope[i] == 0) continue;
    if (!o.elf->error.empty()) {
      out.findings.push_back(
          make_finding("libraries", Severity::warn, o.path, "is not a well-formed ELF object: " + o.elf->error,
                       "reinstall the package that ships it (dpkg -S " + o.path + ")", "malformed-elf"));
      continue;
    }
    std::vector<DependencyProblem> kept;
    for (auto& p : problems[i]) {
      if (p.kind != DependencyProblem::Kind::interp_missing && rescued.count(RescueKey(o.elf, p.name)) != 0) continue;
      kept.push_back(std::move(p));
    }
    if (kept.empty()) continue;
    for (auto& f : dependency_findings(o.path, kept, dlopen_only_plugin(o) ? Severity::warn : Severity::block))
      out.findings.push_back(std::move(f));
  }
  for (auto& f : symbol_fs) {
    // A plugin's lost symbol is lenient only while nothing names the plugin: a PAM module, an
    // NSS module or a preloaded library that fails at its first call fails a login or a program.
    if (f.severity != Severity::block && optional_plugin(f.path)) {
      if (!named) named = objects_named_by_configuration(ctx.root);
      if (named->count(f.path) != 0) {
        f.severity = Severity::block;
        f.message += " (configuration names it, so it is loaded like a linked library)";
      }
    }
    out.findings.push_back(std::move(f));
  }
  return out;
}

base::Result<std::vector<std::string>> find_dependents(const base::Root& root, const std::set<std::string>& changed,
                                                       const std::vector<std::string>& scan_paths) {
  LibraryResolver resolver(root);
  std::unordered_set<const ElfObject*> changed_files;
  std::set<std::string> sonames;
  for (const auto& c : changed) {
    if (c.find('/') == std::string::npos) {
      sonames.insert(c);
    } else if (const ElfObject* o = resolver.load(c)) {
      changed_files.insert(o);
    }
  }
  auto paths = canonical_scan_paths(root, scan_paths.empty() ? default_library_scan_paths() : scan_paths);
  auto objects = scan_elf_objects(resolver, paths);
  std::vector<char> hit(objects.size(), 0);
  std::vector<std::size_t> idx(objects.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::for_each(std::execution::par, idx.begin(), idx.end(), [&](std::size_t i) {
    const LoadedElf& o = objects[i];
    for (const auto& n : o.elf->needed) {
      if (sonames.count(n) != 0) {
        hit[i] = 1;
        return;
      }
      if (changed_files.empty() || !o.elf->error.empty()) continue;
      auto r = resolver.resolve(o, n, {}, nullptr);
      if (r && changed_files.count(r->elf) != 0) {
        hit[i] = 1;
        return;
      }
    }
  });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < objects.size(); ++i)
    if (hit[i] != 0) out.push_back(objects[i].path);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace guard::checks
