// Snapshot timings on loop-mounted btrfs images: create for a small and a large root (a btrfs
// snapshot is O(1), so the ratio should be about 1), rollback, and the /boot capture.
// Run through tests/bench/snapshots.sh (root needed).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "policies/policy.h"
#include "snapshots/backend.h"
#include "snapshots/boot_capture.h"
#include "snapshots/btrfs.h"
#include "snapshots/layout.h"
#include "tests/system/loop_image.h"

namespace snapshots = guard::snapshots;
namespace policies = guard::policies;
namespace tst = guard::testing;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Writes `mib` MiB in 8 MiB files below dir.
bool fill(const std::string& dir, int mib) {
  tst::make_dirs(dir);
  std::string block(1 << 20, 'x');
  for (int f = 0; f * 8 < mib; ++f) {
    for (size_t i = 0; i < block.size(); i += 4096) block[i] = static_cast<char>('a' + f % 26);
    std::string p = dir + "/blob-" + std::to_string(f);
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    for (int m = 0; m < 8 && f * 8 + m < mib; ++m)
      if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) return ::close(fd), false;
    ::close(fd);
  }
  return true;
}

struct Numbers {
  double create_ms = 0;
  double rollback_ms = 0;
};

bool bench_root(const std::string& base, int root_mib, Numbers& out) {
  tst::TempDir dir(base);
  std::uint64_t image = (static_cast<std::uint64_t>(root_mib) * 2 + 1024) << 20;
  tst::LoopImage img(dir / "img", image, "btrfs");
  if (!img.ok()) return std::fprintf(stderr, "%s\n", img.error().c_str()), false;
  std::string top = dir / "top";
  if (!img.mount(top, "subvolid=5")) return false;
  std::string root = top + "/@";
  if (!snapshots::btrfs::create_subvolume(root)) return false;
  tst::write_file(root + "/etc/fstab", "UUID=x / btrfs subvol=@ 0 0\n");
  tst::make_dirs(root + "/usr/bin");
  tst::make_dirs(root + "/var/log");
  if (!fill(root + "/usr/share/filler", root_mib)) return false;
  ::sync();
  auto layout = snapshots::detect_layout(root);
  if (!layout) return std::fprintf(stderr, "%s\n", layout.error().to_string().c_str()), false;
  policies::Policy policy;
  policy.preserve = {"/var/log"};
  policy.snapshot.min_free_bytes = 0;
  auto b = snapshots::make_backend(*layout, policy, dir / "state");
  if (!b) return std::fprintf(stderr, "%s\n", b.error().to_string().c_str()), false;
  const int runs = 7;
  std::string first;
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    auto s = (*b)->create("bench", {});
    times.push_back(ms_since(t0));
    if (!s) return std::fprintf(stderr, "%s\n", s.error().to_string().c_str()), false;
    if (first.empty()) first = s->id;
  }
  std::sort(times.begin(), times.end());
  out.create_ms = times[runs / 2];
  tst::write_file(root + "/var/log/after", "x\n");
  auto t0 = Clock::now();
  auto r = (*b)->rollback(first, {});
  out.rollback_ms = ms_since(t0);
  if (!r) return std::fprintf(stderr, "%s\n", r.error().to_string().c_str()), false;
  return true;
}

}  // namespace

int main() {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "snapshots bench: needs root (loop devices)\n");
    return 77;
  }
  Numbers small, large;
  if (!bench_root("ug-bench-small", 200, small) || !bench_root("ug-bench-large", 2048, large)) return 1;
  std::printf("snapshot create, 200 MiB root:  %8.2f ms (median of 7)\n", small.create_ms);
  std::printf("snapshot create, 2 GiB root:    %8.2f ms (median of 7)\n", large.create_ms);
  std::printf("ratio 2 GiB / 200 MiB:          %8.2f (target ~1)\n", large.create_ms / small.create_ms);
  std::printf("rollback, 200 MiB root:         %8.2f ms\n", small.rollback_ms);
  std::printf("rollback, 2 GiB root:           %8.2f ms\n", large.rollback_ms);

  // /boot capture: a separate ext4 /boot holding the server root's kernel and initrd.
  tst::TempDir dir("ug-bench-boot");
  tst::LoopImage boot(dir / "boot.img", 512ULL << 20, "ext4");
  if (!boot.ok() || !boot.mount(dir / "boot")) return 1;
  std::string server = tst::cached_root("server");
  std::uint64_t bytes = 0;
  if (!server.empty()) {
    auto cp = tst::run({"cp", "-a", server + "/boot/.", dir / "boot/"});
    if (!cp.ok()) return 1;
  } else {
    fill(dir / "boot", 64);
  }
  auto du = tst::run({"du", "-sb", dir / "boot"});
  bytes = std::strtoull(du.out.c_str(), nullptr, 10);
  tst::make_dirs(dir / "store");
  auto t0 = Clock::now();
  auto cap = snapshots::capture_boot(dir / "boot", dir / "store", "bench");
  double cap_ms = ms_since(t0);
  if (!cap) return std::fprintf(stderr, "%s\n", cap.error().to_string().c_str()), 1;
  std::printf("/boot capture (%5.1f MiB):      %8.2f ms\n", static_cast<double>(bytes) / (1 << 20), cap_ms);
  return 0;
}
