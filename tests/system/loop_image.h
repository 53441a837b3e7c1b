// Loop-device images for the system tests: created, formatted and mounted here, unmounted
// and detached by RAII even when a test fails.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/common/test_env.h"

namespace guard::testing {

// A sparse image file attached to a loop device and formatted. e.g.
//   LoopImage img(dir / "btrfs.img", 2ULL << 30, "btrfs");  img.mount(dir / "top", "subvolid=5");
class LoopImage {
 public:
  LoopImage(const std::string& file, std::uint64_t size, const std::string& fstype) : file_(file), fstype_(fstype) {
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      error_ = "cannot create " + file;
      if (fd >= 0) ::close(fd);
      return;
    }
    ::close(fd);
    auto r = run({"losetup", "--find", "--show", file});
    if (!r.ok()) {
      error_ = "losetup: " + r.err;
      return;
    }
    device_ = r.out.substr(0, r.out.find('\n'));
    std::vector<std::string> mkfs = fstype == "btrfs" ? std::vector<std::string>{"mkfs.btrfs", "-q", "-f", device_}
                                                      : std::vector<std::string>{"mkfs." + fstype, "-q", device_};
    if (fstype == "btrfs" && size < (256ULL << 20)) mkfs.insert(mkfs.begin() + 2, "--mixed");
    auto m = run(mkfs);
    if (!m.ok()) error_ = "mkfs: " + m.err;
  }
  LoopImage(const LoopImage&) = delete;
  LoopImage& operator=(const LoopImage&) = delete;
  ~LoopImage() {
    unmount_all();
    if (!device_.empty()) (void)run({"losetup", "-d", device_});
    ::unlink(file_.c_str());
  }

  [[nodiscard]] bool ok() const { return error_.empty(); }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] const std::string& device() const { return device_; }
  // The filesystem UUID as blkid reports it, e.g. "3f1c...".
  [[nodiscard]] std::string uuid() const {
    auto r = run({"blkid", "-s", "UUID", "-o", "value", device_});
    return r.out.substr(0, r.out.find('\n'));
  }

  // Mounts the image at `target` (created) with filesystem `options`; undone in reverse order.
  bool mount(const std::string& target, const std::string& options = "") {
    make_dirs(target);
    if (::mount(device_.c_str(), target.c_str(), fstype_.c_str(), 0, options.empty() ? nullptr : options.c_str()) != 0)
      return false;
    mounts_.push_back(target);
    return true;
  }
  // Unmounts `target` if this object mounted it.
  void unmount(const std::string& target) {
    for (auto it = mounts_.begin(); it != mounts_.end(); ++it) {
      if (*it == target) {
        ::umount2(target.c_str(), MNT_DETACH);
        mounts_.erase(it);
        return;
      }
    }
  }
  void unmount_all() {
    while (!mounts_.empty()) {
      ::umount2(mounts_.back().c_str(), MNT_DETACH);
      mounts_.pop_back();
    }
  }

 private:
  std::string file_;
  std::string fstype_;
  std::string device_;
  std::string error_;
  std::vector<std::string> mounts_;
};

// The cached debootstrapped root (`scripts/test-root VARIANT`), or "" when it cannot be built.
inline std::string cached_root(const std::string& variant) {
  auto r = run({std::string(UG_SOURCE_DIR) + "/scripts/test-root", variant}, 3600);
  if (!r.ok()) return "";
  std::string p = r.out;
  while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.pop_back();
  return p;
}

}  // namespace guard::testing
