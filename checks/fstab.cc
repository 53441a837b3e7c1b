#include "checks/fstab.h"

#include <libmount.h>
#include <stdio.h>

#include <memory>

namespace guard::checks {
namespace {

struct TableDeleter {
  void operator()(libmnt_table* t) const { mnt_unref_table(t); }
};
struct IterDeleter {
  void operator()(libmnt_iter* i) const { mnt_free_iter(i); }
};
struct FileDeleter {
  void operator()(FILE* f) const { (void)::fclose(f); }
};
using TablePtr = std::unique_ptr<libmnt_table, TableDeleter>;
using IterPtr = std::unique_ptr<libmnt_iter, IterDeleter>;
using FilePtr = std::unique_ptr<FILE, FileDeleter>;

// libmount calls this for every line it cannot parse; the table's userdata collects them.
int on_parse_error(libmnt_table* tb, const char* /*filename*/, int line) {
  auto* bad = static_cast<std::vector<std::size_t>*>(mnt_table_get_userdata(tb));
  if (bad != nullptr && line > 0) bad->push_back(static_cast<std::size_t>(line));
  return 1;  // > 0: recoverable, skip the line and go on
}

std::string str(const char* s) {
  return s == nullptr ? std::string() : std::string(s);
}

bool has_option(libmnt_fs* fs, const char* name) {
  return mnt_fs_get_option(fs, name, nullptr, nullptr) == 0;
}

}  // namespace

const FstabEntry* Fstab::find_target(std::string_view target) const {
  const FstabEntry* found = nullptr;
  for (const auto& e : entries)
    if (e.target == target) found = &e;
  return found;
}

base::Result<Fstab> parse_fstab(std::string_view bytes) {
  Fstab out;
  if (bytes.empty()) return out;
  // fmemopen needs a writable buffer that outlives the FILE.
  std::string copy(bytes);
  FilePtr file(::fmemopen(copy.data(), copy.size(), "r"));
  if (!file) return base::fail_errno("fmemopen", "/etc/fstab");
  TablePtr table(mnt_new_table());
  if (!table) return base::fail_errno("mnt_new_table", "/etc/fstab", ENOMEM);
  mnt_table_set_userdata(table.get(), &out.bad_lines);
  mnt_table_set_parser_errcb(table.get(), on_parse_error);
  int rc = mnt_table_parse_stream(table.get(), file.get(), "/etc/fstab");
  if (rc < 0) return base::fail_errno("mnt_table_parse_stream", "/etc/fstab", -rc, "libmount could not read the fstab");
  IterPtr iter(mnt_new_iter(MNT_ITER_FORWARD));
  if (!iter) return base::fail_errno("mnt_new_iter", "/etc/fstab", ENOMEM);
  libmnt_fs* fs = nullptr;
  while (mnt_table_next_fs(table.get(), iter.get(), &fs) == 0) {
    FstabEntry e;
    // mnt_fs_get_source keeps tags as written ("UUID=…"), unlike mnt_fs_get_srcpath.
    e.source = str(mnt_fs_get_source(fs));
    e.target = str(mnt_fs_get_target(fs));
    e.fstype = str(mnt_fs_get_fstype(fs));
    e.options = str(mnt_fs_get_options(fs));
    e.noauto = has_option(fs, "noauto");
    e.nofail = has_option(fs, "nofail");
    e.swap = mnt_fs_is_swaparea(fs) != 0;
    out.entries.push_back(std::move(e));
  }
  return out;
}

}  // namespace guard::checks
