// A parser for the parts of grub.cfg that decide what GRUB boots: menu entries, submenus, the
// files they load, the kernel command line and the filesystem GRUB reads them from. Takes bytes.
// The boot check judges the entries; the snapshot layout reads the rootflags= they pass.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/root.h"

namespace guard::formats {

// Where GRUB reads an entry's files from, as set by `search --set=root` or `set root=`.
// e.g. {fs_uuid, "1b2c…"} from `search --no-floppy --fs-uuid --set=root 1b2c…`.
struct GrubRoot {
  enum class Kind { unset, fs_uuid, fs_label, file, device, unknown };
  Kind kind = Kind::unset;
  std::string value;  // the UUID, label, file or device ("hd0,gpt2"); empty for unset/unknown
};

// A file a menu entry loads. e.g. "/vmlinuz-6.1.0-13-amd64" (on a separate /boot) or
// "/boot/vmlinuz-6.1.0-13-amd64" (on the root filesystem).
struct GrubPath {
  std::string path;         // without a device prefix
  std::string device;       // "hd0,gpt2" from "(hd0,gpt2)/vmlinuz", "" = the entry's root
  bool unresolved = false;  // held a $variable the parser cannot know (e.g. $prefix, $1)
  std::string raw;          // as written, for messages
};

// One level of the menu path of an entry: the submenus around it and the entry itself.
struct GrubMenuLevel {
  std::string title;
  std::string id;  // from --id or $menuentry_id_option; may be empty
  int index = 0;   // position in its menu (menuentries and submenus count), from 0
};

// One `menuentry`. e.g. title "Debian GNU/Linux, with Linux 6.1.0-13-amd64" inside the submenu
// "Advanced options for Debian GNU/Linux".
struct GrubEntry {
  std::string title;
  std::string id;
  std::vector<GrubMenuLevel> chain;  // enclosing submenus, then the entry itself
  std::optional<GrubPath> kernel;    // linux / linux16 / linuxefi
  // The kernel command line: the words after the kernel, quotes removed, variables expanded.
  // e.g. {"root=UUID=1b2c…", "ro", "rootflags=subvol=@rootfs", "quiet"}
  std::vector<std::string> kernel_args;
  std::vector<GrubPath> initrds;  // initrd / initrd16 / initrdefi, every argument
  GrubRoot root;                  // the root in effect when the kernel line runs
  std::size_t line = 0;           // 1-based line of the `menuentry`
};

struct GrubConfig {
  std::vector<GrubEntry> entries;  // in file order
  // "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-13-amd64"
  [[nodiscard]] static std::string title_path(const GrubEntry& e);
  // True when a saved_entry/next_entry/default value names an entry or submenu: by title, id
  // or index at each '>'-separated level. e.g. "1>2", "gnulinux-advanced-…>gnulinux-6.1…".
  [[nodiscard]] bool selects(std::string_view selector) const;
};

// Parses grub.cfg bytes. Never fails: what it does not understand is ignored. Handles quoting
// ('…', "…", backslashes), comments, `;`, `{ }` blocks, submenus, `function` bodies (skipped),
// `if/then/else/fi` (both branches read in order), `set var=value` and `var=value`.
[[nodiscard]] GrubConfig parse_grub_cfg(std::string_view bytes);

// The root's grub.cfg: the first of /boot/grub/grub.cfg and /boot/grub2/grub.cfg that exists and
// is not a directory (links followed inside the root; a FIFO or device there is returned, for
// the reader to refuse), or "" when there is none.
[[nodiscard]] std::string find_grub_cfg(const base::Root& root);

}  // namespace guard::formats
