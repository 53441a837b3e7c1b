#include "checks/elf_resolver.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "base/dir.h"
#include "base/input_limits.h"
#include "base/strings.h"
#include "checks/ld_so_conf.h"

namespace guard::checks {
namespace {

// Debian multiarch tuples by ELF class and machine.
std::string tuple_of(const ElfIdent& id, bool arm_hf) {
  bool is64 = id.elf_class == ELFCLASS64;
  switch (id.machine) {
    case EM_X86_64: return is64 ? "x86_64-linux-gnu" : "x86_64-linux-gnux32";
    case EM_386: return "i386-linux-gnu";
    case EM_AARCH64: return is64 ? "aarch64-linux-gnu" : "";
    case EM_ARM: return arm_hf ? "arm-linux-gnueabihf" : "arm-linux-gnueabi";
    case EM_PPC64: return "powerpc64le-linux-gnu";
    case EM_S390: return is64 ? "s390x-linux-gnu" : "";
    case EM_RISCV: return is64 ? "riscv64-linux-gnu" : "";
    default: return "";
  }
}

// $PLATFORM as ld.so expands it (the kernel's AT_PLATFORM for that machine).
std::string_view platform_of(const ElfIdent& id) {
  switch (id.machine) {
    case EM_X86_64: return "x86_64";  // x32 too
    case EM_386: return "i686";
    case EM_AARCH64: return "aarch64";
    case EM_ARM: return "v7l";
    case EM_PPC64: return "power8";
    case EM_S390: return "z900";
    default: return "";
  }
}

// glibc-hwcaps subdirectories ld.so may search, best first. Which of them a CPU supports is
// decided at run time on the machine; a checked root may boot elsewhere, so all count.
std::span<const std::string_view> hwcaps_of(const ElfIdent& id) {
  static constexpr std::string_view x86[] = {"x86-64-v4", "x86-64-v3", "x86-64-v2"};
  static constexpr std::string_view ppc[] = {"power10", "power9"};
  static constexpr std::string_view s390[] = {"z16", "z15", "z14", "z13"};
  if (id.machine == EM_X86_64 && id.elf_class == ELFCLASS64) return x86;
  if (id.machine == EM_PPC64) return ppc;
  if (id.machine == EM_S390 && id.elf_class == ELFCLASS64) return s390;
  return {};
}

bool same_arch(const ElfIdent& a, const ElfIdent& b) { return a.elf_class == b.elf_class && a.machine == b.machine; }

std::string_view version_family(std::string_view v) {
  std::size_t i = v.find_first_of("0123456789");
  return i == std::string_view::npos ? v : v.substr(0, i);
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
}

}  // namespace

LibraryResolver::LibraryResolver(const base::Root& root)
    : root_(root), objects_(new ObjectShard[kShards]), listings_(new ListingShard[kShards]) {
  auto bytes = root_.read_file("/etc/ld.so.cache", base::limits::kLdSoCacheBytes);
  if (bytes) {
    auto entries = parse_ld_so_cache(*bytes);
    if (entries) {
      cache_entries_ = std::move(*entries);
    } else {
      problems_.push_back(entries.error());
    }
  } else if (bytes.error().err != ENOENT) {
    problems_.push_back(bytes.error());
  }
  for (const auto& e : cache_entries_) cache_[e.soname].push_back(&e);
  auto conf = load_ld_so_conf(root_);
  conf_dirs_ = std::move(conf.dirs);
  for (auto& p : conf.problems) problems_.push_back(std::move(p));

  static constexpr std::string_view tuples[] = {
      "x86_64-linux-gnu",   "i386-linux-gnu",        "x86_64-linux-gnux32", "aarch64-linux-gnu", "arm-linux-gnueabihf",
      "arm-linux-gnueabi", "powerpc64le-linux-gnu", "s390x-linux-gnu",     "riscv64-linux-gnu"};
  for (auto t : tuples) {
    for (std::string_view lib : {"/usr/lib/", "/lib/"}) {
      auto ok = root_.exists(std::string(lib) + std::string(t));
      if (ok && *ok) {
        multiarch_dirs_.emplace_back(t);
        break;
      }
    }
  }
  // The root's own architecture: that of its programs, else this machine's.
  native_ = ElfIdent{ELFCLASS64, EM_X86_64, ET_DYN};
#if defined(__i386__)
  native_ = ElfIdent{ELFCLASS32, EM_386, ET_DYN};
#elif defined(__aarch64__)
  native_ = ElfIdent{ELFCLASS64, EM_AARCH64, ET_DYN};
#endif
  for (std::string_view probe : {"/usr/bin/dpkg", "/bin/sh", "/usr/bin/env", "/sbin/ldconfig"}) {
    if (const ElfObject* o = load(probe); o != nullptr && o->error.empty()) {
      native_ = o->ident;
      break;
    }
  }
}

LibraryResolver::~LibraryResolver() = default;

std::string LibraryResolver::tuple_for(const ElfIdent& ident) const {
  bool hf = std::find(multiarch_dirs_.begin(), multiarch_dirs_.end(), "arm-linux-gnueabihf") != multiarch_dirs_.end();
  return tuple_of(ident, hf);
}

bool LibraryResolver::runs_here(const ElfIdent& ident) const {
  if (same_arch(ident, native_)) return true;
  std::string t = tuple_for(ident);
  return !t.empty() && std::find(multiarch_dirs_.begin(), multiarch_dirs_.end(), t) != multiarch_dirs_.end();
}

const ElfObject* LibraryResolver::load(std::string_view path, int* err, base::Follow follow) {
  std::string key(path);
  if (follow == base::Follow::no) key.insert(0, 1, '\0');  // a separate slot: same path, other meaning
  ObjectShard& ps = objects_[std::hash<std::string>()(key) % kShards];
  {
    std::lock_guard lock(ps.mu);
    if (auto it = ps.by_path.find(key); it != ps.by_path.end()) {
      if (err != nullptr) *err = it->second.second;
      return it->second.first;
    }
  }
  auto remember = [&](const ElfObject* obj, int e) {
    std::lock_guard lock(ps.mu);
    ps.by_path.emplace(std::move(key), std::make_pair(obj, e));
    if (err != nullptr) *err = e;
    return obj;
  };
  auto fd = root_.open(path, O_RDONLY | O_NONBLOCK, 0, follow);
  if (!fd) return remember(nullptr, fd.error().err);
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return remember(nullptr, errno);
  if (!S_ISREG(st.st_mode)) return remember(nullptr, S_ISDIR(st.st_mode) ? EISDIR : ENOEXEC);
  char head[64];
  ssize_t n = ::pread(fd->get(), head, sizeof(head), 0);
  ElfIdent ident;
  if (n < 0) return remember(nullptr, errno);
  if (!peek_elf_ident(std::string_view(head, static_cast<std::size_t>(n)), &ident)) return remember(nullptr, ENOEXEC);
  if (ident.type != ET_DYN && ident.type != ET_EXEC) return remember(nullptr, ENOEXEC);

  auto inode = std::make_pair(static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino));
  ObjectShard& is = objects_[InodeHash()(inode) % kShards];
  const ElfObject* known = nullptr;
  {
    std::lock_guard lock(is.mu);
    if (auto it = is.by_inode.find(inode); it != is.by_inode.end()) known = it->second.get();
  }
  if (known != nullptr) return remember(known, 0);
  auto obj = std::make_unique<ElfObject>(read_elf(fd->get()));
  if (obj->ident.elf_class == 0) obj->ident = ident;  // malformed before the header was read
  const ElfObject* result;
  {
    std::lock_guard lock(is.mu);
    auto [it, inserted] = is.by_inode.emplace(inode, std::move(obj));
    result = it->second.get();
  }
  return remember(result, 0);
}

