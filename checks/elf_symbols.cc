#include "checks/elf_symbols.h"

#include <algorithm>
#include <execution>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <unordered_map>

#include "base/strings.h"

namespace guard::checks {

bool defines(const ElfObject& lib, const SymbolRef& ref) {
  auto [first, last] = std::equal_range(
      lib.exports.begin(), lib.exports.end(), SymbolDef{ref.name_hash, 0, 0},
      [](const SymbolDef& a, const SymbolDef& b) { return a.name_hash < b.name_hash; });
  for (auto it = first; it != last; ++it) {
    if (ref.version_hash != 0) {
      // check_match: the version itself, or an unversioned definition unless the reference is hidden.
      if (it->version_hash == ref.version_hash) return true;
      if (it->version_hash == 0 && (ref.flags & SymbolRef::kHidden) == 0 && (it->flags & SymbolDef::kHidden) == 0)
        return true;
    } else {
      // No version asked: the unversioned or oldest definition, or the one default ("@@") version.
      if ((it->flags & SymbolDef::kOldest) != 0 || (it->flags & SymbolDef::kHidden) == 0) return true;
    }
  }
  return false;
}

std::string symbol_display(const ElfObject& who, const SymbolRef& ref) {
  std::string s(who.symbol_names.c_str() + ref.name);
  if (ref.need != 0) s += "@" + who.symbol_needs[ref.need - 1].second;
  return s;
}

namespace {

// The object of `scope` that a versioned need names (by soname, else by file name).
const ElfObject* named_in(std::span<const LoadedElf> scope, const std::string& file) {
  for (const auto& o : scope)
    if (o.elf->soname == file) return o.elf;
  for (const auto& o : scope)
    if (base::basename(o.path) == file) return o.elf;
  return nullptr;
}

const LoadedElf* named_entry(std::span<const LoadedElf> scope, const std::string& file) {
  for (const auto& o : scope)
    if (o.elf->soname == file || base::basename(o.path) == file) return &o;
  return nullptr;
}

}  // namespace

std::vector<std::uint32_t> unresolved_symbols(const ElfObject& who, std::span<const LoadedElf> scope,
                                              const std::vector<std::uint32_t>* refs) {
  std::vector<std::uint32_t> out;
  if (who.imports.empty()) return out;
  std::vector<const ElfObject*> named(who.symbol_needs.size(), nullptr);
  for (std::size_t k = 0; k < named.size(); ++k) named[k] = named_in(scope, who.symbol_needs[k].first);
  auto found = [&](const SymbolRef& r) {
    if (r.need != 0 && named[r.need - 1] != nullptr && defines(*named[r.need - 1], r)) return true;
    return std::any_of(scope.begin(), scope.end(), [&](const LoadedElf& o) { return defines(*o.elf, r); });
  };
  auto consider = [&](std::uint32_t i) {
    if (!found(who.imports[i])) out.push_back(i);
  };
  if (refs != nullptr) {
    for (auto i : *refs) consider(i);
  } else {
    for (std::uint32_t i = 0; i < who.imports.size(); ++i) consider(i);
  }
  return out;
}

namespace {

// glibc's own sonames: a plugin that links nothing else and still has undefined symbols calls
// into its host by design (libthread_db.so.1's ps_* proc_service callbacks, which the debugger
// defines; qemu's modules, which the emulator defines).
bool links_only_libc(const ElfObject& o) {
  return std::all_of(o.needed.begin(), o.needed.end(), [](const std::string& n) {
    for (std::string_view p : {"libc.so.", "libm.so.", "libpthread.so.", "libdl.so.", "librt.so.", "ld-linux"})
      if (n.rfind(p, 0) == 0) return true;
    return false;
  });
}

bool in_bin_dir(std::string_view path) {
  std::string_view d = base::dirname(path);
  return d == "/usr/bin" || d == "/usr/sbin" || d == "/bin" || d == "/sbin" || d == "/usr/local/bin" ||
         d == "/usr/local/sbin";
}

// What ld.so maps for one object: it, its dependency tree (breadth-first) and the dynamic linker.
struct Scope {
  std::vector<LoadedElf> objects;
  bool broken = false;  // a library or version is missing, or an object is malformed: other findings say so
  bool changed = false;
};

// One reference that a scope leaves unresolved, gathered over every scope.
struct Miss {
  std::string object_path;
  std::string program;     // the first program whose scope lacks it; empty for a plugin
  std::size_t programs = 0;
  std::string provider;    // the library the versioned reference names, as found in the scope
  std::size_t scope_size = 0;
  Severity severity = Severity::warn;
  bool immediate = false;
};

class Binder {
 public:
  Binder(LibraryResolver& resolver, const SymbolCheckInput& in) : resolver_(resolver), in_(in) {
    for (const auto& o : *in.objects) {
      paths_.emplace(o.elf, o.path);
      if (!usable(o) || !o.elf->has_interp) continue;
      auto key = arch_key(o.elf->ident);
      if (interps_.count(key) != 0) continue;
      if (const ElfObject* i = resolver_.load(o.elf->interp); i != nullptr && i->error.empty())
        interps_.emplace(key, LoadedElf{o.elf->interp, i});
    }
  }

