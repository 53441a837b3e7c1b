#include "checks/elf_object.h"

#include <elf.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fmt/format.h>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>

namespace guard::checks {
namespace {

struct ElfEnd {
  void operator()(Elf* e) const { ::elf_end(e); }
};
using ElfPtr = std::unique_ptr<Elf, ElfEnd>;

void init_libelf() {
  static std::once_flag once;
  std::call_once(once, [] { ::elf_version(EV_CURRENT); });
}

std::string elf_error(const char* call) { return fmt::format("{}: {}", call, ::elf_errmsg(-1)); }

// What one versym index means in this object: a version it defines or needs.
struct VersionSlot {
  bool set = false;
  bool hidden = false;        // vna_other bit 15
  std::string file;           // for a need, the library that should define it
  std::string name;
};

// The parse state beyond ElfObject: version indexes and where the symbol table is.
struct Scratch {
  std::vector<VersionSlot> versions;  // by versym index
  Elf_Scn* dynsym = nullptr;
  Elf_Scn* versym = nullptr;
  VersionSlot& slot(std::size_t ndx) {
    ndx &= 0x7fff;
    if (versions.size() <= ndx) versions.resize(ndx + 1);
    return versions[ndx];
  }
};

// The dynamic section's entries we need; names come from the linked string table.
void read_dynamic(Elf* elf, Elf_Scn* scn, const GElf_Shdr& shdr, ElfObject& obj) {
  Elf_Data* data = ::elf_getdata(scn, nullptr);
  if (data == nullptr || shdr.sh_entsize == 0) {
    obj.error = elf_error("elf_getdata(.dynamic)");
    return;
  }
  std::size_t n = data->d_size / shdr.sh_entsize;
  for (std::size_t i = 0; i < n; ++i) {
    GElf_Dyn dyn;
    if (::gelf_getdyn(data, static_cast<int>(i), &dyn) == nullptr) {
      obj.error = elf_error("gelf_getdyn");
      return;
    }
    if (dyn.d_tag == DT_NULL) break;
    if (dyn.d_tag == DT_BIND_NOW || (dyn.d_tag == DT_FLAGS && (dyn.d_un.d_val & DF_BIND_NOW) != 0) ||
        (dyn.d_tag == DT_FLAGS_1 && (dyn.d_un.d_val & DF_1_NOW) != 0))
      obj.bind_now = true;
    if (dyn.d_tag != DT_NEEDED && dyn.d_tag != DT_SONAME && dyn.d_tag != DT_RPATH && dyn.d_tag != DT_RUNPATH)
      continue;
    const char* s = ::elf_strptr(elf, shdr.sh_link, dyn.d_un.d_val);
    if (s == nullptr) {
      obj.error = elf_error("elf_strptr(.dynstr)");
      return;
    }
    switch (dyn.d_tag) {
      case DT_NEEDED: obj.needed.emplace_back(s); break;
      case DT_SONAME: obj.soname = s; break;
      case DT_RPATH: obj.has_rpath = true; obj.rpath = s; break;
      case DT_RUNPATH: obj.has_runpath = true; obj.runpath = s; break;
      default: break;
    }
  }
}

void read_verneed(Elf* elf, Elf_Scn* scn, const GElf_Shdr& shdr, ElfObject& obj, Scratch& sc) {
  Elf_Data* data = ::elf_getdata(scn, nullptr);
  if (data == nullptr) {
    obj.error = elf_error("elf_getdata(.gnu.version_r)");
    return;
  }
  std::size_t offset = 0;
  for (std::size_t i = 0; i < shdr.sh_info; ++i) {
    GElf_Verneed need;
    if (offset >= data->d_size || ::gelf_getverneed(data, static_cast<int>(offset), &need) == nullptr) {
      obj.error = elf_error("gelf_getverneed");
      return;
    }
    const char* file = ::elf_strptr(elf, shdr.sh_link, need.vn_file);
    if (file == nullptr) {
      obj.error = elf_error("elf_strptr(vn_file)");
      return;
    }
    VersionNeed vn{file, {}};
    std::size_t aux = offset + need.vn_aux;
    for (std::size_t k = 0; k < need.vn_cnt; ++k) {
      GElf_Vernaux va;
      if (aux >= data->d_size || ::gelf_getvernaux(data, static_cast<int>(aux), &va) == nullptr) {
        obj.error = elf_error("gelf_getvernaux");
        return;
      }
      const char* name = ::elf_strptr(elf, shdr.sh_link, va.vna_name);
      if (name == nullptr) {
        obj.error = elf_error("elf_strptr(vna_name)");
        return;
      }
      if ((va.vna_flags & VER_FLG_WEAK) == 0) vn.versions.emplace_back(name);
      VersionSlot& slot = sc.slot(va.vna_other);
      slot = VersionSlot{true, (va.vna_other & 0x8000) != 0, file, name};
      if (va.vna_next == 0) break;
      aux += va.vna_next;
    }
    obj.verneed.push_back(std::move(vn));
    if (need.vn_next == 0) break;
    offset += need.vn_next;
  }
}

void read_verdef(Elf* elf, Elf_Scn* scn, const GElf_Shdr& shdr, ElfObject& obj, Scratch& sc) {
  Elf_Data* data = ::elf_getdata(scn, nullptr);
  if (data == nullptr) {
    obj.error = elf_error("elf_getdata(.gnu.version_d)");
    return;
  }
  std::size_t offset = 0;
  for (std::size_t i = 0; i < shdr.sh_info; ++i) {
    GElf_Verdef def;
    if (offset >= data->d_size || ::gelf_getverdef(data, static_cast<int>(offset), &def) == nullptr) {
      obj.error = elf_error("gelf_getverdef");
      return;
    }
    if ((def.vd_flags & VER_FLG_BASE) == 0 && def.vd_cnt > 0) {
      GElf_Verdaux aux;
      std::size_t a = offset + def.vd_aux;
      if (a >= data->d_size || ::gelf_getverdaux(data, static_cast<int>(a), &aux) == nullptr) {
        obj.error = elf_error("gelf_getverdaux");
        return;
      }
      const char* name = ::elf_strptr(elf, shdr.sh_link, aux.vda_name);
      if (name == nullptr) {
        obj.error = elf_error("elf_strptr(vda_name)");
        return;
      }
      obj.verdef.emplace_back(name);
      sc.slot(def.vd_ndx) = VersionSlot{true, false, {}, name};
    }
    if (def.vd_next == 0) break;
    offset += def.vd_next;
  }
  std::sort(obj.verdef.begin(), obj.verdef.end());
}

bool bindable_type(unsigned type) {
  return type == STT_NOTYPE || type == STT_OBJECT || type == STT_FUNC || type == STT_COMMON || type == STT_TLS ||
         type == STT_GNU_IFUNC;
}

// The dynamic symbol table: what the object defines for ld.so's lookup and what it needs.
void read_symbols(Elf* elf, Scratch& sc, ElfObject& obj) {
  GElf_Shdr shdr;
  if (::gelf_getshdr(sc.dynsym, &shdr) == nullptr) {
    obj.error = elf_error("gelf_getshdr(.dynsym)");
    return;
  }
  Elf_Data* data = ::elf_getdata(sc.dynsym, nullptr);
  std::size_t entsize = ::gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
  if (data == nullptr || entsize == 0) {
    obj.error = elf_error("elf_getdata(.dynsym)");
    return;
  }
  std::size_t n = data->d_size / entsize;
  Elf_Data* vdata = nullptr;
  if (sc.versym != nullptr) {
    vdata = ::elf_getdata(sc.versym, nullptr);
    if (vdata == nullptr || vdata->d_size / 2 < n) {
      obj.error = ".gnu.version is shorter than .dynsym (truncated?)";
      return;
    }
  }
  std::vector<std::uint32_t> version_hashes(sc.versions.size(), 0);
  for (std::size_t v = 2; v < sc.versions.size(); ++v)
    if (sc.versions[v].set) version_hashes[v] = static_cast<std::uint32_t>(symbol_hash(sc.versions[v].name)) | 1u;
  std::vector<int> need_index(sc.versions.size(), -1);
  for (std::size_t i = 1; i < n; ++i) {
    GElf_Sym sym;
    if (::gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) {
      obj.error = elf_error("gelf_getsym");
      return;
    }
    unsigned bind = GELF_ST_BIND(sym.st_info), type = GELF_ST_TYPE(sym.st_info);
    if (!bindable_type(type) || sym.st_name == 0) continue;
    std::size_t ndx = 1;
    bool hidden = false;
    if (vdata != nullptr) {
      GElf_Versym vs;
      if (::gelf_getversym(vdata, static_cast<int>(i), &vs) == nullptr) {
        obj.error = elf_error("gelf_getversym");
        return;
      }
      ndx = vs & 0x7fff;
      hidden = (vs & 0x8000) != 0;
    }
    bool known = ndx >= 2 && ndx < sc.versions.size() && sc.versions[ndx].set;
    if (sym.st_shndx == SHN_UNDEF) {
      if (bind != STB_GLOBAL) continue;  // weak references may stay unresolved
      const char* name = ::elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (name == nullptr) {
        obj.error = fmt::format("symbol {} of .dynsym has its name outside .dynstr", i);
        return;
      }
      SymbolRef ref;
      std::string_view nv(name);
      ref.name_hash = symbol_hash(nv);
      ref.name = static_cast<std::uint32_t>(obj.symbol_names.size());
      obj.symbol_names.append(nv);
      obj.symbol_names.push_back('\0');
      if (type == STT_OBJECT || type == STT_TLS || type == STT_COMMON) ref.flags |= SymbolRef::kData;
      if (known) {
        const VersionSlot& vs = sc.versions[ndx];
        ref.version_hash = version_hashes[ndx];
        if (vs.hidden) ref.flags |= SymbolRef::kHidden;
        if (need_index[ndx] < 0) {
          need_index[ndx] = static_cast<int>(obj.symbol_needs.size());
          obj.symbol_needs.emplace_back(vs.file, vs.name);
        }
        ref.need = static_cast<std::uint16_t>(need_index[ndx] + 1);
      }
      obj.imports.push_back(ref);
      continue;
    }
    if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) continue;
    unsigned vis = GELF_ST_VISIBILITY(sym.st_other);
    if (vis != STV_DEFAULT && vis != STV_PROTECTED) continue;
    if (sym.st_value == 0 && sym.st_shndx != SHN_ABS && type != STT_TLS) continue;
    const char* name = ::elf_strptr(elf, shdr.sh_link, sym.st_name);
    if (name == nullptr) {
      obj.error = fmt::format("symbol {} of .dynsym has its name outside .dynstr", i);
      return;
    }
    SymbolDef def;
    def.name_hash = symbol_hash(name);
    def.version_hash = known ? version_hashes[ndx] : 0;
    if (hidden) def.flags |= SymbolDef::kHidden;
    if (ndx < 3) def.flags |= SymbolDef::kOldest;
    obj.exports.push_back(def);
  }
  std::sort(obj.exports.begin(), obj.exports.end(),
            [](const SymbolDef& a, const SymbolDef& b) { return a.name_hash < b.name_hash; });
  obj.exports.shrink_to_fit();
  obj.imports.shrink_to_fit();
  obj.symbol_names.shrink_to_fit();
}

}  // namespace

