#include "checks/boot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "base/dir.h"
#include "base/strings.h"
#include "checks/bls.h"
#include "checks/grubenv.h"
#include "checks/kernels.h"
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

  void check_modules(const std::string& version, const std::string& what) {
    std::string dir = "/lib/modules/" + version;
    auto st = root_.stat(dir);
    if (!st || !S_ISDIR(st->st_mode)) {
      add(Severity::block, dir,
          fmt::format("{} has no modules directory {}: it would boot without drivers for disks, filesystems "
                      "and network",
                      what, dir),
          fmt::format("apt-get install --reinstall linux-image-{}", version));
      return;
    }
    if (!is_file(dir + "/modules.dep"))
      add(Severity::block, dir + "/modules.dep",
          fmt::format("{} has no {}/modules.dep: no module could be loaded at boot", what, dir),
          fmt::format("depmod {}", version));
  }

  void check_kernel(const InstalledKernel& k) {
    ++out_.items;
    const std::string& v = k.version;
    std::string what = "kernel " + v;
    std::string initrd = "/boot/initrd.img-" + v;
    auto st = root_.stat(initrd);
    if (!st || !S_ISREG(st->st_mode)) {
      if (!is_file("/boot/initramfs-" + v + ".img"))
        add(Severity::block, initrd,
            fmt::format("{} has no initrd ({} is missing): it would not find its root filesystem", what, initrd),
            fmt::format("update-initramfs -c -k {}", v));
    } else if (st->st_size == 0) {
      add(Severity::block, initrd, fmt::format("the initrd of {} is empty (0 bytes)", what),
          fmt::format("update-initramfs -u -k {}", v));
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
    check_modules(v, what);
    auto head = read_head(root_, k.image, kImageHead);
    if (!head) {
      add(Severity::block, k.image, fmt::format("cannot read {}: {}", k.image, head.error().to_string()),
          fmt::format("apt-get install --reinstall linux-image-{}", v), "unreadable");
      return;
    }
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
    auto bytes = root_.read_file(cfg_path, 16ULL << 20);
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
    auto bytes = root_.read_file(path, 1 << 20);
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
      auto bytes = root_.read_file(entry_path, 1 << 20);
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
  CheckOutput out_;
};

}  // namespace

base::Result<CheckOutput> BootCheck::run(const CheckContext& ctx) const {
  auto layout = formats::read_boot_layout(ctx.root);
  if (!layout) return base::fail(layout.error());
  return BootRun(ctx, std::move(*layout)).run();
}

}  // namespace guard::checks