  [[nodiscard]] bool usable(const LoadedElf& o) const {
    return o.elf->error.empty() && o.elf->dynamic && resolver_.runs_here(o.elf->ident);
  }

  Scope scope_of(const LoadedElf& top) {
    Scope s;
    resolver_.load_tree(top, [&](const TreeObject& t) {
      s.objects.push_back(t.object);
      if (!t.problems.empty() || !t.object.elf->error.empty()) s.broken = true;
    });
    const ElfObject* interp = nullptr;
    std::string interp_path;
    if (top.elf->has_interp) {
      interp = resolver_.load(top.elf->interp);
      interp_path = top.elf->interp;
    } else if (auto it = interps_.find(arch_key(top.elf->ident)); it != interps_.end()) {
      interp = it->second.elf;
      interp_path = it->second.path;
    }
    if (interp != nullptr && interp->error.empty() &&
        std::none_of(s.objects.begin(), s.objects.end(), [&](const LoadedElf& o) { return o.elf == interp; }))
      s.objects.push_back(LoadedElf{interp_path, interp});
    if (in_.changed != nullptr)
      s.changed = std::any_of(s.objects.begin(), s.objects.end(),
                              [&](const LoadedElf& o) { return in_.changed->count(o.elf) != 0; });
    return s;
  }

  struct Leftovers {
    std::vector<std::uint32_t> refs;  // not defined by the object's own tree
    bool broken = false;
    bool changed = false;
    std::size_t scope_size = 0;
  };

  // The references of `o` its own dependency tree leaves unresolved, computed once per object.
  const Leftovers& leftovers(const LoadedElf& o) {
    {
      std::lock_guard lock(mu_);
      if (auto it = own_.find(o.elf); it != own_.end()) return it->second;
    }
    Leftovers l;
    if (!o.elf->imports.empty()) {
      Scope s = scope_of(o);
      l.refs = unresolved_symbols(*o.elf, s.objects);
      l.broken = s.broken;
      l.changed = s.changed;
      l.scope_size = s.objects.size();
    }
    std::lock_guard lock(mu_);
    return own_.emplace(o.elf, std::move(l)).first->second;
  }

  // Checks the objects of one program's scope against it.
  void check_program(const LoadedElf& prog) {
    Scope s = scope_of(prog);
    if (s.broken || (in_.changed != nullptr && !s.changed)) return;
    bool bin = in_bin_dir(prog.path);
    for (const auto& q : s.objects) {
      if (q.elf->imports.empty()) continue;
      std::vector<std::uint32_t> miss;
      if (q.elf == prog.elf) {
        miss = unresolved_symbols(*q.elf, s.objects);
      } else {
        const Leftovers& l = leftovers(q);
        if (l.refs.empty()) continue;
        miss = unresolved_symbols(*q.elf, s.objects, &l.refs);
      }
      for (auto idx : miss) {
        const SymbolRef& r = q.elf->imports[idx];
        bool immediate = q.elf->bind_now || (r.flags & SymbolRef::kData) != 0;
        record(q, idx, prog.path, s, bin || immediate ? Severity::block : Severity::warn, immediate);
      }
    }
  }

