// A filesystem image on a loop device, mounted for a system test and always released: the
// destructor unmounts (lazily if busy) and detaches even when the test failed half-way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace guard::testing {

// e.g. auto img = LoopImage::create(tmp / "disk.img", 1ULL << 30, tmp / "mnt", "btrfs", &err);
//      img->uuid() -> "3f1c…"; img->mountpoint() -> "/tmp/ug-test.X/mnt".
class LoopImage {
 public:
  // Creates a sparse `size`-byte file at `image`, formats it with mkfs.`fstype` (quietly),
  // attaches it (losetup --find --show) and mounts it at `mountpoint` (created) with
  // `mount_options` (may be empty). nullptr with `error` set when any step fails; whatever was
  // set up by then is released.
  static std::unique_ptr<LoopImage> create(const std::string& image, std::uint64_t size, const std::string& mountpoint,
                                           const std::string& fstype = "btrfs", const std::string& mount_options = "",
                                           std::string* error = nullptr);
  LoopImage(const LoopImage&) = delete;
  LoopImage& operator=(const LoopImage&) = delete;
  ~LoopImage();

  [[nodiscard]] const std::string& image() const { return image_; }
  [[nodiscard]] const std::string& device() const { return device_; }  // "/dev/loop3"
  [[nodiscard]] const std::string& mountpoint() const { return mountpoint_; }
  // The filesystem UUID as blkid reports it.
  [[nodiscard]] const std::string& uuid() const { return uuid_; }

  // Unmounts now (the destructor then only detaches). False when umount failed.
  bool unmount();

 private:
  LoopImage() = default;
  std::string image_;
  std::string device_;
  std::string mountpoint_;
  std::string uuid_;
  bool mounted_ = false;
};

}  // namespace guard::testing