std::uint64_t symbol_hash(std::string_view name) { return std::hash<std::string_view>()(name); }

bool peek_elf_ident(std::string_view head, ElfIdent* out) {
  if (head.size() < EI_NIDENT + 4 || std::memcmp(head.data(), ELFMAG, SELFMAG) != 0) return false;
  auto cls = static_cast<std::uint8_t>(head[EI_CLASS]);
  auto data = static_cast<std::uint8_t>(head[EI_DATA]);
  if (cls != ELFCLASS32 && cls != ELFCLASS64) return false;
  if (data != (std::endian::native == std::endian::little ? ELFDATA2LSB : ELFDATA2MSB)) return false;
  std::uint16_t type = 0, machine = 0;
  std::memcpy(&type, head.data() + EI_NIDENT, 2);
  std::memcpy(&machine, head.data() + EI_NIDENT + 2, 2);
  *out = ElfIdent{cls, machine, type};
  return true;
}

namespace {

// The parse proper, over an ELF descriptor opened from a file or from memory.
ElfObject read_elf_descriptor(const ElfPtr& elf, const char* opened_by) {
  ElfObject obj;
  if (!elf) {
    obj.error = elf_error(opened_by);
    return obj;
  }
  if (::elf_kind(elf.get()) != ELF_K_ELF) {
    obj.error = "not an ELF object";
    return obj;
  }
  GElf_Ehdr ehdr;
  if (::gelf_getehdr(elf.get(), &ehdr) == nullptr) {
    obj.error = elf_error("gelf_getehdr");
    return obj;
  }
  obj.ident = ElfIdent{static_cast<std::uint8_t>(ehdr.e_ident[EI_CLASS]), ehdr.e_machine, ehdr.e_type};

  std::size_t image_size = 0;
  const char* image = ::elf_rawfile(elf.get(), &image_size);
  std::size_t phnum = 0;
  if (::elf_getphdrnum(elf.get(), &phnum) != 0) {
    obj.error = elf_error("elf_getphdrnum");
    return obj;
  }
  for (std::size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (::gelf_getphdr(elf.get(), static_cast<int>(i), &ph) == nullptr) {
      obj.error = elf_error("gelf_getphdr");
      return obj;
    }
    if (ph.p_type == PT_DYNAMIC) obj.dynamic = true;
    if (ph.p_type == PT_INTERP) {
      if (image == nullptr || ph.p_offset > image_size || ph.p_filesz > image_size - ph.p_offset) {
        obj.error = "PT_INTERP lies outside the file (truncated?)";
        return obj;
      }
      std::string_view s(image + ph.p_offset, ph.p_filesz);
      if (auto nul = s.find('\0'); nul != std::string_view::npos) s = s.substr(0, nul);
      obj.has_interp = true;
      obj.interp = std::string(s);
    }
  }
  if (!obj.dynamic) return obj;  // static: nothing to resolve

  std::size_t shnum = 0;
  if (::elf_getshdrnum(elf.get(), &shnum) != 0) {
    obj.error = elf_error("elf_getshdrnum");
    return obj;
  }
  bool saw_dynamic = false;
  Scratch sc;
  Elf_Scn* scn = nullptr;
  while ((scn = ::elf_nextscn(elf.get(), scn)) != nullptr) {
    GElf_Shdr shdr;
    if (::gelf_getshdr(scn, &shdr) == nullptr) {
      obj.error = elf_error("gelf_getshdr");
      return obj;
    }
    if (shdr.sh_type == SHT_NOBITS) continue;
    if (shdr.sh_offset > image_size || shdr.sh_size > image_size - shdr.sh_offset) {
      if (shdr.sh_type == SHT_DYNAMIC || shdr.sh_type == SHT_GNU_verneed || shdr.sh_type == SHT_GNU_verdef ||
          shdr.sh_type == SHT_STRTAB || shdr.sh_type == SHT_DYNSYM || shdr.sh_type == SHT_GNU_versym) {
        obj.error = fmt::format("section {} lies past the end of the file (truncated?)", ::elf_ndxscn(scn));
        return obj;
      }
      continue;
    }
    switch (shdr.sh_type) {
      case SHT_DYNAMIC: saw_dynamic = true; read_dynamic(elf.get(), scn, shdr, obj); break;
      case SHT_GNU_verneed: read_verneed(elf.get(), scn, shdr, obj, sc); break;
      case SHT_GNU_verdef: read_verdef(elf.get(), scn, shdr, obj, sc); break;
      case SHT_DYNSYM: sc.dynsym = scn; break;
      case SHT_GNU_versym: sc.versym = scn; break;
      default: break;
    }
    if (!obj.error.empty()) return obj;
  }
  if (!saw_dynamic) {
    obj.error = "has a PT_DYNAMIC segment but no dynamic section (stripped section headers?)";
    return obj;
  }
  if (sc.dynsym != nullptr) read_symbols(elf.get(), sc, obj);
  return obj;
}

}  // namespace

ElfObject read_elf(int fd) {
  init_libelf();
  ElfPtr elf(::elf_begin(fd, ELF_C_READ_MMAP, nullptr));
  return read_elf_descriptor(elf, "elf_begin");
}

ElfObject read_elf_bytes(std::string_view bytes) {
  init_libelf();
  // elf_memory takes a writable image (it may convert in place); work on a copy.
  std::string image(bytes);
  ElfPtr elf(::elf_memory(image.data(), image.size()));
  return read_elf_descriptor(elf, "elf_memory");
}

}  // namespace guard::checks
