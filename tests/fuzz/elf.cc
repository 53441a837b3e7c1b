// An ELF file from any bytes (checks/elf_object.h, the same parse as on a file), then the
// symbol resolution (checks/elf_symbols.h) of the object against itself, which walks its
// imports, exports, version needs and names.
#include <vector>

#include "checks/elf_object.h"
#include "checks/elf_resolver.h"
#include "checks/elf_symbols.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace guard::checks;
  auto text = guard::fuzz::bytes(data, size);
  ElfIdent ident;
  (void)peek_elf_ident(text, &ident);
  ElfObject obj = read_elf_bytes(text);
  if (!obj.error.empty()) return 0;
  std::vector<LoadedElf> scope{{"/usr/lib/x86_64-linux-gnu/libfuzz.so.1", &obj}};
  auto missing = unresolved_symbols(obj, scope);
  for (auto i : missing) {
    UG_FUZZ_CHECK(i < obj.imports.size());
    (void)symbol_display(obj, obj.imports[i]);
  }
  for (const auto& ref : obj.imports) (void)defines(obj, ref);
  return 0;
}
