#include "snapshots/btrfs.h"

#include <btrfsutil.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

namespace guard::snapshots::btrfs {
namespace {

// libbtrfsutil sets errno with its error code; keep it when it says something.
tl::unexpected<base::Error> fail_btrfs(const char* call, const std::string& path, btrfs_util_error e) {
  int saved = errno;
  base::Error error{call, path, 0, btrfs_util_strerror(e)};
  if (e != BTRFS_UTIL_ERROR_NOT_BTRFS && e != BTRFS_UTIL_ERROR_NOT_SUBVOLUME && saved != 0) error.err = saved;
  return base::fail(std::move(error));
}

struct IteratorDeleter {
  void operator()(btrfs_util_subvolume_iterator* it) const { btrfs_util_destroy_subvolume_iterator(it); }
};
using IteratorPtr = std::unique_ptr<btrfs_util_subvolume_iterator, IteratorDeleter>;

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using CString = std::unique_ptr<char, FreeDeleter>;

}  // namespace

base::Result<bool> is_subvolume(const std::string& path) {
  errno = 0;
  auto e = btrfs_util_is_subvolume(path.c_str());
  if (e == BTRFS_UTIL_OK) return true;
  if (e == BTRFS_UTIL_ERROR_NOT_SUBVOLUME || e == BTRFS_UTIL_ERROR_NOT_BTRFS) return false;
  return fail_btrfs("btrfs_util_is_subvolume", path, e);
}

base::Result<std::uint64_t> subvolume_id(const std::string& path) {
  std::uint64_t id = 0;
  errno = 0;
  auto e = btrfs_util_subvolume_id(path.c_str(), &id);
  if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_subvolume_id", path, e);
  return id;
}

base::Result<std::string> subvolume_path(const std::string& fs_path, std::uint64_t id) {
  char* raw = nullptr;
  errno = 0;
  auto e = btrfs_util_subvolume_path(fs_path.c_str(), id, &raw);
  CString owned(raw);
  if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_subvolume_path", fs_path, e);
  return std::string(owned ? owned.get() : "");
}

base::Result<std::vector<Subvolume>> list_subvolumes(const std::string& path, std::uint64_t top) {
  btrfs_util_subvolume_iterator* raw = nullptr;
  errno = 0;
  auto e = btrfs_util_create_subvolume_iterator(path.c_str(), top, 0, &raw);
  IteratorPtr it(raw);
  if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_create_subvolume_iterator", path, e);
  std::vector<Subvolume> out;
  for (;;) {
    char* sub_raw = nullptr;
    std::uint64_t id = 0;
    errno = 0;
    e = btrfs_util_subvolume_iterator_next(it.get(), &sub_raw, &id);
    CString sub(sub_raw);
    if (e == BTRFS_UTIL_ERROR_STOP_ITERATION) break;
    if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_subvolume_iterator_next", path, e);
    out.push_back(Subvolume{sub.get(), id});
  }
  return out;
}

base::Result<void> create_snapshot(const std::string& source, const std::string& dest, bool read_only) {
  int flags = read_only ? BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY : 0;
  errno = 0;
  auto e = btrfs_util_create_snapshot(source.c_str(), dest.c_str(), flags, nullptr, nullptr);
  if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_create_snapshot", dest, e);
  return {};
}

base::Result<void> create_subvolume(const std::string& path) {
  errno = 0;
  auto e = btrfs_util_create_subvolume(path.c_str(), 0, nullptr, nullptr);
  if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_create_subvolume", path, e);
  return {};
}

base::Result<void> delete_subvolume(const std::string& path, bool recursive) {
  errno = 0;
  auto e = btrfs_util_delete_subvolume(path.c_str(), recursive ? BTRFS_UTIL_DELETE_SUBVOLUME_RECURSIVE : 0);
  if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_delete_subvolume", path, e);
  return {};
}

base::Result<bool> read_only(const std::string& path) {
  bool ro = false;
  errno = 0;
  auto e = btrfs_util_get_subvolume_read_only(path.c_str(), &ro);
  if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_get_subvolume_read_only", path, e);
  return ro;
}

base::Result<void> set_read_only(const std::string& path, bool ro) {
  errno = 0;
  auto e = btrfs_util_set_subvolume_read_only(path.c_str(), ro);
  if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_set_subvolume_read_only", path, e);
  return {};
}

base::Result<std::uint64_t> default_subvolume(const std::string& path) {
  std::uint64_t id = 0;
  errno = 0;
  auto e = btrfs_util_get_default_subvolume(path.c_str(), &id);
  if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_get_default_subvolume", path, e);
  return id;
}

base::Result<void> set_default_subvolume(const std::string& path, std::uint64_t id) {
  errno = 0;
  auto e = btrfs_util_set_default_subvolume(path.c_str(), id);
  if (e != BTRFS_UTIL_OK) return fail_btrfs("btrfs_util_set_default_subvolume", path, e);
  return {};
}

}  // namespace guard::snapshots::btrfs
