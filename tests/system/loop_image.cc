#include "tests/system/loop_image.h"

#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>

#include "tests/common/test_env.h"

namespace guard::testing {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::unique_ptr<LoopImage> LoopImage::create(const std::string& image, std::uint64_t size,
                                             const std::string& mountpoint, const std::string& fstype,
                                             const std::string& mount_options, std::string* error) {
  std::unique_ptr<LoopImage> img(new LoopImage());
  img->image_ = image;
  img->mountpoint_ = mountpoint;
  auto failed = [&](const std::string& what, const base::ProcessResult& r) -> std::unique_ptr<LoopImage> {
    if (error != nullptr) *error = what + ": " + r.describe() + ": " + r.out + r.err;
    return nullptr;  // img's destructor releases what was set up
  };
  auto r = run({"truncate", "-s", std::to_string(size), image});
  if (!r.ok()) return failed("truncate", r);
  std::vector<std::string> mkfs{"mkfs." + fstype};
  if (fstype == "btrfs" || fstype == "xfs") mkfs.push_back("-q");
  if (fstype.rfind("ext", 0) == 0) mkfs.insert(mkfs.end(), {"-q", "-F"});
  mkfs.push_back(image);
  r = run(mkfs);
  if (!r.ok()) return failed("mkfs", r);
  r = run({"losetup", "--find", "--show", image});
  if (!r.ok()) return failed("losetup", r);
  img->device_ = trimmed(r.out);
  r = run({"blkid", "-p", "-s", "UUID", "-o", "value", img->device_});
  if (!r.ok()) return failed("blkid", r);
  img->uuid_ = trimmed(r.out);
  make_dirs(mountpoint);
  std::vector<std::string> mount{"mount"};
  if (!mount_options.empty()) mount.insert(mount.end(), {"-o", mount_options});
  mount.insert(mount.end(), {img->device_, mountpoint});
  r = run(mount);
  if (!r.ok()) return failed("mount", r);
  img->mounted_ = true;
  return img;
}

bool LoopImage::unmount() {
  if (!mounted_) return true;
  if (::umount2(mountpoint_.c_str(), 0) != 0 && ::umount2(mountpoint_.c_str(), MNT_DETACH) != 0) return false;
  mounted_ = false;
  return true;
}

LoopImage::~LoopImage() {
  unmount();
  if (!device_.empty()) {
    base::SystemCommandRunner runner;
    base::Command cmd;
    cmd.argv = {"losetup", "-d", device_};
    cmd.timeout = std::chrono::seconds(60);
    (void)runner.run(cmd);
  }
}

}  // namespace guard::testing
