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
  std::string error;         // non-empty when the file is malformed; the fields may be partial
};

// Parses the ELF file open at `fd` (mapped read-only, only the headers and the dynamic,
// version and string sections are touched). A malformed file gives an object with `error`
// set (never an exception or a crash).
[[nodiscard]] ElfObject read_elf(int fd);

}  // namespace guard::checks