const LibraryResolver::DirListing& LibraryResolver::listing(const std::string& dir) {
  ListingShard& s = listings_[std::hash<std::string>()(dir) % kShards];
  {
    std::lock_guard lock(s.mu);
    if (auto it = s.dirs.find(dir); it != s.dirs.end()) return *it->second;
  }
  auto l = std::make_unique<DirListing>();
  // An unreadable directory is searched like an empty one, as ld.so does.
  if (auto names = base::list_dir(root_, dir)) l->names.insert(names->begin(), names->end());
  std::lock_guard lock(s.mu);
  auto [it, inserted] = s.dirs.emplace(dir, std::move(l));
  return *it->second;
}

std::optional<LoadedElf> LibraryResolver::try_path(const std::string& path, const ElfIdent& want) {
  const ElfObject* o = load(path);
  // ld.so opens the candidate and skips it when it is not a loadable object of the same class
  // and machine (e.g. a 32-bit libz in a directory searched by a 64-bit program).
  if (o == nullptr || o->ident.type != ET_DYN || !same_arch(o->ident, want)) return std::nullopt;
  return LoadedElf{path, o};
}

std::optional<LoadedElf> LibraryResolver::try_dir(const std::string& dir, std::string_view name, const ElfIdent& want) {
  const DirListing& l = listing(dir);
  if (l.names.empty()) return std::nullopt;
  if (l.names.count("glibc-hwcaps") != 0) {
    for (auto sub : hwcaps_of(want)) {
      std::string d = dir + "/glibc-hwcaps/" + std::string(sub);
      if (listing(d).names.count(std::string(name)) != 0) {
        if (auto r = try_path(d + "/" + std::string(name), want)) return r;
      }
    }
  }
  if (l.names.count(std::string(name)) == 0) return std::nullopt;
  return try_path(base::join_path(dir, name), want);
}