  // A library no program links: its own tree, then any scanned object as a possible host.
  void check_plugin(const LoadedElf& o) {
    const Leftovers& l = leftovers(o);
    if (l.refs.empty() || l.broken || (in_.changed != nullptr && !l.changed)) return;
    std::lock_guard lock(mu_);
    for (auto idx : l.refs) pending_.emplace_back(o, idx, l.scope_size);
  }

  // Drops the plugins' references some scanned object defines (the host may be that object).
  void resolve_pending_against_hosts() {
    std::vector<char> hosted(pending_.size(), 0);
    std::unordered_map<std::uint64_t, std::vector<std::size_t>> by_name;
    for (std::size_t k = 0; k < pending_.size(); ++k) {
      const auto& [o, idx, size] = pending_[k];
      by_name[o.elf->imports[idx].name_hash].push_back(k);
    }
    auto try_host = [&](const LoadedElf& cand, const std::vector<std::size_t>& ks) {
      for (auto k : ks) {
        const auto& [o, idx, size] = pending_[k];
        if (hosted[k] == 0 && same_arch(o, cand) && defines(*cand.elf, o.elf->imports[idx])) hosted[k] = 1;
      }
    };
    // Few names (the usual case): a binary search per object; many: one pass over all exports.
    const bool few = by_name.size() < 64;
    for (const auto& cand : *in_.objects) {
      if (by_name.empty() || !usable(cand) || cand.elf->exports.empty()) continue;
      if (few) {
        for (const auto& [name, ks] : by_name) try_host(cand, ks);
        continue;
      }
      for (const auto& d : cand.elf->exports)
        if (auto it = by_name.find(d.name_hash); it != by_name.end()) try_host(cand, it->second);
    }
    for (std::size_t k = 0; k < pending_.size(); ++k) {
      if (hosted[k] != 0) continue;
      const auto& [o, idx, size] = pending_[k];
      Miss& m = misses_[Key(o.elf, idx)];
      m.object_path = display_path(o);
      m.scope_size = size;
      m.severity = links_only_libc(*o.elf) ? Severity::info : Severity::warn;
    }
  }

  std::vector<Finding> findings() const {
    std::map<std::string, std::vector<std::pair<Key, const Miss*>>> by_object;
    for (const auto& [k, m] : misses_) by_object[m.object_path].emplace_back(k, &m);
    std::vector<Finding> out;
    for (auto& [path, list] : by_object) {
      std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
        if (a.second->severity != b.second->severity) return a.second->severity == Severity::block;
        return a.first.second < b.first.second;
      });
      std::size_t shown = std::min(list.size(), in_.max_per_object);
      for (std::size_t i = 0; i < shown; ++i) {
        const auto& [key, m] = list[i];
        Finding f = finding(*key.first, key.first->imports[key.second], *m);
        if (i + 1 == shown && list.size() > shown)
          f.message += fmt::format(" (and {} more undefined symbols of this object not listed)", list.size() - shown);
        out.push_back(std::move(f));
      }
    }
    return out;
  }

 private:
  using Key = std::pair<const ElfObject*, std::uint32_t>;
  static std::uint32_t arch_key(const ElfIdent& id) { return (static_cast<std::uint32_t>(id.elf_class) << 16) | id.machine; }
  static bool same_arch(const LoadedElf& a, const LoadedElf& b) {
    return arch_key(a.elf->ident) == arch_key(b.elf->ident);
  }

  std::string display_path(const LoadedElf& o) const {
    auto it = paths_.find(o.elf);
    return it != paths_.end() ? it->second : o.path;
  }

