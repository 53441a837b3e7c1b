// A kernel's module tree as depmod and modprobe see it: modules.dep, modules.builtin,
// modules.alias, and the `vermagic=` a module carries in its .modinfo section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace guard::checks {

// modules.dep: each module path (relative to /lib/modules/VER) and the modules it needs, e.g.
// "kernel/fs/btrfs/btrfs.ko.xz: kernel/crypto/xor.ko.xz kernel/lib/raid6/raid6_pq.ko.xz".
struct ModulesDep {
  std::map<std::string, std::vector<std::string>> deps;  // by path
  std::map<std::string, std::string> by_name;            // "btrfs" -> "kernel/fs/btrfs/btrfs.ko.xz"
  std::vector<std::size_t> bad_lines;                    // 1-based lines without "path:"
};
[[nodiscard]] ModulesDep parse_modules_dep(std::string_view bytes);

// The module name modprobe uses for a path: basename without .ko[.xz|.zst|.gz], '-' as '_'.
// e.g. "kernel/drivers/md/dm-mod.ko.xz" -> "dm_mod"; "" when it is not a module file name.
[[nodiscard]] std::string module_name(std::string_view path);
// `path` without a compression suffix: "kernel/fs/btrfs/btrfs.ko.zst" -> "kernel/fs/btrfs/btrfs.ko".
[[nodiscard]] std::string_view strip_module_compression(std::string_view path);

// The names of modules built into the kernel (modules.builtin lists their paths).
[[nodiscard]] std::set<std::string> parse_modules_builtin(std::string_view bytes);

// The module an alias of modules.alias names, e.g. ("…alias fs-ext3 ext4…", "fs-ext3") -> "ext4".
[[nodiscard]] std::optional<std::string> find_alias(std::string_view modules_alias, std::string_view alias);

// `path` and every module it needs, transitively, in modules.dep order from `path`.
[[nodiscard]] std::vector<std::string> dep_closure(const ModulesDep& dep, const std::string& path);

// Reads `n` bytes at offset `off` of a file into `out`; false when they are not all there.
using ReadAt = std::function<bool(std::uint64_t off, std::size_t n, std::string* out)>;

// The value of `vermagic=` in the .modinfo section of the ELF relocatable behind `read`, e.g.
// "6.1.0-13-amd64 SMP preempt mod_unload modversions "; nullopt when .modinfo has none. Fails
// when it is not an ELF file with section headers (truncated, not a module).
[[nodiscard]] base::Result<std::optional<std::string>> module_vermagic(const ReadAt& read, std::uint64_t file_size);

}  // namespace guard::checks
