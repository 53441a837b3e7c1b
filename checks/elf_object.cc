#include "checks/elf_object.h"

#include <elf.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <mutex>

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

void read_verneed(Elf* elf, Elf_Scn* scn, const GElf_Shdr& shdr, ElfObject& obj) {
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
      if (va.vna_next == 0) break;
      aux += va.vna_next;
    }
    obj.verneed.push_back(std::move(vn));
    if (need.vn_next == 0) break;
    offset += need.vn_next;
  }
}

void read_verdef(Elf* elf, Elf_Scn* scn, const GElf_Shdr& shdr, ElfObject& obj) {
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
    }
    if (def.vd_next == 0) break;
    offset += def.vd_next;
  }
  std::sort(obj.verdef.begin(), obj.verdef.end());
}

}  // namespace

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

ElfObject read_elf(int fd) {
  init_libelf();
  ElfObject obj;
  ElfPtr elf(::elf_begin(fd, ELF_C_READ_MMAP, nullptr));
  if (!elf) {
    obj.error = elf_error("elf_begin");
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
          shdr.sh_type == SHT_STRTAB) {
        obj.error = fmt::format("section {} lies past the end of the file (truncated?)", ::elf_ndxscn(scn));
        return obj;
      }
      continue;
    }
    switch (shdr.sh_type) {
      case SHT_DYNAMIC: saw_dynamic = true; read_dynamic(elf.get(), scn, shdr, obj); break;
      case SHT_GNU_verneed: read_verneed(elf.get(), scn, shdr, obj); break;
      case SHT_GNU_verdef: read_verdef(elf.get(), scn, shdr, obj); break;
      default: break;
    }
    if (!obj.error.empty()) return obj;
  }
  if (!saw_dynamic) obj.error = "has a PT_DYNAMIC segment but no dynamic section (stripped section headers?)";
  return obj;
}

}  // namespace guard::checks
