#include "checks/modules.h"

#include <elf.h>

#include <cstring>

#include <fmt/format.h>

#include "base/strings.h"

namespace guard::checks {
namespace {

constexpr std::size_t kMaxSectionRead = std::size_t{1} << 20;  // .modinfo and .shstrtab are a few KiB

std::string_view basename_of(std::string_view path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// Reads an unsigned integer of `size` bytes at `at` of `b` in the file's byte order.
std::uint64_t get(const std::string& b, std::size_t at, std::size_t size, bool big_endian) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < size; ++i) {
    auto byte = static_cast<std::uint64_t>(static_cast<unsigned char>(b[at + (big_endian ? i : size - 1 - i)]));
    v = v << 8 | byte;
  }
  return v;
}

}  // namespace

std::string_view strip_module_compression(std::string_view path) {
  for (std::string_view ext : {".xz", ".zst", ".gz"})
    if (path.ends_with(ext) && path.substr(0, path.size() - ext.size()).ends_with(".ko"))
      return path.substr(0, path.size() - ext.size());
  return path;
}

std::string module_name(std::string_view path) {
  std::string_view base = basename_of(strip_module_compression(path));
  if (!base.ends_with(".ko") || base.size() == 3) return {};
  std::string name(base.substr(0, base.size() - 3));
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

ModulesDep parse_modules_dep(std::string_view bytes) {
  ModulesDep out;
  std::size_t line_no = 0;
  for (std::string_view line : base::split(bytes, '\n')) {
    ++line_no;
    line = base::trim(line);
    if (line.empty() || line.starts_with('#')) continue;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      out.bad_lines.push_back(line_no);
      continue;
    }
    std::string path(base::trim(line.substr(0, colon)));
    std::vector<std::string> deps;
    for (std::string_view d : base::split(line.substr(colon + 1), ' '))
      if (!base::trim(d).empty()) deps.emplace_back(base::trim(d));
    std::string name = module_name(path);
    if (!name.empty()) out.by_name.emplace(name, path);
    out.deps[path] = std::move(deps);
  }
  return out;
}

std::set<std::string> parse_modules_builtin(std::string_view bytes) {
  std::set<std::string> out;
  for (std::string_view line : base::split(bytes, '\n')) {
    std::string name = module_name(base::trim(line));
    if (!name.empty()) out.insert(std::move(name));
  }
  return out;
}

std::optional<std::string> find_alias(std::string_view modules_alias, std::string_view alias) {
  for (std::string_view line : base::split(modules_alias, '\n')) {
    auto words = base::split(base::trim(line), ' ');
    if (words.size() == 3 && words[0] == "alias" && words[1] == alias) return std::string(words[2]);
  }
  return std::nullopt;
}

std::vector<std::string> dep_closure(const ModulesDep& dep, const std::string& path) {
  std::vector<std::string> out{path};
  std::set<std::string> seen{path};
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto it = dep.deps.find(out[i]);
    if (it == dep.deps.end()) continue;
    for (const auto& d : it->second)
      if (seen.insert(d).second) out.push_back(d);
  }
  return out;
}

base::Result<std::optional<std::string>> module_vermagic(const ReadAt& read, std::uint64_t file_size) {
  auto bad = [](std::string why) { return base::fail("modinfo", "", std::move(why)); };
  std::string eh;
  if (!read(0, EI_NIDENT, &eh) || std::memcmp(eh.data(), ELFMAG, SELFMAG) != 0) return bad("not an ELF file");
  bool is64 = eh[EI_CLASS] == ELFCLASS64;
  bool big = eh[EI_DATA] == ELFDATA2MSB;
  if (!is64 && eh[EI_CLASS] != ELFCLASS32) return bad("unknown ELF class");
  std::size_t ehsize = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
  if (!read(0, ehsize, &eh)) return bad("the ELF header is cut short");
  auto field = [&](const std::string& b, std::size_t off32, std::size_t off64, std::size_t size32, std::size_t size64) {
    return is64 ? get(b, off64, size64, big) : get(b, off32, size32, big);
  };
  std::uint64_t shoff = field(eh, offsetof(Elf32_Ehdr, e_shoff), offsetof(Elf64_Ehdr, e_shoff), 4, 8);
  std::uint64_t shentsize = get(eh, is64 ? offsetof(Elf64_Ehdr, e_shentsize) : offsetof(Elf32_Ehdr, e_shentsize), 2, big);
  std::uint64_t shnum = get(eh, is64 ? offsetof(Elf64_Ehdr, e_shnum) : offsetof(Elf32_Ehdr, e_shnum), 2, big);
  std::uint64_t shstrndx = get(eh, is64 ? offsetof(Elf64_Ehdr, e_shstrndx) : offsetof(Elf32_Ehdr, e_shstrndx), 2, big);
  std::size_t want_ent = is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
  if (shoff == 0 || shnum == 0 || shentsize < want_ent || shstrndx >= shnum) return bad("it has no section headers");
  if (shoff > file_size || shnum * shentsize > file_size - shoff)
    return bad(fmt::format("its section headers end beyond its {} bytes (truncated)", file_size));
  std::string shdrs;
  if (!read(shoff, static_cast<std::size_t>(shnum * shentsize), &shdrs)) return bad("cannot read its section headers");
  struct Section {
    std::uint64_t name, offset, size;
  };
  auto section = [&](std::uint64_t i) {
    std::size_t at = static_cast<std::size_t>(i * shentsize);
    return Section{get(shdrs, at + offsetof(Elf64_Shdr, sh_name), 4, big),
                   field(shdrs, at + offsetof(Elf32_Shdr, sh_offset), at + offsetof(Elf64_Shdr, sh_offset), 4, 8),
                   field(shdrs, at + offsetof(Elf32_Shdr, sh_size), at + offsetof(Elf64_Shdr, sh_size), 4, 8)};
  };
  auto load = [&](const Section& s, std::string* out) {
    if (s.offset > file_size || s.size > file_size - s.offset || s.size > kMaxSectionRead) return false;
    return read(s.offset, static_cast<std::size_t>(s.size), out);
  };
  std::string names;
  if (!load(section(shstrndx), &names)) return bad("cannot read its section names (truncated)");
  for (std::uint64_t i = 0; i < shnum; ++i) {
    Section s = section(i);
    if (s.name >= names.size() || std::strcmp(names.c_str() + s.name, ".modinfo") != 0) continue;
    std::string info;
    if (!load(s, &info)) return bad("cannot read its .modinfo section (truncated)");
    for (std::string_view entry : base::split(info, '\0'))
      if (entry.starts_with("vermagic=")) return std::optional<std::string>(std::string(entry.substr(9)));
    return std::optional<std::string>();
  }
  return bad("it has no .modinfo section");
}

}  // namespace guard::checks
