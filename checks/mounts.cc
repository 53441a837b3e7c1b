#include "checks/mounts.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <set>

#include <fmt/format.h>

#include "base/strings.h"
#include "checks/block_devices.h"
#include "checks/kernels.h"
#include "formats/fstab.h"

namespace guard::checks {
namespace {

// Filesystems without a device that the kernel provides itself or that are not disks.
const std::set<std::string, std::less<>> kPseudoTypes = {
    "proc",    "sysfs",       "tmpfs",  "devtmpfs",  "devpts",     "cgroup", "cgroup2",  "securityfs",
    "debugfs", "tracefs",     "mqueue", "hugetlbfs", "pstore",     "bpf",    "efivarfs", "configfs",
    "ramfs",   "binfmt_misc", "autofs", "fusectl",   "rpc_pipefs", "nfsd",   "none",     "rootfs"};
const std::set<std::string, std::less<>> kPseudoSources = {"none",     "proc",   "sysfs",   "tmpfs", "devpts",
                                                           "devtmpfs", "cgroup", "cgroup2", "udev",  "shm"};

std::string upper(std::string_view s) {
  std::string out;
  for (char c : s) out += (c == '-' || c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string module_key(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

// What the kernel that will boot supports.
struct KernelSupport {
  std::string version;
  std::set<std::string> builtin_configs;  // "EXT4_FS" from CONFIG_EXT4_FS=y
  std::set<std::string> modules;          // "ext4" from kernel/fs/ext4/ext4.ko.xz or modules.builtin

  bool supports(std::string_view fstype) const {
    FsTypeSupport s = fs_type_support(fstype);
    for (const auto& c : s.configs)
      if (builtin_configs.count(c)) return true;
    for (const auto& m : s.modules)
      if (modules.count(module_key(m))) return true;
    return false;
  }
};

void add_module_name(std::set<std::string>& modules, std::string_view file) {
  std::size_t ko = file.find(".ko");
  if (ko == std::string_view::npos) return;
  std::string_view rest = file.substr(ko);
  if (rest != ".ko" && rest != ".ko.xz" && rest != ".ko.zst" && rest != ".ko.gz") return;
  modules.insert(module_key(file.substr(0, ko)));
}

base::Result<KernelSupport> kernel_support(const base::Root& root, const std::string& version) {
  KernelSupport k;
  k.version = version;
  auto config = root.read_file("/boot/config-" + version, 16ULL << 20);
  if (config) {
    for (auto line : base::split(*config, '\n')) {
      if (!line.starts_with("CONFIG_") || !line.ends_with("=y")) continue;
      k.builtin_configs.emplace(line.substr(7, line.size() - 9));
    }
  }
  std::string dir = "/lib/modules/" + version;
  auto builtin = root.read_file(dir + "/modules.builtin", 16ULL << 20);
  if (builtin)
    for (auto line : base::split(*builtin, '\n')) add_module_name(k.modules, base::basename(base::trim(line)));
  // Filesystem modules live in kernel/fs (in-tree) or updates/ and extra/ (DKMS: zfs…).
  for (const char* sub : {"/kernel/fs", "/updates", "/extra"}) {
    auto exists = root.exists(dir + sub);
    if (!exists || !*exists) continue;
    auto walked = root.walk(dir + sub, [&](const base::WalkEntry& e) {
      if (e.type == DT_REG || e.type == DT_LNK) add_module_name(k.modules, e.name);
      return base::WalkAction::next;
    });
    if (!walked) return base::fail(walked.error());
  }
  return k;
}

}  // namespace

FsTypeSupport fs_type_support(std::string_view fstype) {
  if (fstype == "ext2") return {{"EXT2_FS", "EXT4_USE_FOR_EXT2"}, {"ext2", "ext4"}};
  if (fstype == "ext3") return {{"EXT3_FS", "EXT4_FS"}, {"ext3", "ext4"}};
  if (fstype == "iso9660") return {{"ISO9660_FS"}, {"isofs"}};
  if (fstype == "nfs") return {{"NFS_FS"}, {"nfs"}};
  if (fstype == "nfs4") return {{"NFS_V4"}, {"nfsv4"}};
  if (fstype == "cifs" || fstype == "smb3") return {{"CIFS"}, {"cifs"}};
  if (fstype == "overlay") return {{"OVERLAY_FS"}, {"overlay"}};
  if (fstype == "squashfs") return {{"SQUASHFS"}, {"squashfs"}};
  if (fstype == "fuse" || fstype == "fuseblk" || fstype.starts_with("fuse.")) return {{"FUSE_FS"}, {"fuse"}};
  if (fstype == "ntfs3") return {{"NTFS3_FS"}, {"ntfs3"}};
  if (fstype == "zfs") return {{}, {"zfs"}};
  if (fstype == "9p") return {{"9P_FS"}, {"9p"}};
  if (fstype == "virtiofs") return {{"VIRTIO_FS"}, {"virtiofs"}};
  return {{upper(fstype) + "_FS"}, {std::string(fstype)}};
}

MountsCheck::MountsCheck() : resolver_([](std::string_view spec) { return resolve_device(spec); }) {}

base::Result<CheckOutput> MountsCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  const base::Root& root = ctx.root;
  const std::string path = "/etc/fstab";
  auto bytes = root.read_file(path, 16ULL << 20);
  if (!bytes) {
    if (bytes.error().err == ENOENT) {
      out.skipped = "the root has no /etc/fstab";
      return out;
    }
    return base::fail(bytes.error());
  }
  auto fstab = formats::parse_fstab(*bytes);
  if (!fstab) return base::fail(fstab.error());
  out.items = fstab->entries.size();

  auto add = [&](Severity s, std::string message, std::string hint, std::string id) {
    out.findings.push_back(make_finding("mounts", s, path, std::move(message), std::move(hint), std::move(id)));
  };

  std::vector<std::string_view> lines = base::split(*bytes, '\n');
  for (std::size_t n : fstab->bad_lines) {
    std::string text = n >= 1 && n <= lines.size() ? std::string(base::trim(lines[n - 1])) : std::string();
    add(Severity::block,
        fmt::format("line {} of /etc/fstab cannot be parsed ('{}'): mounting at boot would fail", n, text),
        "fix the line: SOURCE MOUNTPOINT TYPE OPTIONS [DUMP [PASS]]", "unparsable:" + text);
  }

  // Does the root belong to this machine, so that its devices must be here?
  bool machine_owned = ctx.live;
  std::string not_owned_why;
  if (!machine_owned) {
    const formats::MountEntry* slash = fstab->find_target("/");
    if (slash == nullptr) {
      not_owned_why = "the fstab has no / entry";
    } else if (!is_device_spec(slash->source)) {
      not_owned_why = fmt::format("its / entry ({}) names no device", slash->source);
    } else if (!resolver_(slash->source)) {
      not_owned_why = fmt::format("its / entry ({}) is not a device of this machine", slash->source);
    } else {
      machine_owned = true;
    }
  }

  std::optional<KernelSupport> kernel;
  bool kernel_loaded = false;
  std::string no_kernel_why;
  auto need_kernel = [&]() -> base::Result<void> {
    if (kernel_loaded) return {};
    kernel_loaded = true;
    auto kernels = installed_kernels(root);
    if (!kernels) return base::fail(kernels.error());
    if (kernels->empty()) {
      no_kernel_why = "there is no kernel in /boot";
      return {};
    }
    auto k = kernel_support(root, kernels->back().version);
    if (!k) return base::fail(k.error());
    kernel = std::move(*k);
    return {};
  };

  bool device_note = false, type_note = false;
  for (const auto& e : fstab->entries) {
    if (e.noauto || e.nofail) continue;
    if (kPseudoSources.count(e.source) || kPseudoTypes.count(e.fstype)) continue;
    std::string where = e.swap ? std::string("swap") : e.target;
    if (is_device_spec(e.source)) {
      if (machine_owned) {
        if (!resolver_(e.source))
          add(Severity::block,
              fmt::format("{} (for {}) is not a device on this machine: the boot would stop in emergency mode",
                          e.source, where),
              fmt::format("fix the source of {} in /etc/fstab, or add nofail to its options", where),
              "device:" + e.source + ":" + where);
      } else if (!device_note) {
        device_note = true;
        add(Severity::info,
            fmt::format("fstab devices were not checked: the root does not belong to this machine ({})", not_owned_why),
            {}, "devices-unchecked");
      }
    }
    std::vector<std::string_view> options = base::split(e.options, ',');
    bool bind =
        std::any_of(options.begin(), options.end(), [](std::string_view o) { return o == "bind" || o == "rbind"; });
    if (!e.swap && !bind && e.fstype != "auto" && !e.fstype.empty()) {
      auto loaded = need_kernel();
      if (!loaded) return base::fail(loaded.error());
      if (!kernel) {
        if (!type_note) {
          type_note = true;
          add(Severity::info, fmt::format("filesystem types were not checked: {}", no_kernel_why), {},
              "types-unchecked");
        }
      } else {
        // Several types may be listed: "ext4,ext3" means any of them.
        bool known = false;
        for (auto t : base::split(e.fstype, ','))
          if (kernel->supports(t)) known = true;
        if (!known)
          add(Severity::block,
              fmt::format("{} is mounted as {}, which kernel {} does not support (not built in per "
                          "/boot/config-{}, no module in /lib/modules/{})",
                          where, e.fstype, kernel->version, kernel->version, kernel->version),
              fmt::format("fix the type of {} in /etc/fstab, or install the module for {}", where, e.fstype),
              "type:" + where + ":" + e.fstype);
      }
    }
    if (!e.swap && e.target.starts_with("/")) {
      auto st = root.stat(e.target);
      if (!st || !S_ISDIR(st->st_mode))
        add(Severity::warn,
            fmt::format("the mount point {} does not exist in the root (systemd creates it at boot)", e.target),
            fmt::format("mkdir -p {}", e.target), "mountpoint:" + e.target);
    }
  }
  return out;
}

}  // namespace guard::checks
