#include "snapshots/boot_capture.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "base/atomic_file.h"
#include "base/dir.h"
#include "base/unique_fd.h"
#include "snapshots/tree_copy.h"

namespace guard::snapshots {
namespace {

using base::UniqueFd;

base::Result<UniqueFd> open_dir_at(int dir, const std::string& name, const std::string& display) {
  UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return base::fail_errno("openat", display);
  return fd;
}

void manifest_of(int dir, const std::string& prefix, std::string& out) {
  auto names = base::list_dir(dir, prefix);
  if (!names) return;
  for (const auto& n : *names) {
    struct stat st {};
    if (::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    std::string p = prefix + "/" + n;
    out += p + "\t" + std::to_string(st.st_size) + "\t" + std::to_string(st.st_mtim.tv_sec) + "\n";
    if (S_ISDIR(st.st_mode)) {
      if (auto sub = open_dir_at(dir, n, p)) manifest_of(sub->get(), p, out);
    }
  }
}

std::string aside_name(const std::string& id) {
  return ".upgrade-guard-replaced-" + id;
}
bool is_aside(const std::string& n) {
  return n.rfind(".upgrade-guard-replaced-", 0) == 0;
}

}  // namespace

base::Result<void> capture_boot(const std::string& boot_dir, const std::string& store, const std::string& id,
                                const std::string& suffix) {
  UniqueFd boot(::open(boot_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!boot) return base::fail_errno("open", boot_dir, errno, "cannot read /boot to capture it");
  UniqueFd st(::open(store.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!st) return base::fail_errno("open", store);
  const std::string dest = id + suffix;
  if (::mkdirat(st.get(), dest.c_str(), 0700) != 0) return base::fail_errno("mkdirat", store + "/" + dest);
  auto cleanup = [&](base::Error e) -> base::Result<void> {
    (void)remove_tree(st.get(), dest);
    (void)::unlinkat(st.get(), (dest + ".manifest").c_str(), 0);
    return base::fail(std::move(e));
  };
  auto dfd = open_dir_at(st.get(), dest, store + "/" + dest);
  if (!dfd) return cleanup(dfd.error());
  auto names = base::list_dir(boot.get(), boot_dir);
  if (!names) return cleanup(names.error());
  struct stat boot_st {};
  (void)::fstat(boot.get(), &boot_st);
  for (const auto& n : *names) {
    if (is_aside(n)) continue;
    struct stat est {};
    if (::fstatat(boot.get(), n.c_str(), &est, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(est.st_mode) &&
        est.st_dev != boot_st.st_dev) {
      // The ESP or another mount below /boot: an empty directory keeps its place.
      if (::mkdirat(dfd->get(), n.c_str(), 0700) != 0) return cleanup(base::Error{"mkdirat", n, errno, {}});
      continue;
    }
    auto r = copy_tree(boot.get(), n, dfd->get(), n);
    if (!r) return cleanup(r.error());
  }
  std::string manifest;
  manifest_of(dfd->get(), "", manifest);
  if (auto r = base::write_file_atomic_at(st.get(), dest + ".manifest", manifest, 0600); !r) return cleanup(r.error());
  return {};
}

base::Result<void> restore_boot(const std::string& boot_dir, const std::string& store, const std::string& id,
                                const std::string& suffix, const std::string& tag) {
  return restore_contents(boot_dir, store + "/" + id + suffix, aside_name(tag));
}

base::Result<void> unrestore_boot(const std::string& boot_dir, const std::string& tag) {
  return unrestore_contents(boot_dir, aside_name(tag));
}


namespace {

// The entries of /boot a restore moves and copies: not our own aside directories, not a
// mount point (the ESP on /boot/efi), which stays in place.
base::Result<std::vector<std::string>> own_entries(int boot, const std::string& boot_dir) {
  struct stat boot_st {};
  if (::fstat(boot, &boot_st) != 0) return base::fail_errno("fstat", boot_dir);
  auto names = base::list_dir(boot, boot_dir);
  if (!names) return base::fail(names.error());
  std::vector<std::string> out;
  for (const auto& n : *names) {
    if (is_aside(n)) continue;
    struct stat est {};
    if (::fstatat(boot, n.c_str(), &est, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(est.st_mode) && est.st_dev != boot_st.st_dev) continue;
    out.push_back(n);
  }
  return out;
}

}  // namespace

base::Result<void> restore_contents(const std::string& boot_dir, const std::string& source_dir,
                                    const std::string& aside) {
  UniqueFd boot(::open(boot_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!boot) return base::fail_errno("open", boot_dir, errno, "cannot open the directory to restore");
  auto captured = [&]() -> base::Result<UniqueFd> {
    UniqueFd fd(::open(source_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return base::fail_errno("open", source_dir, errno, "the captured copy is missing");
    return fd;
  }();
  if (!captured) return base::fail(captured.error());
  if (::mkdirat(boot.get(), aside.c_str(), 0700) != 0 && errno != EEXIST)
    return base::fail_errno("mkdirat", boot_dir + "/" + aside);
  auto afd = open_dir_at(boot.get(), aside, boot_dir + "/" + aside);
  if (!afd) return base::fail(afd.error());
  auto current = own_entries(boot.get(), boot_dir);
  if (!current) return base::fail(current.error());
  for (const auto& n : *current) {
    struct stat est {};
    if (::fstatat(afd->get(), n.c_str(), &est, AT_SYMLINK_NOFOLLOW) == 0) {
      // Already moved aside by an earlier, interrupted run: what is here is our own copy.
      if (auto r = remove_tree(boot.get(), n); !r) return r;
      continue;
    }
    if (::renameat(boot.get(), n.c_str(), afd->get(), n.c_str()) != 0)
      return base::fail_errno("renameat", boot_dir + "/" + n, errno, "cannot move the current /boot file aside");
  }
  auto names = base::list_dir(captured->get(), source_dir);
  if (!names) return base::fail(names.error());
  for (const auto& n : *names) {
    struct stat est {};
    if (::fstatat(boot.get(), n.c_str(), &est, AT_SYMLINK_NOFOLLOW) == 0) continue;  // a mount point kept in place
    auto r = copy_tree(captured->get(), n, boot.get(), n);
    if (!r) return base::fail(r.error());
  }
  if (::fsync(boot.get()) != 0) return base::fail_errno("fsync", boot_dir);
  return {};
}

base::Result<void> unrestore_contents(const std::string& boot_dir, const std::string& aside) {
  UniqueFd boot(::open(boot_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!boot) return base::fail_errno("open", boot_dir);
  auto afd = open_dir_at(boot.get(), aside, boot_dir + "/" + aside);
  if (!afd) return {};  // nothing was moved
  auto current = own_entries(boot.get(), boot_dir);
  if (!current) return base::fail(current.error());
  for (const auto& n : *current) {
    if (auto r = remove_tree(boot.get(), n); !r) return r;  // a copy restore_boot made
  }
  auto moved = base::list_dir(afd->get(), boot_dir + "/" + aside);
  if (!moved) return base::fail(moved.error());
  for (const auto& n : *moved) {
    if (::renameat(afd->get(), n.c_str(), boot.get(), n.c_str()) != 0)
      return base::fail_errno("renameat", boot_dir + "/" + n);
  }
  if (::unlinkat(boot.get(), aside.c_str(), AT_REMOVEDIR) != 0)
    return base::fail_errno("unlinkat", boot_dir + "/" + aside);
  return {};
}

}  // namespace guard::snapshots