std::vector<std::string> LibraryResolver::expand_search_path(std::string_view list, std::string_view path,
                                                             const ElfIdent& ident) const {
  std::vector<std::string> out;
  std::string origin(base::dirname(path));
  std::string t = tuple_for(ident);
  std::string lib = !t.empty() ? "lib/" + t : (ident.elf_class == ELFCLASS64 ? "lib64" : "lib");
  std::string platform(platform_of(ident));
  for (auto part : base::split(list, ':')) {
    if (part.empty()) continue;  // "" means ld.so's working directory: nothing to check statically
    std::string d(part);
    if (d.find('$') != std::string::npos) {
      replace_all(d, "${ORIGIN}", origin);
      replace_all(d, "$ORIGIN", origin);
      replace_all(d, "${LIB}", lib);
      replace_all(d, "$LIB", lib);
      replace_all(d, "${PLATFORM}", platform);
      replace_all(d, "$PLATFORM", platform);
    }
    if (d.empty() || d.front() != '/') continue;  // relative to the working directory
    out.push_back(base::normalize_path(d));
  }
  return out;
}

std::optional<LoadedElf> LibraryResolver::resolve(const LoadedElf& who, std::string_view name,
                                                  std::span<const LoadedElf> loaders,
                                                  const std::unordered_map<std::string, LoadedElf>* loaded) {
  const ElfIdent want = who.elf->ident;
  if (name.find('/') != std::string_view::npos) {
    // A path in DT_NEEDED, e.g. "$ORIGIN/../lib/libpython3.12.so.1.0": dynamic string tokens
    // are expanded as in search paths; a relative one is relative to ld.so's working directory,
    // which we cannot know, so it is taken relative to the object.
    std::string n(name);
    if (n.find('$') != std::string::npos) {
      auto expanded = expand_search_path(n, who.path, want);
      if (expanded.empty()) return std::nullopt;
      n = expanded.front();
    }
    std::string p = n.front() == '/' ? base::normalize_path(n) : base::normalize_path(base::join_path(base::dirname(who.path), n));
    return try_path(p, want);
  }
  if (loaded != nullptr) {
    if (auto it = loaded->find(std::string(name)); it != loaded->end()) return it->second;
  }
  const ElfObject& w = *who.elf;
  bool inherits = false;
  for (const auto& l : loaders) inherits = inherits || (l.elf->has_rpath && !l.elf->has_runpath);
  bool plain = !w.has_rpath && !w.has_runpath && !inherits;

  // Plain lookups (no search path of its own) depend only on the name and the architecture.
  std::string memo_key;
  ObjectShard* ms = nullptr;
  if (plain) {
    memo_key.reserve(name.size() + 4);
    memo_key.append(name);
    memo_key.push_back('\0');
    memo_key.push_back(static_cast<char>(want.elf_class));
    memo_key.append(reinterpret_cast<const char*>(&want.machine), sizeof(want.machine));
    ms = &objects_[std::hash<std::string>()(memo_key) % kShards];
    std::lock_guard lock(ms->mu);
    if (auto it = ms->memo.find(memo_key); it != ms->memo.end()) return it->second;
  }

  auto search = [&]() -> std::optional<LoadedElf> {
    if (!w.has_runpath) {
      if (w.has_rpath) {
        for (const auto& d : expand_search_path(w.rpath, who.path, want))
          if (auto r = try_dir(d, name, want)) return r;
      }
      for (const auto& l : loaders) {
        if (!l.elf->has_rpath || l.elf->has_runpath) continue;
        for (const auto& d : expand_search_path(l.elf->rpath, l.path, want))
          if (auto r = try_dir(d, name, want)) return r;
      }
    } else {
      for (const auto& d : expand_search_path(w.runpath, who.path, want))
        if (auto r = try_dir(d, name, want)) return r;
    }
    if (auto it = cache_.find(std::string(name)); it != cache_.end()) {
      std::int32_t flags = expected_cache_flags(want.elf_class, want.machine);
      auto fits = [&](const LdCacheEntry* e) {
        return flags != -1 ? e->flags == flags : (e->flags & kCacheFlagTypeMask) == kCacheFlagElfLibc6;
      };
      // ld.so prefers an entry in a glibc-hwcaps subdirectory the CPU supports over the plain one.
      for (bool hw : {true, false}) {
        for (const LdCacheEntry* e : it->second) {
          if (e->hwcaps.empty() == hw || !fits(e)) continue;
          if (auto r = try_path(e->path, want)) return r;
        }
      }
    }
    // ld.so itself only knows the ld.so.conf directories through the cache; they stand in for a
    // cache that is stale or missing, which dpkg's ldconfig trigger rebuilds at the end of a run.
    for (const auto& d : conf_dirs_)
      if (auto r = try_dir(d, name, want)) return r;
    std::string t = tuple_for(want);
    std::vector<std::string> defaults;
    if (!t.empty()) {
      defaults.push_back("/lib/" + t);
      defaults.push_back("/usr/lib/" + t);
    }
    defaults.emplace_back("/lib");
    defaults.emplace_back("/usr/lib");
    if (want.elf_class == ELFCLASS64) {
      defaults.emplace_back("/lib64");
      defaults.emplace_back("/usr/lib64");
    } else if (native_.elf_class == ELFCLASS64) {
      defaults.emplace_back("/lib32");
      defaults.emplace_back("/usr/lib32");
    }
    for (const auto& d : defaults)
      if (auto r = try_dir(d, name, want)) return r;
    return std::nullopt;
  };
  auto result = search();
  if (ms != nullptr) {
    std::lock_guard lock(ms->mu);
    ms->memo.emplace(std::move(memo_key), result);
  }
  return result;
}

