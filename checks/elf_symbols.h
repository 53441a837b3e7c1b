// Symbol binding the way ld.so does it at program start: every undefined, non-weak dynamic
// symbol of an object must be defined by an object of the scope it is loaded in, honouring
// symbol versions (glibc's do_lookup_x/check_match). Part of the libraries check.
//
// Cost: each object's export table is built once when its file is parsed (ElfObject::exports,
// cached per inode by LibraryResolver); each library's references are first resolved against
// its own tree, once, so a program's scope only looks up the few leftovers.
//
// Not modelled, and why:
// - LD_PRELOAD and /etc/ld.so.preload objects in the scope (they only add definitions; the
//   preload check judges them), dlopen()'s local scopes (plugins are judged against their own
//   tree plus every scanned object as a possible host), DT_FILTER/DT_AUXILIARY filters.
// - Per-relocation binding: immediate means DT_BIND_NOW/DF_BIND_NOW/DF_1_NOW or a data symbol;
//   a function whose address a lazily bound object takes (GLOB_DAT) counts as lazy, which only
//   matters for programs outside bin/sbin (warn instead of block).
// - Copy relocations (R_*_COPY skips the executable's own definition): the executable's copy
//   counts as the definition.
// - An unversioned reference binds to "exactly one" non-hidden versioned definition in glibc;
//   here to any (there is only ever one default "@@" version of a name).
// - A library reference its own tree resolves is not looked up again in a program's scope where
//   the same DT_NEEDED resolves to another file (through the program's RPATH): a possible miss,
//   never a false alarm.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "checks/elf_resolver.h"
#include "checks/report.h"

namespace guard::checks {

// True when `lib` has a definition `ref` binds to: the same name and either the same version,
// or (for a reference that is not hidden) an unversioned definition; an unversioned reference
// binds to an unversioned, oldest-version or default ("@@") definition.
[[nodiscard]] bool defines(const ElfObject& lib, const SymbolRef& ref);

// The name of `ref` of `who` with its version, e.g. "inflateValidate@ZLIB_1.2.9".
[[nodiscard]] std::string symbol_display(const ElfObject& who, const SymbolRef& ref);

// The indexes (into who.imports) of the references of `who` among `refs` (all when null)
// that no object of `scope` defines. The library a versioned reference names is tried first.
[[nodiscard]] std::vector<std::uint32_t> unresolved_symbols(const ElfObject& who, std::span<const LoadedElf> scope,
                                                            const std::vector<std::uint32_t>* refs = nullptr);

struct SymbolCheckInput {
  const std::vector<LoadedElf>* objects = nullptr;  // the scanned objects (well-formed, dynamic, runnable ones count)
  // The objects some program loads at start (directly or through other libraries).
  const std::unordered_set<const ElfObject*>* linked = nullptr;
  // In a change-scoped run, the changed objects: only scopes containing one are reported.
  const std::unordered_set<const ElfObject*>* changed = nullptr;
  std::size_t max_per_object = 20;
};

// The libraries check's symbol findings (id "symbol:<library>:<name>", or "symbol:<name>" for
// an unversioned reference): a program's scope that lacks a symbol one of its objects needs
// blocks for programs in bin/sbin directories and when the binding is immediate (BIND_NOW or
// data), else warns; a library nothing links (a dlopen plugin) warns when neither its own
// dependencies nor any scanned object (a possible host) defines it (info when it links only
// glibc: then it calls into its host by design, e.g. libthread_db's ps_* callbacks).
[[nodiscard]] std::vector<Finding> symbol_findings(LibraryResolver& resolver, const SymbolCheckInput& in);

}  // namespace guard::checks
