// What the library resolution needs from one ELF file: class, machine, interpreter, the
// dynamic section's names and search paths, and the symbol versions it needs and defines.
// The only file that includes libelf (elf_object.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>


namespace guard::checks {

// The first bytes of an ELF file, enough to skip what ld.so would skip.
struct ElfIdent {
  std::uint8_t elf_class = 0;  // ELFCLASS32 / ELFCLASS64
  std::uint16_t machine = 0;   // EM_X86_64, EM_386, ...
  std::uint16_t type = 0;      // ET_EXEC, ET_DYN, ET_REL, ...
};

// Reads the identity from the first 64 bytes of a file; false when they are not an ELF
// header of this machine's byte order (e.g. a script, a gzip file, a big-endian object).
[[nodiscard]] bool peek_elf_ident(std::string_view head, ElfIdent* out);

// The symbol versions an object needs from one library, e.g. {file="libc.so.6",
// versions={"GLIBC_2.34", "GLIBC_2.2.5"}} (weak needs are left out: ld.so does not insist).
struct VersionNeed {
  std::string file;
  std::vector<std::string> versions;
};

// The hash the symbol tables are keyed by (names and version names), the same for every object.
[[nodiscard]] std::uint64_t symbol_hash(std::string_view name);

// One dynamic symbol definition that ld.so's lookup (do_lookup_x) may bind to: defined
// (st_shndx != SHN_UNDEF, a value unless TLS), STB_GLOBAL/STB_WEAK/STB_GNU_UNIQUE, default or
// protected visibility, a data, function, TLS or IFUNC type. e.g. inflate@@ZLIB_1.2.0.
struct SymbolDef {
  static constexpr std::uint8_t kHidden = 1;  // versym bit 15: "foo@V", not the default "foo@@V"
  static constexpr std::uint8_t kOldest = 2;  // versym index < 3: an unversioned reference binds to it
  std::uint64_t name_hash = 0;
  std::uint32_t version_hash = 0;  // low bits of symbol_hash(version name); 0 when unversioned
  std::uint8_t flags = 0;
};

// One undefined, non-weak dynamic symbol reference, e.g. inflateValidate@ZLIB_1.2.9 from libz.so.1.
struct SymbolRef {
  static constexpr std::uint8_t kHidden = 1;  // vna_other bit 15: only that exact version binds
  static constexpr std::uint8_t kData = 2;    // STT_OBJECT/STT_TLS: bound when the object is loaded
  std::uint64_t name_hash = 0;
  std::uint32_t version_hash = 0;  // 0: unversioned
  std::uint32_t name = 0;          // offset of the NUL-terminated name in ElfObject::symbol_names
  std::uint16_t need = 0;          // 1 + index into ElfObject::symbol_needs; 0: unversioned
  std::uint8_t flags = 0;
};

struct ElfObject {
  ElfIdent ident;
  bool dynamic = false;      // has PT_DYNAMIC
  bool has_interp = false;
  std::string interp;        // PT_INTERP, e.g. "/lib64/ld-linux-x86-64.so.2"
  std::string soname;        // DT_SONAME
  bool has_rpath = false;
  std::string rpath;         // DT_RPATH, colon-separated, unexpanded
  bool has_runpath = false;
  std::string runpath;       // DT_RUNPATH
  std::vector<std::string> needed;      // DT_NEEDED in order
  std::vector<VersionNeed> verneed;     // DT_VERNEED
  std::vector<std::string> verdef;      // DT_VERDEF names, sorted, without the base (soname) entry
  bool bind_now = false;     // DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW: every symbol bound at start
  std::vector<SymbolDef> exports;       // sorted by name_hash
  std::vector<SymbolRef> imports;       // in .dynsym order
  std::string symbol_names;             // the imports' names, NUL-terminated
  std::vector<std::pair<std::string, std::string>> symbol_needs;  // (file, version) of versioned imports
  std::string error;         // non-empty when the file is malformed; the fields may be partial
};

// Parses the ELF file open at `fd` (mapped read-only, only the headers and the dynamic,
// version, symbol and string sections are touched; nothing of the mapping is kept). A malformed file gives an object with `error`
// set (never an exception or a crash).
[[nodiscard]] ElfObject read_elf(int fd);

// The same parse over a whole file's bytes in memory (for tests and fuzzing), e.g. the
// contents of /usr/lib/x86_64-linux-gnu/libz.so.1.
[[nodiscard]] ElfObject read_elf_bytes(std::string_view bytes);

}  // namespace guard::checks
