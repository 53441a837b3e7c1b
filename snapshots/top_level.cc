#include "snapshots/top_level.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <utility>

#include "base/log.h"
#include "base/mount_namespace.h"
#include "base/unique_fd.h"
#include "formats/mount_table.h"
#include "snapshots/btrfs.h"
#include "snapshots/tree_copy.h"

#include <fcntl.h>

namespace guard::snapshots {

base::Result<TopLevelMount> TopLevelMount::mount(const std::string& device, const std::string& mount_point) {
  base::UniqueFd slash(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!slash) return base::fail_errno("open", "/");
  if (auto r = make_dirs_at(slash.get(), mount_point); !r) return base::fail(r.error());
  // An earlier version mounted the top level in the host's namespace and left it there when it
  // was killed; mounting again would fail with EBUSY. Nothing of ours uses it (this version's
  // mounts die with their process): detach it here and in the host's namespace.
  if (auto table = formats::MountTable::mountinfo(); table && table->find_target(mount_point)) {
    (void)::umount2(mount_point.c_str(), MNT_DETACH);
    auto host = base::unmount_in_host_namespace(mount_point);
    base::log(base::LogLevel::warning, "",
              "an earlier upgrade-guard, killed while it worked, left the btrfs top level mounted at " +
                  mount_point + (host ? "; unmounted it" : "; unmounting it failed: " + host.error().to_string()));
  }
  if (::mount(device.c_str(), mount_point.c_str(), "btrfs", MS_NOSUID | MS_NODEV | MS_NOATIME, "subvolid=5") != 0)
    return base::fail_errno("mount", mount_point, errno, "cannot mount the btrfs top level of " + device);
  TopLevelMount top(mount_point, true);
  if (::mount(nullptr, mount_point.c_str(), nullptr, MS_PRIVATE, nullptr) != 0)
    return base::fail_errno("mount MS_PRIVATE", mount_point);
  return top;
}

base::Result<TopLevelMount> TopLevelMount::borrow(const std::string& path) {
  auto id = btrfs::subvolume_id(path);
  if (!id) return base::fail(id.error());
  if (*id != btrfs::kTopLevelId)
    return base::fail("borrow", path, "not the btrfs top level (subvolume id " + std::to_string(*id) + ")");
  return TopLevelMount(path, false);
}

TopLevelMount::TopLevelMount(TopLevelMount&& other) noexcept
    : path_(std::move(other.path_)), owned_(std::exchange(other.owned_, false)) {}

TopLevelMount& TopLevelMount::operator=(TopLevelMount&& other) noexcept {
  if (this != &other) {
    (void)unmount();
    path_ = std::move(other.path_);
    owned_ = std::exchange(other.owned_, false);
  }
  return *this;
}

TopLevelMount::~TopLevelMount() {
  (void)unmount();
}

base::Result<void> TopLevelMount::unmount() {
  if (!owned_) return {};
  owned_ = false;
  if (::umount2(path_.c_str(), MNT_DETACH) != 0) return base::fail_errno("umount2", path_);
  return {};
}

}  // namespace guard::snapshots
