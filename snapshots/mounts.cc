#include "snapshots/mounts.h"

#include <libmount.h>

#include <cstdio>
#include <memory>

namespace guard::snapshots::mounts {
namespace {

struct TableDeleter {
  void operator()(libmnt_table* t) const { mnt_unref_table(t); }
};
using TablePtr = std::unique_ptr<libmnt_table, TableDeleter>;

struct FileDeleter {
  void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileDeleter>;

std::string str(const char* s) { return s ? std::string(s) : std::string(); }

MountEntry to_entry(libmnt_fs* fs) {
  MountEntry e;
  e.source = str(mnt_fs_get_source(fs));
  e.target = str(mnt_fs_get_target(fs));
  e.fstype = str(mnt_fs_get_fstype(fs));
  e.fs_root = str(mnt_fs_get_root(fs));
  e.options = str(mnt_fs_get_options(fs));
  return e;
}

base::Result<TablePtr> mountinfo() {
  TablePtr tb(mnt_new_table());
  if (!tb) return base::fail_errno("mnt_new_table", "/proc/self/mountinfo", ENOMEM);
  int rc = mnt_table_parse_file(tb.get(), "/proc/self/mountinfo");
  if (rc != 0) return base::fail_errno("mnt_table_parse_file", "/proc/self/mountinfo", rc < 0 ? -rc : EINVAL);
  return tb;
}

}  // namespace

base::Result<MountEntry> mount_containing(const std::string& path) {
  auto tb = mountinfo();
  if (!tb) return base::fail(tb.error());
  libmnt_fs* fs = mnt_table_find_mountpoint(tb->get(), path.c_str(), MNT_ITER_BACKWARD);
  if (!fs) return base::fail("mnt_table_find_mountpoint", path, "no mount contains this path");
  return to_entry(fs);
}

base::Result<std::optional<MountEntry>> mount_at(const std::string& path) {
  auto tb = mountinfo();
  if (!tb) return base::fail(tb.error());
  libmnt_fs* fs = mnt_table_find_target(tb->get(), path.c_str(), MNT_ITER_BACKWARD);
  if (!fs) return std::optional<MountEntry>{};
  return std::optional<MountEntry>(to_entry(fs));
}

base::Result<std::vector<MountEntry>> parse_fstab(std::string_view text) {
  std::string copy(text);
  std::vector<MountEntry> out;
  if (copy.empty()) return out;
  FilePtr f(fmemopen(copy.data(), copy.size(), "r"));
  if (!f) return base::fail_errno("fmemopen", "fstab");
  TablePtr tb(mnt_new_table());
  if (!tb) return base::fail_errno("mnt_new_table", "fstab", ENOMEM);
  // A malformed line is skipped (positive return), as mount(8) does, rather than failing the layout.
  mnt_table_set_parser_errcb(tb.get(), [](libmnt_table*, const char*, int) { return 1; });
  int rc = mnt_table_parse_stream(tb.get(), f.get(), "fstab");
  if (rc < 0) return base::fail_errno("mnt_table_parse_stream", "fstab", -rc, "cannot parse fstab");
  libmnt_iter* raw_it = mnt_new_iter(MNT_ITER_FORWARD);
  std::unique_ptr<libmnt_iter, decltype(&mnt_free_iter)> it(raw_it, &mnt_free_iter);
  libmnt_fs* fs = nullptr;
  while (mnt_table_next_fs(tb.get(), it.get(), &fs) == 0) out.push_back(to_entry(fs));
  return out;
}

std::optional<std::string> get_option(const std::string& options, const std::string& name) {
  char* value = nullptr;
  size_t size = 0;
  if (mnt_optstr_get_option(options.c_str(), name.c_str(), &value, &size) != 0) return std::nullopt;
  return value ? std::string(value, size) : std::string();
}

}  // namespace guard::snapshots::mounts
