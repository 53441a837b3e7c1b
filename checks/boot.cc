#include "checks/boot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "base/dir.h"
#include "base/input_limits.h"
#include "base/regular_file.h"
#include "base/strings.h"
#include "base/unique_fd.h"
#include "checks/bls.h"
#include "checks/decompress.h"
#include "checks/grubenv.h"
#include "checks/initramfs.h"
#include "checks/kernels.h"
#include "checks/modules.h"
#include "formats/boot_layout.h"
#include "formats/grub_cfg.h"

namespace guard::checks {
namespace {

using formats::BootLayout;
using formats::GrubConfig;
using formats::GrubEntry;
using formats::GrubPath;
using formats::GrubRoot;

constexpr std::size_t kImageHead = std::size_t{64} << 10;
constexpr std::size_t kUkiHead = std::size_t{4} << 20;
constexpr std::uint64_t kMaxModulesDep = std::uint64_t{64} << 20;
constexpr std::uint64_t kMaxModuleFile = std::uint64_t{64} << 20;    // compressed .ko.xz
constexpr std::size_t kMaxModuleBytes = std::size_t{128} << 20;      // decompressed

// The modules a kernel needs to mount its root filesystem: the closure in modules.dep of the
// filesystem's module, paths relative to /lib/modules/VER. Empty when it is built in or unknown.
struct RootFsModules {
  std::string fstype;                // "btrfs"
  std::vector<std::string> modules;  // "kernel/fs/btrfs/btrfs.ko.xz", "kernel/lib/libcrc32c.ko.xz", …
};

std::string mib(std::uint64_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

class BootRun {
 public:
  BootRun(const CheckContext& ctx, BootLayout layout) : ctx_(ctx), root_(ctx.root), layout_(std::move(layout)) {}

  base::Result<CheckOutput> run() {
    auto kernels = installed_kernels(root_);
    if (!kernels) return base::fail(kernels.error());
    kernels_ = std::move(*kernels);
    auto ukis = list_ukis();
    if (!ukis) return base::fail(ukis.error());
    auto grub_cfg = formats::find_grub_cfg(root_);
    auto bls = bls_dirs();
    if (!bls) return base::fail(bls.error());
    // Debian's /vmlinuz links stay when every kernel was removed: that root must not be skipped.
    if (kernels_.empty() && ukis->empty() && grub_cfg.empty() && bls->empty()) {
      // The running kernel of a container or a VM booted from outside never had modules here.
      if (!has_kernel_links()) {
        out_.skipped =
            "no kernel in /boot and no boot loader configuration (a container or chroot that does not boot itself)";
        return std::move(out_);
      }
      // A snapshot or image whose separate /boot partition is not mounted inside it.
      if (layout_.boot_in_fstab && !layout_.boot_mounted) {
        out_.skipped = "/boot is a separate filesystem (see /etc/fstab) that is not mounted in this root";
        return std::move(out_);
      }
    }
    for (const auto& k : kernels_) check_kernel(k);
    for (const auto& uki : *ukis) check_uki(uki);
    check_links();
    if (!grub_cfg.empty()) check_grub(grub_cfg);
    for (const auto& [dir, base] : *bls) check_bls_dir(dir, base);
    check_space(*ukis);
    if (!kernels_.empty() || !ukis->empty()) check_live_modules();
    return std::move(out_);
  }

 private:
  void add(Severity s, std::string path, std::string message, std::string hint = {}, std::string id = {}) {
    out_.findings.push_back(make_finding("boot", s, std::move(path), std::move(message), std::move(hint), std::move(id)));
  }

  // True when the root-relative `path` exists as a regular file (links followed in the root).
  bool is_file(const std::string& path) const {
    auto st = root_.stat(path);
    return st && S_ISREG(st->st_mode);
  }

  // Why `path` is not a regular file, for a message: "is missing", "is a FIFO, not a regular file".
  std::string not_a_file(const std::string& path) const {
    auto st = root_.stat(path);
    if (!st) return "is missing";
    return fmt::format("is {}, not a regular file", base::file_kind(st->st_mode));
  }

  base::Result<std::vector<std::string>> list_ukis() const {
    std::vector<std::string> out;
    if (layout_.esp.empty()) return out;
    std::string dir = layout_.esp + "/EFI/Linux";
    auto names = base::list_dir(root_, dir);
    if (!names) return base::fail(names.error());
    for (const auto& n : *names) {
      std::string path = base::join_path(dir, n);
      if (n.size() > 4 && (n.ends_with(".efi") || n.ends_with(".EFI")) && is_file(path)) out.push_back(std::move(path));
    }
    return out;
  }

  // (entries dir, dir its paths are relative to)
  base::Result<std::vector<std::pair<std::string, std::string>>> bls_dirs() const {
    std::vector<std::pair<std::string, std::string>> out;
    std::vector<std::pair<std::string, std::string>> candidates{{"/boot/loader/entries", layout_.boot_fs_dir()}};
    if (!layout_.esp.empty()) candidates.emplace_back(layout_.esp + "/loader/entries", layout_.esp);
    for (auto& c : candidates) {
      auto names = base::list_dir(root_, c.first);
      if (!names) return base::fail(names.error());
      bool any = std::any_of(names->begin(), names->end(), [](const std::string& n) { return n.ends_with(".conf"); });
      if (any) out.push_back(std::move(c));
    }
    return out;
  }

  // Returns what the kernel needs to mount root (for the initrd check).
  RootFsModules check_modules(const std::string& version, const std::string& what) {
    std::string dir = "/lib/modules/" + version;
    auto st = root_.stat(dir);
    if (!st || !S_ISDIR(st->st_mode)) {
      add(Severity::block, dir,
          fmt::format("{} has no modules directory {}: it would boot without drivers for disks, filesystems "
                      "and network",
                      what, dir),
          fmt::format("apt-get install --reinstall linux-image-{}", version));
      return {};
    }
    if (!is_file(dir + "/modules.dep")) {
      add(Severity::block, dir + "/modules.dep",
          fmt::format("{} has no {}/modules.dep ({}): no module could be loaded at boot", what, dir,
                      not_a_file(dir + "/modules.dep")),
          fmt::format("depmod {}", version));
      return {};
    }
    // A UKI of an installed kernel names the same modules directory: read it once.
    if (!module_dirs_.insert(version).second) return {};
    return check_module_tree(version, dir);
  }

  // The filesystem type of the root's `/` entry in its fstab, when it names one type.
  std::string root_fstype() const {
    const formats::MountEntry* e = layout_.fstab.find_target("/");
    if (e == nullptr || e->fstype.empty() || e->fstype.find(',') != std::string::npos) return {};
    // Types no module provides: the kernel's own (tmpfs, ramfs) or none named (auto).
    for (const char* virt : {"auto", "none", "rootfs", "tmpfs", "ramfs"})
      if (e->fstype == virt) return {};
    return e->fstype;
  }

  RootFsModules root_fs_modules(const std::string& version, const std::string& dir, const ModulesDep& dep) {
    RootFsModules out;
    out.fstype = root_fstype();
    if (out.fstype.empty()) return out;
    std::string name = module_name(out.fstype + ".ko");
    auto builtin_bytes = root_.read_file(dir + "/modules.builtin", kMaxModulesDep);
    std::set<std::string> builtin = builtin_bytes ? parse_modules_builtin(*builtin_bytes) : std::set<std::string>{};
    if (builtin.count(name) != 0) return out;
    auto it = dep.by_name.find(name);
    if (it == dep.by_name.end()) {  // e.g. ext3, which ext4 provides: "alias fs-ext3 ext4"
      auto aliases = root_.read_file(dir + "/modules.alias", kMaxModulesDep);
      auto target = aliases ? find_alias(*aliases, "fs-" + out.fstype) : std::nullopt;
      if (target) {
        std::string target_name = module_name(*target + ".ko");
        if (builtin.count(target_name) != 0) return out;
        it = dep.by_name.find(target_name);
      }
    }
    if (it == dep.by_name.end()) {
      add(Severity::warn, dir + "/modules.dep",
          fmt::format("kernel {} has no module for the root filesystem type {} (from /etc/fstab), and it is not "
                      "built in: it may not mount its root",
                      version, out.fstype),
          fmt::format("apt-get install --reinstall linux-image-{}", version), "root-fs-module");
      return out;
    }
    out.modules = dep_closure(dep, it->second);
    return out;
  }

  RootFsModules check_module_tree(const std::string& version, const std::string& dir) {
    auto bytes = root_.read_file(dir + "/modules.dep", kMaxModulesDep);
    if (!bytes) {
      add(Severity::block, dir + "/modules.dep", fmt::format("cannot read it: {}", bytes.error().to_string()),
          fmt::format("depmod {}", version), "unreadable");
      return {};
    }
    ModulesDep dep = parse_modules_dep(*bytes);
    RootFsModules rootfs = root_fs_modules(version, dir, dep);
    std::set<std::string> needed(rootfs.modules.begin(), rootfs.modules.end());
    std::vector<std::string> missing;
    for (const auto& [path, deps] : dep.deps) {
      if (is_file(path.starts_with('/') ? path : dir + "/" + path)) continue;
      if (needed.count(path) != 0) {
        add(Severity::block, dir + "/modules.dep",
            fmt::format("{}/modules.dep names {}, needed to mount the {} root filesystem, but it does not exist: "
                        "kernel {} would not mount its root",
                        dir, path, rootfs.fstype, version),
            fmt::format("apt-get install --reinstall linux-image-{} && depmod {}", version, version),
            "missing-module:" + path);
      } else {
        missing.push_back(path);
      }
    }
    if (!missing.empty())
      add(Severity::warn, dir + "/modules.dep",
          fmt::format("{}/modules.dep names {} module(s) that do not exist (first: {}): modprobe of those fails",
                      dir, missing.size(), missing.front()),
          fmt::format("depmod {}", version), "missing-modules");
    check_vermagic(version, dir, needed);
    return rootfs;
  }

  // Every uncompressed module, and the compressed ones outside the kernel package's own
  // kernel/ tree (updates/, extra/, misc/, dkms/: where DKMS and other out-of-tree modules go)
  // or needed for the root filesystem, were built for `version`.
  void check_vermagic(const std::string& version, const std::string& dir, const std::set<std::string>& needed) {
    std::string prefix = dir + "/";
    auto walked = root_.walk(dir, [&](const base::WalkEntry& e) {
      if (e.type != DT_REG || module_name(e.name).empty()) return base::WalkAction::next;
      std::string rel(e.path.substr(prefix.size()));
      bool compressed = strip_module_compression(rel).size() != rel.size();
      if (compressed && rel.starts_with("kernel/") && needed.count(rel) == 0) return base::WalkAction::next;
      check_module_file(version, std::string(e.path), e.dir_fd, e.name);
      return base::WalkAction::next;
    });
    if (!walked)
      add(Severity::warn, dir, fmt::format("cannot walk {}: {}", dir, walked.error().to_string()), {}, "unreadable");
  }

  void check_module_file(const std::string& version, const std::string& path, int dir_fd, std::string_view name) {
    ++out_.items;
    std::string hint =
        fmt::format("rebuild it for {} (dkms autoinstall -k {}) or remove it, then depmod {}", version, version, version);
    auto bad = [&](const std::string& why) {
      add(Severity::block, path,
          fmt::format("the kernel module {} for kernel {} cannot be loaded: {}", path, version, why), hint,
          "module:" + path);
    };
    int raw = ::openat(dir_fd, std::string(name).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (raw < 0) return bad(fmt::format("cannot open it: {}", ::strerror(errno)));
    base::UniqueFd fd(raw);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    auto size = static_cast<std::uint64_t>(st.st_size);
    std::string_view plain = strip_module_compression(name);
    base::Result<std::optional<std::string>> magic;
    if (plain.size() == name.size()) {
      ReadAt read = [&](std::uint64_t off, std::size_t n, std::string* out) {
        out->resize(n);
        return ::pread(fd.get(), out->data(), n, static_cast<off_t>(off)) == static_cast<ssize_t>(n);
      };
      magic = module_vermagic(read, size);
    } else {
      if (size > kMaxModuleFile) return bad(fmt::format("it is larger than {} bytes", kMaxModuleFile));
      std::string packed(size, '\0');
      if (::pread(fd.get(), packed.data(), size, 0) != static_cast<ssize_t>(size)) return bad("cannot read it");
      auto c = detect_compression(packed);
      if (!c) return bad("its compressed data has no known magic");
      auto data = decompress_all(*c, packed, kMaxModuleBytes);
      if (!data) return bad(data.error().message);
      ReadAt read = [&](std::uint64_t off, std::size_t n, std::string* out) {
        if (off > data->size() || n > data->size() - off) return false;
        out->assign(*data, off, n);
        return true;
      };
      magic = module_vermagic(read, data->size());
    }
    if (!magic) return bad(magic.error().message);
    if (!*magic) return bad("its .modinfo has no vermagic (the kernel refuses such a module)");
    std::string_view built_for = **magic;
    built_for = built_for.substr(0, built_for.find(' '));
    if (built_for == version) return;
    add(Severity::block, path,
        fmt::format("the kernel module {} was built for kernel {} (vermagic \"{}\"), not {}: modprobe refuses it "
                    "(\"Exec format error\")",
                    path, built_for, base::trim(**magic), version),
        hint, "vermagic:" + path);
  }

  void check_kernel(const InstalledKernel& k) {
    ++out_.items;
    const std::string& v = k.version;
    std::string what = "kernel " + v;
    std::string initrd = "/boot/initrd.img-" + v;
    auto st = root_.stat(initrd);
    std::string valid_initrd;  // the initrd to read, when there is a non-empty one
    if (!st || !S_ISREG(st->st_mode)) {
      std::string dracut = "/boot/initramfs-" + v + ".img";
      if (!is_file(dracut))
        add(Severity::block, initrd,
            fmt::format("{} has no initrd ({} {}): it would not find its root filesystem", what, initrd,
                        not_a_file(initrd)),
            fmt::format("update-initramfs -c -k {}", v));
      else if (file_size(dracut) > 0)
        valid_initrd = dracut;
    } else if (st->st_size == 0) {
      add(Severity::block, initrd, fmt::format("the initrd of {} is empty (0 bytes)", what),
          fmt::format("update-initramfs -u -k {}", v));
    } else {
      valid_initrd = initrd;
    }
    auto names = base::list_dir(root_, "/boot");
    if (names) {
      std::string prefix = "initrd.img-" + v + ".";
      for (const auto& n : *names) {
        if (!n.starts_with(prefix)) continue;
        std::string_view rest = std::string_view(n).substr(prefix.size());
        if (rest == "new" || rest.starts_with("dpkg-"))
          add(Severity::warn, "/boot/" + n,
              fmt::format("an interrupted initrd update left /boot/{} behind: the initrd of {} may be stale", n, what),
              fmt::format("update-initramfs -u -k {} && rm /boot/{}", v, n));
      }
    }
    RootFsModules rootfs = check_modules(v, what);
    if (!valid_initrd.empty()) check_initrd(valid_initrd, v, rootfs);
    auto head = read_head(root_, k.image, kImageHead);
    if (!head) {
      add(Severity::block, k.image, fmt::format("cannot read {}: {}", k.image, head.error().to_string()),
          fmt::format("apt-get install --reinstall linux-image-{}", v), "unreadable");
      return;
    }
    auto min_size = bzimage_min_size(*head);
    std::uint64_t size = file_size(k.image);
    if (min_size && size < *min_size)
      add(Severity::block, k.image,
          fmt::format("{} is truncated: it has {} bytes, its own bzImage header says at least {}: the boot loader "
                      "would load a broken kernel",
                      k.image, size, *min_size),
          fmt::format("apt-get install --reinstall linux-image-{}", v), "truncated");
    auto inside = bzimage_version(*head);
    if (!inside) {
      add(Severity::info, k.image,
          fmt::format("{} is not a bzImage with a version string (compressed or another architecture): "
                      "its version was not compared with its name",
                      k.image),
          {}, "version-unchecked");
    } else if (*inside != v) {
      add(Severity::block, k.image,
          fmt::format("{} is named for {} but contains kernel {}: modules and initrd would not match", k.image, v,
                      *inside),
          fmt::format("apt-get install --reinstall linux-image-{}", v), "version-mismatch");
    }
  }

  // The initrd unpacks to its end as the kernel unpacks it, has an /init, and holds the
  // modules its kernel needs to mount the root filesystem.
  void check_initrd(const std::string& path, const std::string& v, const RootFsModules& rootfs) {
    std::string hint = fmt::format("update-initramfs -u -k {}", v);
    auto fd = base::open_regular(root_, path);
    if (!fd) {
      add(Severity::block, path, fmt::format("cannot read the initrd of kernel {}: {}", v, fd.error().to_string()),
          hint, "initrd-unreadable");
      return;
    }
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    std::map<std::string, std::string> wanted;  // module path without compression suffix -> as in modules.dep
    for (const auto& m : rootfs.modules) wanted.emplace(strip_module_compression(m), m);
    std::set<std::string> found;
    bool init = false;
    std::string in_usr = "usr/lib/modules/" + v + "/", in_lib = "lib/modules/" + v + "/";
    InitramfsScan scan = scan_initramfs(fd_source(fd->get()), [&](const InitramfsEntry& e) {
      if (e.name == "init") init = true;
      std::string_view rel = e.name;
      if (rel.starts_with(in_usr)) {
        rel.remove_prefix(in_usr.size());
      } else if (rel.starts_with(in_lib)) {
        rel.remove_prefix(in_lib.size());
      } else {
        return;
      }
      auto it = wanted.find(std::string(strip_module_compression(rel)));
      if (it != wanted.end()) found.insert(it->first);
    });
    using Kind = InitramfsProblem::Kind;
    if (scan.problem) {
      const InitramfsProblem& p = *scan.problem;
      switch (p.kind) {
        case Kind::truncated:
        case Kind::corrupt:
        case Kind::read_error:
          add(Severity::block, path,
              fmt::format("the initrd of kernel {} is damaged: {}: the kernel would not unpack it (\"Initramfs "
                          "unpacking failed\")",
                          v, p.message),
              hint, "initrd-damaged");
          return;
        case Kind::unsupported:
          add(Severity::info, path, fmt::format("the initrd of kernel {} was not read: {}", v, p.message), {},
              "initrd-unchecked");
          return;
        case Kind::too_large:
          add(Severity::warn, path, fmt::format("the initrd of kernel {} was not read to its end: {}", v, p.message),
              {}, "initrd-unchecked");
          return;
        case Kind::trailing:
          add(Severity::warn, path, fmt::format("the initrd of kernel {} has trailing data: {}", v, p.message), hint,
              "initrd-trailing");
          break;
      }
    }
    if (!init) {
      add(Severity::block, path,
          fmt::format("the initrd of kernel {} has no /init: the kernel would panic (\"No working init found\")", v),
          hint, "initrd-no-init");
    }
    std::vector<std::string> absent;
    for (const auto& [plain, as_listed] : wanted)
      if (found.count(plain) == 0) absent.push_back(as_listed);
    if (!absent.empty())
      add(Severity::block, path,
          fmt::format("the initrd of kernel {} lacks {} needed to mount the {} root filesystem (/etc/fstab): it "
                      "would not find its root",
                      v, base::join(absent, ", "), rootfs.fstype),
          hint, "initrd-root-modules");
  }

  void check_uki(const std::string& path) {
    ++out_.items;
    auto head = read_head(root_, path, kUkiHead);
    if (!head) {
      add(Severity::block, path, fmt::format("cannot read the unified kernel image: {}", head.error().to_string()), {},
          "unreadable");
      return;
    }
    auto uname = uki_uname(*head);
    if (!uname) {
      add(Severity::info, path, "the unified kernel image has no .uname section: its modules directory was not checked",
          {}, "uname-unknown");
      return;
    }
    check_modules(*uname, "the unified kernel image " + path + " (kernel " + *uname + ")");
  }

  static constexpr const char* kLinkDirs[] = {"", "/boot"};
  static constexpr const char* kLinkNames[] = {"vmlinuz", "initrd.img", "vmlinuz.old", "initrd.img.old"};

  bool has_kernel_links() const {
    for (const char* dir : kLinkDirs)
      for (const char* name : kLinkNames) {
        auto lst = root_.stat(std::string(dir) + "/" + name, base::Follow::no);
        if (lst && S_ISLNK(lst->st_mode)) return true;
      }
    return false;
  }

  void check_links() {
    for (const char* dir : kLinkDirs) {
      for (const char* name : kLinkNames) {
        std::string link = std::string(dir) + "/" + name;
        auto lst = root_.stat(link, base::Follow::no);
        if (!lst || !S_ISLNK(lst->st_mode)) continue;
        ++out_.items;
        if (is_file(link)) continue;
        auto target = root_.readlink(link);
        bool old = std::string_view(name).ends_with(".old");
        add(old ? Severity::warn : Severity::block, link,
            fmt::format("{} points to {}, which does not exist{}", link, target ? *target : "?",
                        old ? "" : ": boot loaders configured with this link would not find a kernel"),
            "point it at an installed kernel (ln -sfn boot/vmlinuz-VERSION /vmlinuz) or remove it");
      }
    }
  }

  // True when the boot loader path `p` on the filesystem mounted at `base` is a file. On the
  // root filesystem /boot is only a mount point when /boot is separate. On btrfs, boot loaders
  // see paths from the top of the filesystem, so a root mounted from subvolume @ has its kernels
  // at /@/boot/…: a leading component that is the mount's subvol= (or an @-named subvolume)
  // is stripped when the path does not exist as written.
  bool exists_on_fs(const std::string& base, std::string_view p) const {
    auto exists = [&](std::string_view rel) {
      std::string full = base::normalize_path(base + "/" + std::string(rel));
      if (base == "/" && layout_.boot_separate() && full.starts_with("/boot/")) return false;
      return is_file(full);
    };
    if (exists(p)) return true;
    std::string norm = base::normalize_path(p);
    std::vector<std::string> prefixes;
    if (const formats::MountEntry* e = layout_.fstab.find_target(base)) {
      for (auto opt : base::split(e->options, ','))
        if (opt.starts_with("subvol=")) prefixes.push_back(base::normalize_path(opt.substr(7)));
    }
    std::size_t second = norm.find('/', 1);
    if (norm.size() > 2 && norm[1] == '@' && second != std::string::npos) prefixes.push_back(norm.substr(0, second));
    for (const auto& prefix : prefixes) {
      if (prefix != "/" && norm.starts_with(prefix + "/") && exists(std::string_view(norm).substr(prefix.size())))
        return true;
    }
    return false;
  }

  // The root-relative directory GRUB reads an entry's files from, or "" with `why` set.
  std::string grub_base(const GrubEntry& e, const GrubPath& p, std::string* why) const {
    if (p.unresolved) {
      *why = fmt::format("it uses a variable ({}) only GRUB knows", p.raw);
      return {};
    }
    const GrubRoot& r = e.root;
    if (!p.device.empty() && !(r.kind == GrubRoot::Kind::device && r.value == p.device)) {
      *why = fmt::format("it names the GRUB device ({}), which cannot be mapped to a directory", p.device);
      return {};
    }
    if (r.kind == GrubRoot::Kind::fs_uuid || r.kind == GrubRoot::Kind::fs_label) {
      std::string key = (r.kind == GrubRoot::Kind::fs_uuid ? "UUID=" : "LABEL=") + r.value;
      auto it = layout_.mounts_by_source.find(key);
      if (it != layout_.mounts_by_source.end()) return it->second;
    }
    return layout_.boot_fs_dir();
  }

  void check_grub(const std::string& cfg_path) {
    auto bytes = root_.read_file(cfg_path, base::limits::kBootConfigBytes);
    if (!bytes) {
      add(Severity::block, cfg_path, fmt::format("cannot read {}: {}", cfg_path, bytes.error().to_string()),
          "update-grub", "unreadable");
      return;
    }
    GrubConfig cfg = formats::parse_grub_cfg(*bytes);
    struct Missing {
      std::string first_entry;
      std::size_t line = 0;
      std::string written;
      std::string fs;
      int count = 0;
    };
    std::map<std::string, Missing> missing;  // by root-relative path
    std::map<std::string, std::string> skipped;
    for (const auto& e : cfg.entries) {
      ++out_.items;
      std::vector<const GrubPath*> paths;
      if (e.kernel) paths.push_back(&*e.kernel);
      for (const auto& i : e.initrds) paths.push_back(&i);
      for (const GrubPath* p : paths) {
        std::string why;
        std::string base = grub_base(e, *p, &why);
        if (base.empty()) {
          skipped.emplace(p->raw, why);
          continue;
        }
        std::string full = base::normalize_path(base + "/" + p->path);
        if (exists_on_fs(base, p->path)) continue;
        Missing& m = missing[full];
        if (m.count++ == 0) {
          m.first_entry = GrubConfig::title_path(e);
          m.line = e.line;
          m.written = p->path;
          m.fs = base == "/" ? "the root filesystem" : "the " + base + " filesystem";
        }
      }
    }
    for (const auto& [full, m] : missing) {
      add(Severity::block, cfg_path,
          fmt::format("GRUB entry '{}' (line {}{}) loads {} from {}, but {} does not exist: that entry "
                      "would not boot",
                      m.first_entry, m.line, m.count > 1 ? fmt::format(", and {} more", m.count - 1) : "", m.written,
                      m.fs, full),
          "update-grub", "missing:" + full);
    }
    for (const auto& [raw, why] : skipped)
      add(Severity::info, cfg_path, fmt::format("the GRUB path {} was not checked: {}", raw, why), {},
          "unchecked:" + raw);
    check_grubenv(cfg);
  }

  void check_grubenv(const GrubConfig& cfg) {
    const std::string path = "/boot/grub/grubenv";
    if (!is_file(path)) return;
    auto bytes = root_.read_file(path, base::limits::kConfigFileBytes);
    if (!bytes) {
      add(Severity::warn, path, "cannot read the GRUB environment block: " + bytes.error().to_string(),
          "grub-editenv /boot/grub/grubenv create", "unreadable");
      return;
    }
    if (bytes->size() != kGrubEnvSize)
      add(Severity::warn, path,
          fmt::format("the GRUB environment block is {} bytes, GRUB reads only exactly {}", bytes->size(),
                      kGrubEnvSize),
          "grub-editenv /boot/grub/grubenv create", "size");
    auto env = parse_grubenv(*bytes);
    if (!env) {
      add(Severity::warn, path, "the GRUB environment block has no '# GRUB Environment Block' header",
          "grub-editenv /boot/grub/grubenv create", "header");
      return;
    }
    if (cfg.entries.empty()) return;
    for (const char* key : {"saved_entry", "next_entry"}) {
      auto v = env->get(key);
      if (!v || v->empty() || cfg.selects(*v)) continue;
      add(Severity::warn, path,
          fmt::format("{}={} names no entry of grub.cfg: GRUB would boot its first entry instead", key, *v),
          fmt::format("grub-set-default or grub-editenv {} unset {}", path, key), std::string("unknown-") + key);
    }
  }

  void check_bls_dir(const std::string& dir, const std::string& base) {
    auto names = base::list_dir(root_, dir);
    if (!names) return;
    for (const auto& n : *names) {
      if (!n.ends_with(".conf")) continue;
      std::string entry_path = dir + "/" + n;
      auto bytes = root_.read_file(entry_path, base::limits::kConfigFileBytes);
      if (!bytes) continue;
      ++out_.items;
      BlsEntry e = parse_bls_entry(*bytes);
      std::vector<std::pair<std::string, std::string>> files;  // (key, path)
      if (!e.kernel.empty()) files.emplace_back("linux", e.kernel);
      for (const auto& i : e.initrd) files.emplace_back("initrd", i);
      if (!e.efi.empty()) files.emplace_back("efi", e.efi);
      if (!e.devicetree.empty()) files.emplace_back("devicetree", e.devicetree);
      for (const auto& [key, p] : files) {
        std::string full = base::normalize_path(base + "/" + p);
        if (exists_on_fs(base, p)) continue;
        add(Severity::block, entry_path,
            fmt::format("boot entry '{}' names {} {}, but {} does not exist", e.title.empty() ? n : e.title, key, p,
                        full),
            "remove the entry or reinstall its kernel (kernel-install add VERSION /boot/vmlinuz-VERSION)",
            "missing:" + full);
      }
    }
  }

  std::uint64_t file_size(const std::string& path) const {
    auto st = root_.stat(path);
    return st && S_ISREG(st->st_mode) ? static_cast<std::uint64_t>(st->st_size) : 0;
  }

  void check_space(const std::vector<std::string>& ukis) {
    if (!kernels_.empty()) {
      const InstalledKernel& newest = kernels_.back();
      std::uint64_t image = file_size(newest.image);
      std::uint64_t initrd = file_size("/boot/initrd.img-" + newest.version);
      check_fs_space("/boot", image + initrd, initrd, "kernel " + newest.version + " and its initrd", "its initrd");
    }
    if (!layout_.esp.empty() && !ukis.empty()) {
      std::uint64_t largest = 0;
      for (const auto& u : ukis) largest = std::max(largest, file_size(u));
      check_fs_space(layout_.esp, largest, 0, "the largest unified kernel image", "");
    }
  }

  // Warns when `dir`'s filesystem has less than `next` bytes free, blocks below `rebuild`.
  void check_fs_space(const std::string& dir, std::uint64_t next, std::uint64_t rebuild, const std::string& next_what,
                      const std::string& rebuild_what) {
    auto fd = root_.open(dir, O_RDONLY | O_DIRECTORY);
    if (!fd) return;
    struct statvfs vfs {};
    if (::fstatvfs(fd->get(), &vfs) != 0) return;
    std::uint64_t avail = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (rebuild > 0 && avail < rebuild) {
      add(Severity::block, dir,
          fmt::format("{} has {} free, less than the {} needed to rebuild {}: the next update-initramfs will fail", dir,
                      mib(avail), mib(rebuild), rebuild_what),
          "apt-get autoremove --purge (old kernels), or make the filesystem larger", "space");
    } else if (avail < next) {
      add(Severity::warn, dir,
          fmt::format("{} has {} free, not enough for another copy of {} ({}): the next kernel upgrade would fail", dir,
                      mib(avail), next_what, mib(next)),
          "apt-get autoremove --purge (old kernels), or make the filesystem larger", "space");
    }
    if (vfs.f_files > 0) {  // 0 on filesystems without an inode limit (vfat, btrfs)
      if (vfs.f_favail == 0) {
        add(Severity::block, dir, fmt::format("{} has no free inodes: no new file can be created there", dir),
            "remove unused files from " + dir, "inodes");
      } else if (vfs.f_favail < 8) {
        add(Severity::warn, dir,
            fmt::format("{} has only {} free inodes: a kernel upgrade needs at least 4", dir, vfs.f_favail),
            "remove unused files from " + dir, "inodes");
      }
    }
  }

  void check_live_modules() {
    if (!ctx_.live) return;
    struct utsname u {};
    if (::uname(&u) != 0) return;
    std::string dir = std::string("/lib/modules/") + u.release;
    auto st = root_.stat(dir);
    if (st && S_ISDIR(st->st_mode)) return;
    add(Severity::warn, dir,
        fmt::format("the running kernel {} has no modules directory any more: modules it has not loaded yet "
                    "(filesystems, USB, netfilter) cannot be loaded until the next reboot",
                    u.release),
        "reboot into an installed kernel soon", "running-modules");
  }

  const CheckContext& ctx_;
  const base::Root& root_;
  BootLayout layout_;
  std::vector<InstalledKernel> kernels_;
  std::set<std::string> module_dirs_;  // versions whose module tree was checked
  CheckOutput out_;
};

}  // namespace

base::Result<CheckOutput> BootCheck::run(const CheckContext& ctx) const {
  auto layout = formats::read_boot_layout(ctx.root);
  if (!layout) return base::fail(layout.error());
  return BootRun(ctx, std::move(*layout)).run();
}

}  // namespace guard::checks
