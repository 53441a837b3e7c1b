#include "checks/configured_objects.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fmt/format.h>

#include "base/strings.h"

#include "checks/libraries.h"
#include "checks/nss.h"
#include "checks/pam.h"
#include "checks/preload.h"

namespace guard::checks {

namespace {

std::string describe(const ElfIdent& id) {
  std::string bits = id.elf_class == ELFCLASS64 ? "64-bit" : "32-bit";
  switch (id.machine) {
    case EM_X86_64: return bits + " x86-64";
    case EM_386: return bits + " i386";
    case EM_AARCH64: return bits + " arm64";
    case EM_ARM: return bits + " arm";
    default: return fmt::format("{} machine {}", bits, id.machine);
  }
}

}  // namespace

std::vector<LoadFailure> load_failures(LibraryResolver& resolver, const std::string& path) {
  std::string reinstall = fmt::format("reinstall the package that ships {} (dpkg -S {})", path, path);
  int err = 0;
  const ElfObject* elf = resolver.load(path, &err);
  if (elf == nullptr) {
    if (err == ENOENT || err == ENOTDIR) return {{fmt::format("{} is not installed", path), "missing", reinstall, true}};
    if (err == ENOEXEC) return {{fmt::format("{} is not an ELF shared object", path), "not-elf", reinstall, false}};
    if (err == ELOOP) return {{fmt::format("{} is a link loop", path), "loop", reinstall, false}};
    return {{fmt::format("{} cannot be read: {}", path, std::strerror(err)), "unreadable", reinstall, false}};
  }
  if (!elf->error.empty())
    return {{fmt::format("{} is not a well-formed ELF object: {}", path, elf->error), "malformed-elf", reinstall, false}};
  ElfIdent native = resolver.native();
  if (native.elf_class != 0 && (elf->ident.elf_class != native.elf_class || elf->ident.machine != native.machine)) {
    return {{fmt::format("{} is a {} object, and the root's programs are {}", path, describe(elf->ident),
                         describe(native)),
             "wrong-arch", reinstall, false}};
  }
  if (!elf->dynamic || elf->ident.type != ET_DYN)
    return {{fmt::format("{} is not a shared object", path), "not-shared", reinstall, false}};

  std::vector<LoadFailure> out;
  auto real = resolver.root().realpath(path);
  resolver.load_tree(LoadedElf{real ? *real : path, elf}, [&](const TreeObject& t) {
    const LoadedElf& who = t.object;
    std::string prefix = t.top ? path + " " : fmt::format("{} loads {}, which ", path, who.path);
    std::string id_prefix = t.top ? "" : who.path + ":";
    if (!who.elf->error.empty()) {
      out.push_back({prefix + "is not a well-formed ELF object: " + who.elf->error, id_prefix + "malformed-elf",
                     fmt::format("reinstall the package that ships {} (dpkg -S {})", who.path, who.path), false});
      return;
    }
    for (auto& f : dependency_findings(who.path, t.problems, Severity::block))
      out.push_back({prefix + f.message, id_prefix + f.id, f.hint, false});
  });
  return out;
}

std::optional<LoadedElf> search_anchor(LibraryResolver& resolver) {
  for (const char* p : {"/bin/sh", "/usr/bin/sh", "/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"}) {
    const ElfObject* elf = resolver.load(p);
    if (elf != nullptr && elf->error.empty()) return LoadedElf{p, elf};
  }
  return std::nullopt;
}

std::string ReinstallHints::for_path(const std::string& path, const std::string& fallback) {
  if (!owners_) owners_ = PackageOwners::load(root_);
  if (!*owners_) return fallback;
  std::string pkg = (*owners_)->owner(path);
  if (pkg.empty()) {
    auto real_dir = root_.realpath(std::string(base::dirname(path)));
    if (real_dir) pkg = (*owners_)->owner(base::join_path(*real_dir, base::basename(path)));
  }
  return pkg.empty() ? fallback : repair_command(root_, "apt-get install --reinstall " + pkg);
}

void LineFindings::add(Severity severity, const std::string& file, std::size_t line, const std::string& text,
                       const std::string& detail, const std::string& hint, const std::string& id) {
  for (std::size_t i = 0; i < findings_.size(); ++i) {
    Finding& f = findings_[i];
    if (f.path != file || f.id != id) continue;
    if (severity > f.severity) f.severity = severity;
    also_[i].push_back(line);
    return;
  }
  findings_.push_back(make_finding(check_, severity, file, fmt::format("line {}: {}: {}", line, text, detail), hint, id));
  also_.emplace_back();
}

std::vector<Finding> LineFindings::take() {
  for (std::size_t i = 0; i < findings_.size(); ++i) {
    if (also_[i].empty()) continue;
    std::vector<std::string> lines;
    for (auto l : also_[i]) lines.push_back(std::to_string(l));
    findings_[i].message += fmt::format(" (also on line{} {})", lines.size() > 1 ? "s" : "", base::join(lines, ", "));
  }
  also_.clear();
  return std::move(findings_);
}

std::set<std::string> objects_named_by_configuration(const base::Root& root) {
  LibraryResolver resolver(root);
  std::vector<std::string> named = pam_named_objects(root, resolver);
  for (auto& p : nss_named_objects(root, resolver)) named.push_back(std::move(p));
  for (auto& p : preload_named_objects(root, resolver)) named.push_back(std::move(p));
  std::set<std::string> out;
  for (const auto& p : named) {
    auto real = root.realpath(p);
    if (real) out.insert(*real);
  }
  return out;
}

}  // namespace guard::checks
