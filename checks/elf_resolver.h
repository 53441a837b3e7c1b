// Library resolution the way ld.so does it, over a root, with every parsed file and directory
// listing cached so a whole-system scan parses each file once. Shared by the libraries and
// critical checks; safe to use from several threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "checks/elf_object.h"
#include "checks/ld_so_cache.h"

namespace guard::checks {

// An ELF object at the path it was found at, e.g. {"/usr/lib/x86_64-linux-gnu/libz.so.1", ...}.
struct LoadedElf {
  std::string path;
  const ElfObject* elf = nullptr;
};

// What is wrong with one object's direct dependencies.
struct DependencyProblem {
  enum class Kind { interp_missing, needed_missing, version_missing };
  Kind kind = Kind::needed_missing;
  std::string name;      // the interpreter path or the soname, e.g. "libc.so.6"
  std::string version;   // for version_missing, e.g. "GLIBC_2.38"
  std::string lib_path;  // for version_missing, the library that was found
  std::string defined;   // for version_missing, the highest version of that family it defines, or ""
};

// One object of a dependency tree as LibraryResolver::load_tree meets it. e.g. {object=
// {"/usr/lib/x86_64-linux-gnu/libcurl.so.4", …}, top=false, problems={needed_missing "libnghttp2.so.14"}}.
struct TreeObject {
  const LoadedElf& object;
  bool top = false;                                // the object the tree is loaded for
  const std::vector<DependencyProblem>& problems;  // its direct ones (see check_direct); none when malformed
  const std::vector<LoadedElf>& resolved;          // per DT_NEEDED, in order; elf == nullptr: not found
};

class LibraryResolver {
 public:
  // Reads the root's ld.so.cache and ld.so.conf; problems with them end up in setup_problems().
  explicit LibraryResolver(const base::Root& root);
  LibraryResolver(const LibraryResolver&) = delete;
  LibraryResolver& operator=(const LibraryResolver&) = delete;
  ~LibraryResolver();

  // Unreadable or malformed /etc/ld.so.cache or ld.so.conf files (the rest is still used).
  [[nodiscard]] const std::vector<base::Error>& setup_problems() const { return problems_; }
  [[nodiscard]] const base::Root& root() const { return root_; }
  // The ELF class and machine of the root's own programs (from its dynamic linker or /bin/sh).
  [[nodiscard]] ElfIdent native() const { return native_; }
  // True when objects of this class/machine are meant to run in the root: the native one, or
  // one whose multiarch directory exists (e.g. i386 with /usr/lib/i386-linux-gnu).
  [[nodiscard]] bool runs_here(const ElfIdent& ident) const;

  // The parsed ELF at `path`, following links inside the root; nullptr when it is missing,
  // unreadable or not ELF (`err` gets the errno, ENOEXEC for "not ELF"). Parsed once per inode.
  [[nodiscard]] const ElfObject* load(std::string_view path, int* err = nullptr,
                                      base::Follow follow = base::Follow::yes);

  // Resolves `name` (a DT_NEEDED entry of `who`) like ld.so: already-loaded sonames in
  // `loaded` (may be null), DT_RPATH of `who` and of its `loaders` (nearest first) when `who`
  // has no DT_RUNPATH, DT_RUNPATH, ld.so.cache, ld.so.conf dirs, default dirs; each candidate
  // must be an ELF object of `who`'s class and machine.
  [[nodiscard]] std::optional<LoadedElf> resolve(const LoadedElf& who, std::string_view name,
                                                 std::span<const LoadedElf> loaders,
                                                 const std::unordered_map<std::string, LoadedElf>* loaded = nullptr);

  // The versions `who` needs from `lib_name` that `lib` does not define.
  [[nodiscard]] static std::vector<DependencyProblem> missing_versions(const ElfObject& who, std::string_view lib_name,
                                                                      const LoadedElf& lib);

  // Checks the interpreter and the direct DT_NEEDED (with versions) of `who`; `resolved`
  // receives what each need resolved to (same order as who.elf->needed; empty path = not found).
  [[nodiscard]] std::vector<DependencyProblem> check_direct(const LoadedElf& who, std::span<const LoadedElf> loaders,
                                                            const std::unordered_map<std::string, LoadedElf>* loaded,
                                                            std::vector<LoadedElf>* resolved);

  // Loads the dependency tree of `top` breadth-first the way ld.so maps it: each object's
  // DT_NEEDED in order, a name already loaded (as a need or a soname) reused, DT_RPATH inherited
  // down the loader chain. Calls `visit` once per object, `top` first, e.g. for /usr/bin/dpkg:
  // dpkg, libmd.so.0, libc.so.6… An object that is not well-formed (ElfObject::error) is
  // visited with no problems and nothing is loaded for it. At most 4096 objects.
  void load_tree(const LoadedElf& top, const std::function<void(const TreeObject&)>& visit);

  // $ORIGIN/$LIB/$PLATFORM expansion of one search-path list (colon-separated), for `who` at
  // `path`, e.g. "$ORIGIN/../lib" at /opt/x/bin/tool -> {"/opt/x/lib"}.
  [[nodiscard]] std::vector<std::string> expand_search_path(std::string_view list, std::string_view path,
                                                            const ElfIdent& ident) const;

 private:
  struct DirListing {
    std::unordered_set<std::string> names;
  };
  const DirListing& listing(const std::string& dir);
  // Appends interp_missing when `w` has a program interpreter that does not load.
  void check_interp(const ElfObject& w, std::vector<DependencyProblem>& out);
  // Resolves one need of `who`, appending needed_missing or version_missing to `out`.
  std::optional<LoadedElf> check_need(const LoadedElf& who, const std::string& name, std::span<const LoadedElf> loaders,
                                      const std::unordered_map<std::string, LoadedElf>* loaded,
                                      std::vector<DependencyProblem>& out);
  std::optional<LoadedElf> try_dir(const std::string& dir, std::string_view name, const ElfIdent& want);
  std::optional<LoadedElf> try_path(const std::string& path, const ElfIdent& want);
  [[nodiscard]] std::string tuple_for(const ElfIdent& ident) const;

  static constexpr std::size_t kShards = 32;
  struct InodeHash {
    std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& k) const {
      return std::hash<std::uint64_t>()(k.first * 0x9e3779b97f4a7c15ULL ^ k.second);
    }
  };
  struct ObjectShard {
    std::mutex mu;
    std::unordered_map<std::pair<std::uint64_t, std::uint64_t>, std::unique_ptr<ElfObject>, InodeHash> by_inode;
    std::unordered_map<std::string, std::pair<const ElfObject*, int>> by_path;  // path -> (object, errno)
    std::unordered_map<std::string, std::optional<LoadedElf>> memo;  // plain lookups: name+class+machine
  };
  struct ListingShard {
    std::mutex mu;
    std::unordered_map<std::string, std::unique_ptr<DirListing>> dirs;
  };

  const base::Root& root_;
  std::vector<base::Error> problems_;
  std::vector<LdCacheEntry> cache_entries_;
  std::unordered_map<std::string, std::vector<const LdCacheEntry*>> cache_;  // soname -> entries, file order
  std::vector<std::string> conf_dirs_;
  ElfIdent native_;
  std::vector<std::string> multiarch_dirs_;  // tuples with a directory in the root, e.g. "x86_64-linux-gnu"
  std::unique_ptr<ObjectShard[]> objects_;
  std::unique_ptr<ListingShard[]> listings_;
};

}  // namespace guard::checks
