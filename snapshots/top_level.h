// The btrfs top level (subvolid=5), where the guard keeps its snapshots beside the root.
#pragma once

#include <string>

#include "base/error.h"

namespace guard::snapshots {

// Where the top level is mounted when the root's own mount is not the top level.
inline constexpr const char* kTopMountPoint = "/run/upgrade-guard/top";

// A mount of the top-level subvolume of one btrfs filesystem, unmounted (lazily, MNT_DETACH,
// so open descriptors below it stay valid) when the object is destroyed. Either owns a mount
// it made (mount(2) with subvolid=5, then MS_PRIVATE so nothing propagates to or from it) or
// borrows an existing top-level mount and leaves it alone.
//
// The guard's main() moved it into a private mount namespace (base/mount_namespace.h), so the
// mount exists only there and ends with the process, even on SIGKILL; MS_PRIVATE keeps it out
// of namespaces copied from ours. A mount an older version left at `mount_point` in the host's
// namespace is detached first (a warning says so).
class TopLevelMount {
 public:
  // Mounts subvolid=5 of `device` at `mount_point` (created if missing).
  // e.g. mount("/dev/vda2") -> path() "/run/upgrade-guard/top".
  [[nodiscard]] static base::Result<TopLevelMount> mount(const std::string& device,
                                                         const std::string& mount_point = kTopMountPoint);
  // Uses `path`, already the top level of a btrfs filesystem, without unmounting it later.
  // e.g. borrow("/tmp/ug-test.x/top").
  [[nodiscard]] static base::Result<TopLevelMount> borrow(const std::string& path);

  TopLevelMount(TopLevelMount&& other) noexcept;
  TopLevelMount& operator=(TopLevelMount&& other) noexcept;
  TopLevelMount(const TopLevelMount&) = delete;
  TopLevelMount& operator=(const TopLevelMount&) = delete;
  ~TopLevelMount();

  // e.g. "/run/upgrade-guard/top"
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] bool owned() const { return owned_; }
  // Unmounts now (when owned); the destructor then does nothing.
  [[nodiscard]] base::Result<void> unmount();

 private:
  TopLevelMount(std::string path, bool owned) : path_(std::move(path)), owned_(owned) {}
  std::string path_;
  bool owned_ = false;
};

}  // namespace guard::snapshots
