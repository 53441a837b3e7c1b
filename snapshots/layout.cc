#include "snapshots/layout.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/input_limits.h"
#include "base/root.h"
#include "base/strings.h"
#include "formats/boot_layout.h"
#include "formats/grub_cfg.h"
#include "formats/mount_table.h"
#include "snapshots/backend.h"
#include "snapshots/btrfs.h"

namespace guard::snapshots {
namespace {

// Appends the subvol=/subvolid= options of one option string.
void add_option_pins(const std::string& options, const std::string& source, std::vector<SubvolPin>& pins) {
  for (const char* name : {"subvol", "subvolid"}) {
    auto v = formats::get_option(options, name);
    if (!v) continue;
    SubvolPin pin{source, name, *v};
    bool dup = false;
    for (const auto& p : pins) dup = dup || (p.source == pin.source && p.option == pin.option && p.value == pin.value);
    if (!dup) pins.push_back(std::move(pin));
  }
}

// Appends the pins of one kernel command-line word: rootflags=subvol=@,... (quotes allowed).
void add_rootflags_pins(std::string_view word, const std::string& source, std::vector<SubvolPin>& pins) {
  constexpr std::string_view key = "rootflags=";
  if (word.substr(0, key.size()) != key) return;
  std::string opts(word.substr(key.size()));
  if (opts.size() >= 2 && (opts.front() == '"' || opts.front() == '\'')) opts = opts.substr(1, opts.size() - 2);
  add_option_pins(opts, source, pins);
}

std::string strip_slashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

bool Layout::pinned_by_path() const {
  for (const auto& p : pins)
    if (p.option == "subvol") return true;
  return false;
}

bool Layout::pinned_by_id() const {
  for (const auto& p : pins)
    if (p.option == "subvolid") return true;
  return false;
}

bool in_snapshot_store(std::string_view subvol_path) {
  std::string p = strip_slashes(subvol_path);
  constexpr std::string_view store = kStoreName;
  return p == store || (p.size() > store.size() && p.compare(0, store.size(), store) == 0 && p[store.size()] == '/');
}

base::Result<RollbackTarget> rollback_target(const Layout& layout) {
  RollbackTarget t;
  std::string root = strip_slashes(layout.subvol_path);
  if (in_snapshot_store(root)) t.running_from = root;
  std::vector<std::string> values;
  std::string named;  // every subvol= pin of the root, for the messages
  for (const auto& p : layout.pins) {
    if (p.option != "subvol") continue;
    std::string v = strip_slashes(p.value);
    // The fallback entry's own rootflags (literally ${ug_fallback_rootflags} in grub.cfg, the
    // snapshot on the fallback boot's command line) names the snapshot, not the root.
    if (v.find('$') != std::string::npos || in_snapshot_store(v)) continue;
    named += (named.empty() ? "" : ", ") + p.source + ": subvol=" + p.value;
    if (std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
  }
  if (values.size() > 1)
    return base::fail(kRefused, layout.root_dir,
                      "the places that pin the root subvolume disagree (" + named +
                          "): a rollback cannot know which subvolume boots; make /etc/fstab, GRUB_CMDLINE_LINUX "
                          "and grub.cfg (update-grub) name one subvolume");
  if (values.empty()) {
    if (!t.running_from.empty())
      return base::fail(kRefused, layout.root_dir,
                        "the root is " + t.running_from +
                            ", a subvolume of the snapshot store (booted from a snapshot?), and no subvol= in fstab, "
                            "the kernel command line or grub.cfg names the root subvolume it stands in for: nothing "
                            "to roll back into; boot the normal entry, or mount the top level and use --root "
                            "<top>/<root subvolume>");
    t.subvol_path = root;
    return t;
  }
  t.subvol_path = values.front();
  if (t.running_from.empty() && t.subvol_path != root)
    return base::fail(kRefused, layout.root_dir,
                      "the root is subvolume " + (root.empty() ? std::string("<top level>") : root) +
                          " but the boot configuration pins " + t.subvol_path + " (" + named +
                          "): a rollback of this root would not change what boots");
  return t;
}

std::vector<SubvolPin> parse_cmdline_pins(std::string_view cmdline, const std::string& source) {
  std::vector<SubvolPin> pins;
  for (auto word : base::split_ws(cmdline)) add_rootflags_pins(word, source, pins);
  return pins;
}

std::vector<SubvolPin> parse_grub_pins(std::string_view grub_cfg) {
  std::vector<SubvolPin> pins;
  for (const auto& entry : formats::parse_grub_cfg(grub_cfg).entries)
    for (const auto& word : entry.kernel_args) add_rootflags_pins(word, "grub.cfg", pins);
  return pins;
}

base::Result<Layout> detect_layout(const std::string& root_dir, DetectOptions options) {
  Layout layout;
  layout.root_dir = root_dir;
  char real_buf[PATH_MAX];
  if (!::realpath(root_dir.c_str(), real_buf))
    return base::fail_errno("realpath", root_dir, errno, "cannot find the root");
  std::string real = real_buf;
  auto root = base::Root::open(real);
  if (!root) return base::fail(root.error());
  layout.live = root->is_host_root();

  auto mounts = formats::MountTable::mountinfo();
  if (!mounts) return base::fail(mounts.error());
  auto mount = mounts->find_mountpoint(real);
  if (!mount) return base::fail("mnt_table_find_mountpoint", real, "no mount contains this path");
  layout.fstype = mount->fstype;
  layout.mount_point = mount->target;
  layout.device = mount->source;
  layout.mount_fs_root = mount->fs_root;
  struct statfs sfs {};
  if (::statfs(real.c_str(), &sfs) == 0 && sfs.f_type == BTRFS_SUPER_MAGIC) layout.fstype = "btrfs";

  if (layout.btrfs()) {
    auto is_sub = btrfs::is_subvolume(real);
    if (!is_sub) return base::fail(is_sub.error());
    layout.is_subvolume = *is_sub;
    auto id = btrfs::subvolume_id(real);
    if (!id) return base::fail(id.error());
    layout.subvol_id = *id;
    auto path = btrfs::subvolume_path(real, *id);
    if (!path) return base::fail(path.error());
    layout.subvol_path = strip_slashes(*path);
    auto def = btrfs::default_subvolume(real);
    if (!def) return base::fail(def.error());
    layout.default_subvol_id = *def;
    if (layout.is_subvolume) {
      auto subs = btrfs::list_subvolumes(real, 0);
      if (!subs) return base::fail(subs.error());
      for (const auto& s : *subs) {
        // The guard's own snapshots live at the top level; when the top level is the root they
        // are below it, but they are not part of it.
        if (s.path == "@upgrade-guard" || s.path.rfind("@upgrade-guard/", 0) == 0) continue;
        layout.nested.push_back(NestedSubvolume{"/" + s.path, s.id});
      }
    }
  }

  // /boot and the ESP, and the root's fstab they come from.
  auto boot = formats::read_boot_layout(*root);
  if (!boot) return base::fail(boot.error());
  layout.boot_separate = boot->boot_mounted;
  layout.boot_fstype = boot->boot_fstype;
  layout.esp_separate = !boot->esp_mount.empty();
  layout.esp_path = boot->esp_mount;

  // Pins: the root's own fstab, the live kernel command line, the root's grub.cfg.
  for (const auto& e : boot->fstab.entries)
    if (e.target == "/") add_option_pins(e.options, "fstab", layout.pins);
  bool cmdline = options.cmdline == DetectOptions::Cmdline::yes ||
                 (options.cmdline == DetectOptions::Cmdline::detect && layout.live);
  if (cmdline) {
    auto host = base::Root::open("/");
    if (host) {
      if (auto text = host->read_file("/proc/cmdline", 1 << 20)) {
        for (auto& p : parse_cmdline_pins(*text, "cmdline")) layout.pins.push_back(std::move(p));
      }
    }
  }
  if (std::string grub_cfg = formats::find_grub_cfg(*root); !grub_cfg.empty()) {
    if (auto text = root->read_file(grub_cfg, base::limits::kBootConfigBytes))
      for (auto& p : parse_grub_pins(*text)) layout.pins.push_back(std::move(p));
  }

  auto snapper = root->exists("/.snapshots", base::Follow::no);
  layout.snapper = snapper && *snapper;
  return layout;
}

std::string render_layout_text(const Layout& l) {
  std::string out;
  out += "root:        " + l.root_dir + (l.live ? " (live system)" : "") + "\n";
  out += "filesystem:  " + l.fstype + " on " + l.device + " (mounted at " + l.mount_point + ")\n";
  if (l.btrfs()) {
    out += "subvolume:   " + (l.subvol_path.empty() ? std::string("<top level>") : l.subvol_path) + " (id " +
           std::to_string(l.subvol_id) + (l.is_subvolume ? "" : ", root is not the subvolume's top") +
           "), default subvolume id " + std::to_string(l.default_subvol_id) + "\n";
    std::string pins;
    for (const auto& p : l.pins) pins += (pins.empty() ? "" : ", ") + p.source + ": " + p.option + "=" + p.value;
    out +=
        "pinned by:   " + (pins.empty() ? std::string("nothing (rollback sets the default subvolume)") : pins) + "\n";
    if (l.pinned_by_id())
      out += "             subvolid= pins the root by id: automatic rollback is refused\n";
    else if (l.pinned_by_path())
      out += "             rollback exchanges the root directory with the restored one\n";
    for (const auto& n : l.nested)
      out += "nested:      " + n.path + " (id " + std::to_string(n.id) +
             "): not in snapshots; carried into a restored root\n";
    if (l.snapper) out += "snapper:     /.snapshots present (left alone)\n";
    out += "covers:      every file of the root subvolume, the package database included\n";
  } else {
    out += "covers:      /etc, /boot, /var/lib/dpkg, /var/lib/apt copied (copy backend); binaries are NOT restorable\n";
  }
  out += "/boot:       " +
         std::string(l.boot_separate ? "separate " + l.boot_fstype + " filesystem: files captured beside each snapshot"
                                     : "inside the root") +
         "\n";
  if (l.esp_separate)
    out += "ESP:         " + l.esp_path + " separate filesystem: files captured beside each snapshot\n";
  return out;
}

std::string render_layout_json(const Layout& l) {
  nlohmann::json j;
  j["root_dir"] = l.root_dir;
  j["live"] = l.live;
  j["fstype"] = l.fstype;
  j["mount_point"] = l.mount_point;
  j["device"] = l.device;
  if (l.btrfs()) {
    j["is_subvolume"] = l.is_subvolume;
    j["subvol_id"] = l.subvol_id;
    j["subvol_path"] = l.subvol_path;
    j["default_subvol_id"] = l.default_subvol_id;
    j["pins"] = nlohmann::json::array();
    for (const auto& p : l.pins) j["pins"].push_back({{"source", p.source}, {"option", p.option}, {"value", p.value}});
    j["nested"] = nlohmann::json::array();
    for (const auto& n : l.nested) j["nested"].push_back({{"path", n.path}, {"id", n.id}});
    j["snapper"] = l.snapper;
  }
  j["boot_separate"] = l.boot_separate;
  j["boot_fstype"] = l.boot_fstype;
  j["esp_separate"] = l.esp_separate;
  j["esp_path"] = l.esp_path;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace guard::snapshots
