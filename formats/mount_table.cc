#include "formats/mount_table.h"

#include <libmount.h>
#include <stdio.h>

namespace guard::formats {
namespace {

constexpr const char* kFstab = "/etc/fstab";
constexpr const char* kMountinfo = "/proc/self/mountinfo";

struct IterDeleter {
  void operator()(libmnt_iter* iter) const { mnt_free_iter(iter); }
};
struct FileDeleter {
  // A read-only memory stream: nothing is lost when fclose fails.
  void operator()(FILE* file) const { (void)::fclose(file); }
};
using IterPtr = std::unique_ptr<libmnt_iter, IterDeleter>;
using FilePtr = std::unique_ptr<FILE, FileDeleter>;

// libmount calls this for every line it cannot parse; the table's userdata collects them.
int on_parse_error(libmnt_table* table, const char* /*filename*/, int line) {
  auto* bad = static_cast<std::vector<std::size_t>*>(mnt_table_get_userdata(table));
  if (bad != nullptr && line > 0) bad->push_back(static_cast<std::size_t>(line));
  return 1;  // > 0: recoverable, skip the line and go on
}

std::string str(const char* s) {
  return s == nullptr ? std::string() : std::string(s);
}

bool has_option(libmnt_fs* fs, const char* name) {
  return mnt_fs_get_option(fs, name, nullptr, nullptr) == 0;
}

MountEntry to_entry(libmnt_fs* fs) {
  MountEntry e;
  // mnt_fs_get_source keeps tags as written ("UUID=…"), unlike mnt_fs_get_srcpath.
  e.source = str(mnt_fs_get_source(fs));
  e.target = str(mnt_fs_get_target(fs));
  e.fstype = str(mnt_fs_get_fstype(fs));
  e.fs_root = str(mnt_fs_get_root(fs));
  e.options = str(mnt_fs_get_options(fs));
  e.noauto = has_option(fs, "noauto");
  e.nofail = has_option(fs, "nofail");
  e.swap = mnt_fs_is_swaparea(fs) != 0;
  return e;
}

// Every entry of `table` in table order.
base::Result<std::vector<MountEntry>> entries_of(libmnt_table* table, const char* path) {
  IterPtr iter(mnt_new_iter(MNT_ITER_FORWARD));
  if (!iter) return base::fail_errno("mnt_new_iter", path, ENOMEM);
  std::vector<MountEntry> out;
  libmnt_fs* fs = nullptr;
  while (mnt_table_next_fs(table, iter.get(), &fs) == 0) out.push_back(to_entry(fs));
  return out;
}

}  // namespace

void MountTable::TableDeleter::operator()(libmnt_table* table) const {
  mnt_unref_table(table);
}

MountTable::MountTable(TablePtr table, std::vector<MountEntry> entries, std::vector<std::size_t> bad_lines)
    : table_(std::move(table)), entries_(std::move(entries)), bad_lines_(std::move(bad_lines)) {}
MountTable::MountTable(MountTable&&) noexcept = default;
MountTable& MountTable::operator=(MountTable&&) noexcept = default;
MountTable::~MountTable() = default;

base::Result<MountTable> MountTable::parse_fstab(std::string_view bytes) {
  TablePtr table(mnt_new_table());
  if (!table) return base::fail_errno("mnt_new_table", kFstab, ENOMEM);
  std::vector<std::size_t> bad;
  if (bytes.empty()) return MountTable(std::move(table), {}, {});  // fmemopen refuses size 0
  // fmemopen needs a writable buffer that outlives the FILE.
  std::string copy(bytes);
  FilePtr file(::fmemopen(copy.data(), copy.size(), "r"));
  if (!file) return base::fail_errno("fmemopen", kFstab);
  mnt_table_set_userdata(table.get(), &bad);
  mnt_table_set_parser_errcb(table.get(), on_parse_error);
  int rc = mnt_table_parse_stream(table.get(), file.get(), kFstab);
  mnt_table_set_userdata(table.get(), nullptr);  // `bad` moves below
  if (rc < 0) return base::fail_errno("mnt_table_parse_stream", kFstab, -rc, "libmount could not read the fstab");
  auto entries = entries_of(table.get(), kFstab);
  if (!entries) return base::fail(entries.error());
  return MountTable(std::move(table), std::move(*entries), std::move(bad));
}

base::Result<MountTable> MountTable::mountinfo() {
  TablePtr table(mnt_new_table());
  if (!table) return base::fail_errno("mnt_new_table", kMountinfo, ENOMEM);
  int rc = mnt_table_parse_file(table.get(), kMountinfo);
  if (rc != 0) return base::fail_errno("mnt_table_parse_file", kMountinfo, rc < 0 ? -rc : EINVAL);
  auto entries = entries_of(table.get(), kMountinfo);
  if (!entries) return base::fail(entries.error());
  return MountTable(std::move(table), std::move(*entries), {});
}

std::optional<MountEntry> MountTable::find_target(const std::string& target) const {
  libmnt_fs* fs = mnt_table_find_target(table_.get(), target.c_str(), MNT_ITER_BACKWARD);
  if (fs == nullptr) return std::nullopt;
  return to_entry(fs);
}

std::optional<MountEntry> MountTable::find_mountpoint(const std::string& path) const {
  libmnt_fs* fs = mnt_table_find_mountpoint(table_.get(), path.c_str(), MNT_ITER_BACKWARD);
  if (fs == nullptr) return std::nullopt;
  return to_entry(fs);
}

std::optional<std::string> get_option(const std::string& options, const std::string& name) {
  char* value = nullptr;
  size_t size = 0;
  if (mnt_optstr_get_option(options.c_str(), name.c_str(), &value, &size) != 0) return std::nullopt;
  return value != nullptr ? std::string(value, size) : std::string();
}

}  // namespace guard::formats
