#include "snapshots/copy_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/dir.h"
#include "base/root.h"
#include "base/unique_fd.h"
#include "snapshots/boot_capture.h"
#include "snapshots/tree_copy.h"

namespace guard::snapshots {
namespace {

using base::UniqueFd;
using nlohmann::json;

bool path_exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

std::string host(const Layout& l, const std::string& rel) {
  return (l.root_dir == "/" ? std::string() : l.root_dir) + "/" + rel;
}

std::vector<std::string> dirs_of(const Layout& l) {
  std::vector<std::string> dirs = copy_backend_dirs();
  // The ESP is its own filesystem: the copy of /boot holds an empty directory in its place.
  if (l.esp_separate && !l.esp_path.empty()) dirs.push_back(l.esp_path.substr(1));
  return dirs;
}

}  // namespace

const std::vector<std::string>& copy_backend_dirs() {
  static const std::vector<std::string> dirs = {"etc", "boot", "var/lib/dpkg", "var/lib/apt"};
  return dirs;
}

CopyBackend::CopyBackend(Layout layout, const policies::Policy& policy, const std::string& state_dir)
    : layout_(std::move(layout)), min_free_(policy.snapshot.min_free_bytes), store_(state_dir + "/snapshots") {}

base::Result<SnapshotInfo> CopyBackend::create(const std::string& label,
                                               const std::map<std::string, std::string>& metadata) {
  UniqueFd slash(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (auto r = make_dirs_at(slash.get(), store_); !r) return base::fail(r.error());
  struct statvfs vfs {};
  if (::statvfs(store_.c_str(), &vfs) != 0) return base::fail_errno("statvfs", store_);
  std::uint64_t free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (free_bytes < min_free_)
    return base::fail(base::Error{kRefused, store_, ENOSPC,
                                  "not taking a snapshot: " + std::to_string(free_bytes >> 20) +
                                      " MiB free, the policy asks for at least " + std::to_string(min_free_ >> 20) +
                                      " MiB (snapshot.min_free_bytes)"});
  std::time_t now = std::time(nullptr);
  std::string id = make_snapshot_id(now, label);
  for (int n = 2; path_exists(store_ + "/" + id) || path_exists(store_ + "/" + id + ".json"); ++n)
    id = make_snapshot_id(now, label) + "-" + std::to_string(n);
  UniqueFd st(::open(store_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!st) return base::fail_errno("open", store_);
  const std::string tmp = id + ".tmp";
  (void)remove_tree(st.get(), tmp);
  if (::mkdirat(st.get(), tmp.c_str(), 0700) != 0) return base::fail_errno("mkdirat", store_ + "/" + tmp);
  auto undo = [&](base::Error e) -> base::Result<SnapshotInfo> {
    (void)remove_tree(st.get(), tmp);
    return base::fail(std::move(e));
  };
  UniqueFd tfd(::openat(st.get(), tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!tfd) return undo(base::Error{"openat", store_ + "/" + tmp, errno, {}});
  auto root = base::Root::open(layout_.root_dir);
  if (!root) return undo(root.error());
  std::vector<std::string> captured;
  for (const auto& d : dirs_of(layout_)) {
    auto pos = d.rfind('/');
    std::string parent = pos == std::string::npos ? "" : d.substr(0, pos);
    std::string name = pos == std::string::npos ? d : d.substr(pos + 1);
    auto src_parent = root->open(parent.empty() ? "/" : parent, O_RDONLY | O_DIRECTORY);
    if (!src_parent) continue;
    struct stat sst {};
    if (::fstatat(src_parent->get(), name.c_str(), &sst, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sst.st_mode)) continue;
    if (!parent.empty()) {
      if (auto r = make_dirs_at(tfd.get(), parent); !r) return undo(r.error());
    }
    UniqueFd dst_parent(parent.empty()
                            ? ::fcntl(tfd.get(), F_DUPFD_CLOEXEC, 0)
                            : ::openat(tfd.get(), parent.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dst_parent) return undo(base::Error{"openat", parent, errno, {}});
    (void)::unlinkat(dst_parent.get(), name.c_str(), AT_REMOVEDIR);  // the ESP's empty placeholder, if any
    auto r = copy_tree(src_parent->get(), name, dst_parent.get(), name);
    if (!r) return undo(r.error());
    captured.push_back("/" + d);
  }
  if (::fsync(tfd.get()) != 0) return undo(base::Error{"fsync", store_ + "/" + tmp, errno, {}});
  if (::renameat(st.get(), tmp.c_str(), st.get(), id.c_str()) != 0)
    return undo(base::Error{"renameat", store_ + "/" + id, errno, {}});
  json j{{"id", id},
         {"backend", "copy"},
         {"label", label},
         {"created_unix", static_cast<std::int64_t>(now)},
         {"captured", captured},
         {"metadata", metadata}};
  if (auto r = base::write_file_atomic_at(st.get(), id + ".json", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600, store_ + "/" + id + ".json");
      !r) {
    (void)remove_tree(st.get(), id);
    return base::fail(r.error());
  }
  return info(id);
}

base::Result<std::vector<SnapshotInfo>> CopyBackend::list() {
  std::vector<SnapshotInfo> out;
  if (!path_exists(store_)) return out;
  UniqueFd fd(::open(store_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return base::fail_errno("open", store_);
  auto names = base::list_dir(fd.get(), store_);
  if (!names) return base::fail(names.error());
  std::vector<std::string> ids;
  for (const auto& n : *names)
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) ids.push_back(n.substr(0, n.size() - 5));
  for (const auto& id : ids) {
    auto i = info(id);
    if (i) out.push_back(std::move(*i));
  }
  std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return a.created_unix != b.created_unix ? a.created_unix < b.created_unix : a.id < b.id;
  });
  return out;
}

base::Result<SnapshotInfo> CopyBackend::info(const std::string& id) {
  if (id.empty() || id.find('/') != std::string::npos || id[0] == '.' || !path_exists(store_ + "/" + id))
    return base::fail("snapshot", id, "no such snapshot (see `upgrade-guard snapshot list`)");
  auto root = base::Root::open(store_);
  if (!root) return base::fail(root.error());
  auto text = root->read_file(id + ".json", 1 << 20);
  if (!text) return base::fail(text.error());
  try {
    auto j = json::parse(*text);
    SnapshotInfo info;
    info.id = j.at("id");
    info.backend = "copy";
    info.label = j.value("label", "");
    info.created_unix = j.value("created_unix", std::int64_t{0});
    info.location = store_ + "/" + id;
    if (j.contains("metadata")) info.metadata = j["metadata"].get<std::map<std::string, std::string>>();
    return info;
  } catch (const json::exception& e) {
    return base::fail("json", store_ + "/" + id + ".json", std::string("bad snapshot metadata: ") + e.what());
  }
}

base::Result<void> CopyBackend::remove(const std::string& id) {
  auto i = info(id);
  if (!i) return base::fail(i.error());
  UniqueFd st(::open(store_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!st) return base::fail_errno("open", store_);
  // The metadata goes first: a snapshot without it is not listed, so a crash midway hides it.
  if (::unlinkat(st.get(), (id + ".json").c_str(), 0) != 0)
    return base::fail_errno("unlinkat", store_ + "/" + id + ".json");
  return remove_tree(st.get(), id);
}

base::Result<base::Root> CopyBackend::open(const std::string& id) {
  auto i = info(id);
  if (!i) return base::fail(i.error());
  return base::Root::open(i->location);
}

base::Result<RollbackResult> CopyBackend::rollback(const std::string& id, const RollbackOptions& options) {
  (void)options;  // preserve paths are never among the captured directories
  auto i = info(id);
  if (!i) return base::fail(i.error());
  char ts[32];
  std::time_t now = std::time(nullptr);
  struct tm tm {};
  gmtime_r(&now, &tm);
  (void)std::strftime(ts, sizeof(ts), "%Y%m%d-%H%M%S", &tm);  // 15 characters: always fits
  const std::string aside = std::string(".upgrade-guard-replaced-") + ts;
  RollbackResult res;
  res.snapshot_id = id;
  res.method = "copy";
  res.takes_effect_now = true;
  res.replaced_dir = aside;
  for (const auto& d : dirs_of(layout_)) {
    std::string src = i->location + "/" + d;
    if (!path_exists(src)) continue;
    std::string dst = host(layout_, d);
    if (!path_exists(dst)) {
      UniqueFd slash(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (auto r = make_dirs_at(slash.get(), dst); !r) return base::fail(r.error());
    }
    if (auto r = restore_contents(dst, src, aside); !r) return base::fail(r.error());
    res.preserved.push_back("/" + d);  // here: the directories restored
    if (d == "boot") res.boot_restored = true;
  }
  res.notes.push_back(
      "copy backend: restored /etc, /boot, /var/lib/dpkg and /var/lib/apt only; binaries and libraries were NOT "
      "restored: reinstall the packages the upgrade changed (the dpkg database now lists the old versions)");
  res.notes.push_back("the replaced files are kept in " + aside + "/ inside each restored directory");
  return res;
}

base::Result<RollbackResult> CopyBackend::resume_rollback(const std::string& journal, ResumeMode mode) {
  (void)mode;
  return base::fail(kRefused, journal, "the copy backend keeps no rollback journal: run the rollback again");
}

}  // namespace guard::snapshots