  void record(const LoadedElf& q, std::uint32_t idx, const std::string& program, const Scope& s, Severity sev,
              bool immediate) {
    const SymbolRef& r = q.elf->imports[idx];
    std::string provider;
    if (r.need != 0)
      if (const LoadedElf* p = named_entry(s.objects, q.elf->symbol_needs[r.need - 1].first)) provider = display_path(*p);
    std::lock_guard lock(mu_);
    Miss& m = misses_[Key(q.elf, idx)];
    if (m.programs == 0 || (sev == Severity::block && m.severity != Severity::block) ||
        (sev == m.severity && program < m.program)) {
      m.object_path = display_path(q);
      m.program = program;
      m.provider = provider;
      m.scope_size = s.objects.size();
      m.severity = sev;
      m.immediate = immediate;
    }
    ++m.programs;
  }

  static Finding finding(const ElfObject& who, const SymbolRef& r, const Miss& m) {
    std::string name(who.symbol_names.c_str() + r.name);
    std::string id = r.need != 0 ? fmt::format("symbol:{}:{}", who.symbol_needs[r.need - 1].first, name)
                                 : fmt::format("symbol:{}", name);
    std::string sym = symbol_display(who, r);
    std::string msg;
    if (m.programs == 0) {
      msg = fmt::format("undefined symbol {} (needed by {}, a library no program links, e.g. a plugin): not defined "
                        "by the {} objects it loads nor by any scanned object that could host it; loading it fails{}",
                        sym, m.object_path, m.scope_size,
                        m.severity == Severity::info ? " unless its host defines it (it links only the C library: "
                                                       "a callback interface)"
                                                     : "");
    } else {
      std::string by = m.program == m.object_path ? m.object_path : fmt::format("{}, loaded by {}", m.object_path, m.program);
      if (m.programs > 1) by += fmt::format(" and {} other programs", m.programs - 1);
      std::string where = !m.provider.empty() ? m.provider
                                              : fmt::format("any of the {} objects loaded with it", m.scope_size);
      msg = fmt::format("undefined symbol {} (needed by {}): not defined by {}; {}", sym, by, where,
                        m.immediate ? "the program fails to start (symbol lookup error)"
                                    : "the program fails at the first call to it (symbol lookup error)");
    }
    std::string hint =
        !m.provider.empty()
            ? fmt::format("reinstall or upgrade the package that ships {} (dpkg -S {}) to the version the package of "
                          "{} was built against (apt-get install --reinstall)",
                          m.provider, m.provider, m.object_path)
            : fmt::format("find the package that should define {} and reinstall it; dpkg -S {} names the package "
                          "that needs it", name, m.object_path);
    return make_finding("libraries", m.severity, m.object_path, std::move(msg), std::move(hint), std::move(id));
  }

  struct KeyHash {
    std::size_t operator()(const Key& k) const { return std::hash<const void*>()(k.first) ^ static_cast<std::size_t>(k.second * 0x9e3779b9u); }
  };

  LibraryResolver& resolver_;
  const SymbolCheckInput& in_;
  std::unordered_map<const ElfObject*, std::string> paths_;
  std::unordered_map<std::uint32_t, LoadedElf> interps_;
  std::mutex mu_;
  std::unordered_map<const ElfObject*, Leftovers> own_;
  std::vector<std::tuple<LoadedElf, std::uint32_t, std::size_t>> pending_;
  std::unordered_map<Key, Miss, KeyHash> misses_;
};

}  // namespace

std::vector<Finding> symbol_findings(LibraryResolver& resolver, const SymbolCheckInput& in) {
  Binder b(resolver, in);
  std::vector<const LoadedElf*> programs, plugins;
  std::unordered_set<const ElfObject*> seen;
  for (const auto& o : *in.objects) {
    if (!b.usable(o) || !seen.insert(o.elf).second) continue;
    if (o.elf->has_interp) {
      programs.push_back(&o);
    } else if (in.linked == nullptr || in.linked->count(o.elf) == 0) {
      plugins.push_back(&o);
    }
  }
  std::for_each(std::execution::par, programs.begin(), programs.end(), [&](const LoadedElf* p) { b.check_program(*p); });
  std::for_each(std::execution::par, plugins.begin(), plugins.end(), [&](const LoadedElf* p) { b.check_plugin(*p); });
  b.resolve_pending_against_hosts();
  return b.findings();
}

}  // namespace guard::checks
