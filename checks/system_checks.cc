#include "checks/system_checks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <chrono>
#include <fmt/format.h>

#include "base/strings.h"

namespace guard::checks {
namespace {

// Runs argv in the checked root: directly on the live system, chrooted into any other root.
base::Result<base::ProcessResult> run_in_root(const CheckContext& ctx, const std::vector<std::string>& argv,
                                              std::chrono::seconds timeout) {
  if (ctx.runner == nullptr) return base::fail("run", argv.front(), "no command runner available");
  base::Command cmd;
  cmd.argv = argv;
  cmd.timeout = timeout;
  if (!ctx.root.is_host_root()) {
    cmd.chroot = ctx.root.host_path("/");
    cmd.bind_system_dirs = true;
  }
  return ctx.runner->run(cmd);
}

std::string last_lines(const std::string& text, std::size_t n) {
  auto lines = base::split(base::trim(text), '\n');
  std::string out;
  for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    out += (out.empty() ? "" : " | ") + std::string(base::trim(lines[i]));
  return out;
}

}  // namespace

base::Result<CheckOutput> SpaceCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  struct Target {
    const char* path;
    std::uint64_t want;
  };
  dev_t root_dev = 0;
  for (Target t : {Target{"/", ctx.policy.preflight.min_free_root}, Target{"/boot", ctx.policy.preflight.min_free_boot}}) {
    auto fd = ctx.root.open(t.path, O_PATH | O_DIRECTORY);
    if (!fd) continue;
    struct stat st {};
    struct statvfs vfs {};
    if (::fstat(fd->get(), &st) != 0 || ::fstatvfs(fd->get(), &vfs) != 0) continue;
    if (std::string_view(t.path) == "/") root_dev = st.st_dev;
    else if (st.st_dev == root_dev) continue;  // /boot on the root filesystem: counted once
    ++out.items;
    std::uint64_t free = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    bool inodes_known = vfs.f_files > 0;  // btrfs reports 0: inodes are not a limit there
    if (free < (1ULL << 20) || (inodes_known && vfs.f_favail == 0)) {
      out.findings.push_back(
          make_finding("space", Severity::block, t.path,
                       fmt::format("the filesystem holding {} is full ({} free, {} inodes free)", t.path,
                                   base::human_bytes(free), inodes_known ? std::to_string(vfs.f_favail) : "unlimited"),
                       "free space before anything else writes to it", "full"));
    } else if (free < t.want) {
      out.findings.push_back(make_finding("space", Severity::warn, t.path,
                                          fmt::format("only {} free on the filesystem holding {} (an upgrade needs {})",
                                                      base::human_bytes(free), t.path, base::human_bytes(t.want)),
                                          std::string_view(t.path) == "/boot"
                                              ? "remove old kernels: apt-get autoremove --purge"
                                              : "apt-get clean; look at /var/log and /var/cache",
                                          "low"));
    }
  }
  return out;
}

base::Result<CheckOutput> FilesystemCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  out.items = 1;
  struct statvfs vfs {};
  if (::fstatvfs(ctx.root.fd(), &vfs) != 0) return base::fail_errno("fstatvfs", ctx.root.path());
  if (vfs.f_flag & ST_RDONLY) {
    out.findings.push_back(make_finding(
        "filesystem", Severity::block, "/",
        "the root filesystem is mounted read-only (often the kernel's reaction to I/O or filesystem errors)",
        "read the kernel log (journalctl -k) before remounting it read-write", "read-only"));
  }
  if (ctx.live) {
    struct stat st {};
    if (::fstat(ctx.root.fd(), &st) == 0) {
      // The ext4 sysfs directory is named by device name (vda1), found from the device number.
      auto host = base::Root::open("/");
      if (host) {
        auto uevent = host->read_file(fmt::format("/sys/dev/block/{}:{}/uevent", major(st.st_dev), minor(st.st_dev)));
        if (uevent) {
          for (auto line : base::split(*uevent, '\n')) {
            if (line.rfind("DEVNAME=", 0) != 0) continue;
            auto count = host->read_file("/sys/fs/ext4/" + std::string(line.substr(8)) + "/errors_count");
            if (count && base::trim(*count) != "0") {
              out.findings.push_back(
                  make_finding("filesystem", Severity::block, "/",
                               "the root ext4 filesystem has recorded " + std::string(base::trim(*count)) + " errors",
                               "schedule fsck (touch /forcefsck) and check the disk before upgrading", "ext4-errors"));
            }
          }
        }
      }
    }
  }
  return out;
}

base::Result<CheckOutput> BackupCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  const auto& b = ctx.policy.backup;
  if (!b.max_age) {
    out.skipped = "not configured (set [backup] max_age)";
    return out;
  }
  out.items = 1;
  if (b.marker.empty() && b.command.empty()) {
    out.findings.push_back(make_finding("backup", Severity::block, "",
                                        "[backup] max_age is set but neither marker nor command says when the last "
                                        "backup was",
                                        "set backup.marker or backup.command in the policy"));
    return out;
  }
  if (!b.marker.empty()) {
    auto st = ctx.root.stat(b.marker);
    auto stale = [&](std::string message) {
      out.findings.push_back(make_finding("backup", Severity::block, b.marker, std::move(message),
                                          "run the backup, or check why it did not touch " + b.marker, "stale"));
    };
    if (!st) {
      stale("no backup marker: " + st.error().to_string());
    } else {
      auto age = std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(st->st_mtime);
      auto hours = std::chrono::duration_cast<std::chrono::hours>(age).count();
      if (age > *b.max_age)
        stale(fmt::format("the last backup is {} hours old (the policy allows {} hours)", hours,
                          std::chrono::duration_cast<std::chrono::hours>(*b.max_age).count()));
    }
  }
  if (!b.command.empty()) {
    auto r = run_in_root(ctx, b.command, std::chrono::seconds(120));
    if (!r || !r->ok()) {
      out.findings.push_back(make_finding(
          "backup", Severity::block, b.command.front(),
          "the backup freshness command failed: " +
              (r ? r->describe() + (r->err.empty() ? "" : ": " + last_lines(r->err, 3)) : r.error().to_string()),
          "", "command"));
    }
  }
  return out;
}

base::Result<CheckOutput> CustomCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  if (ctx.policy.custom.empty()) {
    out.skipped = "no [[custom]] checks in the policy";
    return out;
  }
  for (const auto& c : ctx.policy.custom) {
    ++out.items;
    auto r = run_in_root(ctx, c.command, c.timeout);
    if (r && r->ok()) continue;
    std::string detail = r ? r->describe() : r.error().to_string();
    if (r) {
      std::string tail = last_lines(r->err.empty() ? r->out : r->err, 3);
      if (!tail.empty()) detail += ": " + tail;
    }
    out.findings.push_back(make_finding("custom", c.severity, c.command.front(),
                                        "custom check '" + c.name + "' failed: " + detail, "", c.name));
  }
  return out;
}

}  // namespace guard::checks