std::vector<DependencyProblem> LibraryResolver::missing_versions(const ElfObject& who, std::string_view lib_name,
                                                                 const LoadedElf& lib) {
  std::vector<DependencyProblem> out;
  // A library without version definitions satisfies any need (ld.so only notes it verbosely).
  if (lib.elf->verdef.empty()) return out;
  for (const auto& vn : who.verneed) {
    if (vn.file != lib_name) continue;
    for (const auto& v : vn.versions) {
      if (std::binary_search(lib.elf->verdef.begin(), lib.elf->verdef.end(), v)) continue;
      DependencyProblem p{DependencyProblem::Kind::version_missing, std::string(lib_name), v, lib.path, {}};
      std::string_view family = version_family(v);
      for (const auto& d : lib.elf->verdef) {
        if (version_family(d) != family || d.size() <= family.size()) continue;
        if (p.defined.empty() || ::strverscmp(d.c_str(), p.defined.c_str()) > 0) p.defined = d;
      }
      out.push_back(std::move(p));
    }
  }
  return out;
}

void LibraryResolver::check_interp(const ElfObject& w, std::vector<DependencyProblem>& out) {
  if (w.has_interp && !w.interp.empty() && load(w.interp) == nullptr)
    out.push_back(DependencyProblem{DependencyProblem::Kind::interp_missing, w.interp, {}, {}, {}});
}

std::optional<LoadedElf> LibraryResolver::check_need(const LoadedElf& who, const std::string& name,
                                                     std::span<const LoadedElf> loaders,
                                                     const std::unordered_map<std::string, LoadedElf>* loaded,
                                                     std::vector<DependencyProblem>& out) {
  auto r = resolve(who, name, loaders, loaded);
  if (!r) {
    out.push_back(DependencyProblem{DependencyProblem::Kind::needed_missing, name, {}, {}, {}});
    return std::nullopt;
  }
  for (auto& p : missing_versions(*who.elf, name, *r)) out.push_back(std::move(p));
  return r;
}

std::vector<DependencyProblem> LibraryResolver::check_direct(const LoadedElf& who, std::span<const LoadedElf> loaders,
                                                             const std::unordered_map<std::string, LoadedElf>* loaded,
                                                             std::vector<LoadedElf>* resolved) {
  std::vector<DependencyProblem> out;
  check_interp(*who.elf, out);
  for (const auto& n : who.elf->needed) {
    auto r = check_need(who, n, loaders, loaded, out);
    if (resolved != nullptr) resolved->push_back(r ? std::move(*r) : LoadedElf{});
  }
  return out;
}

void LibraryResolver::load_tree(const LoadedElf& top, const std::function<void(const TreeObject&)>& visit) {
  constexpr std::size_t kMaxObjects = 4096;
  struct Node {
    LoadedElf le;
    int parent;  // index into nodes; -1 for the top
  };
  std::vector<Node> nodes{{top, -1}};
  std::unordered_map<std::string, LoadedElf> loaded;  // need names and sonames mapped so far
  std::unordered_set<const ElfObject*> seen{top.elf};
  for (std::size_t k = 0; k < nodes.size() && nodes.size() < kMaxObjects; ++k) {
    std::vector<LoadedElf> chain;  // the loaders of this object, nearest first
    for (int p = nodes[k].parent; p >= 0; p = nodes[static_cast<std::size_t>(p)].parent)
      chain.push_back(nodes[static_cast<std::size_t>(p)].le);
    const LoadedElf who = nodes[k].le;  // a copy: nodes grows below
    std::vector<DependencyProblem> problems;
    std::vector<LoadedElf> resolved;
    if (who.elf->error.empty()) {
      check_interp(*who.elf, problems);
      for (const auto& n : who.elf->needed) {
        auto r = check_need(who, n, chain, &loaded, problems);
        if (r) {
          // Known at once: a later need of the same object finds it loaded, as in ld.so.
          loaded.emplace(n, *r);
          if (!r->elf->soname.empty()) loaded.emplace(r->elf->soname, *r);
          if (seen.insert(r->elf).second) nodes.push_back(Node{*r, static_cast<int>(k)});
        }
        resolved.push_back(r ? std::move(*r) : LoadedElf{});
      }
    }
    visit(TreeObject{who, k == 0, problems, resolved});
  }
}

}  // namespace guard::checks
