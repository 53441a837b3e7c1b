#include "snapshots/btrfs_backend.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <ctime>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/dir.h"
#include "base/root.h"
#include "base/string_table.h"
#include "base/unique_fd.h"
#include "snapshots/boot_capture.h"
#include "snapshots/btrfs.h"
#include "snapshots/tree_copy.h"

namespace guard::snapshots {
namespace {

using base::UniqueFd;
using nlohmann::json;

std::string utc_stamp(std::time_t t) {
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  (void)std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);  // 15 characters: always fits
  return buf;
}

bool path_exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

// Whether two paths name the same directory (the same inode of the same mount's device).
bool same_dir(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool valid_id(const std::string& id) {
  return !id.empty() && id.find('/') == std::string::npos && id != "." && id != ".." && id[0] != '.';
}

std::string rel(std::string_view p) {
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  return std::string(p);
}

std::string parent_of(const std::string& r) {
  auto pos = r.rfind('/');
  return pos == std::string::npos ? std::string() : r.substr(0, pos);
}

std::string base_of(const std::string& r) {
  auto pos = r.rfind('/');
  return pos == std::string::npos ? r : r.substr(pos + 1);
}

// True when root-relative `p` is `n` or below it.
bool under(const std::string& p, const std::string& n) {
  return p == n || (p.size() > n.size() && p.compare(0, n.size(), n) == 0 && p[n.size()] == '/');
}

base::Result<UniqueFd> open_dir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return base::fail_errno("open", path);
  return fd;
}

// The directory `dir` (relative) inside the root `root`, resolved without leaving it; created
// (mkdir -p, no links followed) when `create`.
base::Result<UniqueFd> open_in(const std::string& root, const std::string& dir, bool create) {
  auto r = base::Root::open(root);
  if (!r) return base::fail(r.error());
  if (create) {
    auto rfd = open_dir(root);
    if (!rfd) return base::fail(rfd.error());
    if (auto m = make_dirs_at(rfd->get(), dir); !m) return base::fail(m.error());
  }
  return r->open(dir.empty() ? "/" : dir, O_RDONLY | O_DIRECTORY);
}

bool exists_at(int dir, const std::string& name, struct stat* out = nullptr) {
  struct stat st {};
  bool ok = ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (ok && out) *out = st;
  return ok;
}

base::Result<SnapshotInfo> parse_info(const std::string& text, const std::string& store) {
  try {
    auto j = json::parse(text);
    SnapshotInfo info;
    info.id = j.at("id").get<std::string>();
    info.backend = j.value("backend", "btrfs");
    info.label = j.value("label", "");
    info.created_unix = j.value("created_unix", std::int64_t{0});
    info.location = store + "/" + info.id;
    if (j.contains("metadata")) info.metadata = j["metadata"].get<std::map<std::string, std::string>>();
    info.complete = j.value("complete", true);
    info.kind = j.value("kind", "snapshot");
    info.boot_captured = j.value("boot_captured", false);
    if (info.boot_captured) info.boot_location = store + "/" + info.id + ".boot";
    info.esp_path = j.value("esp_path", "");
    if (!info.esp_path.empty()) info.esp_location = store + "/" + info.id + ".esp";
    return info;
  } catch (const json::exception& e) {
    return base::fail("json", store, std::string("bad snapshot metadata: ") + e.what());
  }
}

// The rollback journal, kept beside the snapshots so it survives the swap and is found on the
// filesystem it describes.
struct Journal {
  std::string path;
  std::string ts;
  std::string snapshot_id;
  std::string root_name;  // relative to the top level, e.g. "@"
  // The snapshot-store subvolume the root ran from when it is not root_name (the GRUB fallback
  // boot), e.g. "@upgrade-guard/<id>"; "" normally. It is never renamed.
  std::string running_from;
  std::uint64_t old_root_id = 0;
  std::string restore_name;  // e.g. "@upgrade-guard/<id>.restore-<ts>"
  std::uint64_t new_root_id = 0;
  std::string broken_name;  // e.g. "@upgrade-guard/rollback-<ts>-broken"
  bool exchange = true;
  bool set_default = false;
  bool live = false;
  // --root DIR where DIR is itself a mount of the root subvolume (subvol=@rootfs): the mount
  // keeps showing the replaced tree until it is mounted again.
  bool mounted = false;
  // Live, RollbackOptions::prepare_only: everything after restore_created waits for
  // complete_prepared() (the shutdown).
  bool prepared = false;
  std::string boot_id;  // the boot that prepared it
  bool boot = false;
  std::string esp_path;  // root-relative, "" when the snapshot holds no ESP copy
  std::vector<std::string> preserve;
  std::vector<std::string> preserved_done;
  std::vector<std::string> nested;
  RollbackStep step = RollbackStep::planned;
  std::string state = "in-progress";  // "complete", "reverted"
  std::string owner;                  // RollbackOptions::owner

  [[nodiscard]] std::string replaced_dir() const { return ".upgrade-guard-replaced-" + ts; }

  [[nodiscard]] base::Result<void> save() const {
    json j{{"version", 1},
           {"ts", ts},
           {"snapshot_id", snapshot_id},
           {"root_name", root_name},
           {"running_from", running_from},
           {"old_root_id", old_root_id},
           {"restore_name", restore_name},
           {"new_root_id", new_root_id},
           {"broken_name", broken_name},
           {"exchange", exchange},
           {"set_default", set_default},
           {"live", live},
           {"mounted", mounted},
           {"prepared", prepared},
           {"boot_id", boot_id},
           {"boot", boot},
           {"esp_path", esp_path},
           {"preserve", preserve},
           {"preserved_done", preserved_done},
           {"nested", nested},
           {"step", static_cast<int>(step)},
           {"step_name", to_string(step)},
           {"state", state},
           {"owner", owner}};
    return base::write_file_atomic(path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600);
  }

  [[nodiscard]] static base::Result<Journal> load(const std::string& path) {
    auto root = base::Root::open(parent_of(path).empty() ? "/" : parent_of(path));
    if (!root) return base::fail(root.error());
    auto text = root->read_file(base_of(path), 16 << 20);
    if (!text) return base::fail(text.error());
    try {
      auto j = json::parse(*text);
      Journal jl;
      jl.path = path;
      jl.ts = j.at("ts");
      jl.snapshot_id = j.at("snapshot_id");
      jl.root_name = j.at("root_name");
      jl.running_from = j.value("running_from", "");
      jl.old_root_id = j.at("old_root_id");
      jl.restore_name = j.at("restore_name");
      jl.new_root_id = j.at("new_root_id");
      jl.broken_name = j.at("broken_name");
      jl.exchange = j.at("exchange");
      jl.set_default = j.at("set_default");
      jl.live = j.value("live", false);
      jl.mounted = j.value("mounted", false);
      jl.prepared = j.value("prepared", false);
      jl.boot_id = j.value("boot_id", "");
      jl.boot = j.value("boot", false);
      jl.esp_path = j.value("esp_path", "");
      jl.preserve = j.at("preserve").get<std::vector<std::string>>();
      jl.preserved_done = j.at("preserved_done").get<std::vector<std::string>>();
      jl.nested = j.at("nested").get<std::vector<std::string>>();
      jl.step = static_cast<RollbackStep>(j.at("step").get<int>());
      jl.state = j.at("state");
      jl.owner = j.value("owner", "");
      return jl;
    } catch (const json::exception& e) {
      return base::fail("json", path, std::string("bad rollback journal: ") + e.what());
    }
  }
};

constexpr base::StringTable<RollbackStep, 9> kSteps{{{
    {RollbackStep::planned, "planned"},
    {RollbackStep::restore_created, "restore_created"},
    {RollbackStep::preserved, "preserved"},
    {RollbackStep::nested_moved, "nested_moved"},
    {RollbackStep::boot_restored, "boot_restored"},
    {RollbackStep::swapped, "swapped"},
    {RollbackStep::default_set, "default_set"},
    {RollbackStep::broken_kept, "broken_kept"},
    {RollbackStep::done, "done"},
}}};

RollbackResult result_of(const Journal& j, const std::string& top) {
  RollbackResult r;
  r.snapshot_id = j.snapshot_id;
  r.method = j.exchange && j.set_default ? "exchange+set-default" : j.exchange ? "exchange" : "set-default";
  // A root that runs from a snapshot in the store does not show the restored tree: the pinned
  // subvolume does, at its next mount (the next boot).
  r.takes_effect_now = !j.live && !j.mounted && j.running_from.empty();
  if (j.exchange && j.state == "complete") r.restored_path = top + "/" + j.root_name;
  r.broken = j.exchange ? j.broken_name : j.root_name.empty() ? "<top level>" : j.root_name;
  r.preserved = j.preserved_done;
  r.nested = j.nested;
  r.replaced_dir = "/" + j.replaced_dir();
  r.boot_restored = j.boot && j.step >= RollbackStep::boot_restored;
  r.journal = j.path;
  if (!j.running_from.empty()) {
    r.notes.push_back("the root runs from " + j.running_from +
                      " in the snapshot store (the GRUB fallback boot?): the rollback restored " + j.root_name +
                      ", the subvolume fstab and the boot configuration pin, which the next boot mounts; the upgraded "
                      "tree that was " + j.root_name + " is kept as " + j.broken_name + ", and " + j.running_from +
                      " is left as it is");
  } else if (j.live && j.prepared && j.step < RollbackStep::swapped) {
    r.notes.push_back(
        "prepared: the restored root replaces the running one when the system shuts down, after its services "
        "have stopped; everything written to the preserve paths until then is carried into it");
    r.notes.push_back(
        "if the machine goes down without a shutdown (power loss), the next boot completes the rollback before "
        "local services start and reboots into the restored root");
  } else if (j.live) {
    r.notes.push_back("the running system still uses the old root; the restored root starts at the next boot");
    if (!j.nested.empty())
      r.notes.push_back(
          "nested subvolumes were moved into the restored root already: their paths are gone from "
          "the running system, so reboot now");
    r.notes.push_back("data written to the preserve paths from now until the reboot stays in the old root (" +
                      j.broken_name + ")");
  }
  if (j.mounted)
    r.notes.push_back("the root directory is a mount of subvolume " + j.root_name +
                      " and keeps showing the replaced tree until it is mounted again (umount it, then mount "
                      "subvol=" + j.root_name + " there): the restored tree is what that mount shows next");
  if (!j.exchange)
    r.notes.push_back(
        "the old root is the top level itself and stays where it is; the default subvolume now "
        "points at the restored root");
  return r;
}

// Topmost nested subvolumes of the root at `root_path` (moving one moves those below it).
base::Result<std::vector<std::string>> topmost_nested(const std::string& root_path) {
  auto subs = btrfs::list_subvolumes(root_path, 0);
  if (!subs) return base::fail(subs.error());
  std::vector<std::string> out;
  for (const auto& s : *subs) {
    std::string p = rel(s.path);
    if (under(p, kStoreName)) continue;
    bool covered = false;
    for (const auto& o : out) covered = covered || under(p, o);
    if (!covered) out.push_back(p);
  }
  return out;
}

// What a journal says of its rollback; "swapped" is also read off the filesystem, since a crash
// may fall between the exchange and the journal write.
PendingRollback describe_journal(const Journal& j, const std::string& top) {
  bool swapped = j.step >= RollbackStep::swapped;
  if (!swapped && j.exchange && j.new_root_id != 0) {
    auto id = btrfs::subvolume_id(top + "/" + j.root_name);
    swapped = id && *id == j.new_root_id;
  }
  return PendingRollback{j.path,  j.snapshot_id, j.step, !swapped && j.state == "in-progress", j.owner, j.state,
                         j.prepared && !swapped && j.state == "in-progress"};
}

// Every journal in the store, oldest first; an empty one (a claimed name whose plan was never
// written: nothing changed) is passed over.
base::Result<std::vector<Journal>> load_journals(const std::string& store) {
  std::vector<Journal> out;
  if (!path_exists(store)) return out;
  auto fd = open_dir(store);
  if (!fd) return base::fail(fd.error());
  auto names = base::list_dir(fd->get(), store);  // sorted: oldest first
  if (!names) return base::fail(names.error());
  for (const auto& n : *names) {
    if (n.rfind("rollback-", 0) != 0 || n.size() <= 8 || n.compare(n.size() - 8, 8, ".journal") != 0) continue;
    struct stat st {};
    if (::stat((store + "/" + n).c_str(), &st) == 0 && st.st_size == 0) continue;
    auto j = Journal::load(store + "/" + n);
    if (!j) return base::fail(j.error());
    out.push_back(std::move(*j));
  }
  return out;
}

}  // namespace

const char* to_string(RollbackStep step) { return kSteps.name(step); }

base::Result<std::unique_ptr<BtrfsBackend>> BtrfsBackend::create(const Layout& layout, const policies::Policy& policy,
                                                                 TopLevelMount top) {
  if (!layout.btrfs()) return base::fail(kRefused, layout.root_dir, "the root is not on btrfs");
  if (!layout.is_subvolume)
    return base::fail(kRefused, layout.root_dir,
                      "the root is a directory inside subvolume " + layout.subvol_path +
                          ", not a subvolume of its own: btrfs snapshots cannot cover exactly it");
  return std::unique_ptr<BtrfsBackend>(new BtrfsBackend(layout, policy, std::move(top)));
}

base::Result<SnapshotInfo> BtrfsBackend::create(const std::string& label,
                                                const std::map<std::string, std::string>& metadata) {
  struct statvfs vfs {};
  if (::statvfs(top().c_str(), &vfs) != 0) return base::fail_errno("statvfs", top());
  std::uint64_t free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (free_bytes < min_free_) {
    return base::fail(base::Error{kRefused, layout_.device, ENOSPC,
                                  "not taking a snapshot: " + std::to_string(free_bytes >> 20) +
                                      " MiB free, the policy asks for at least " + std::to_string(min_free_ >> 20) +
                                      " MiB (snapshot.min_free_bytes); free space or prune snapshots"});
  }
  if (!path_exists(store())) {
    if (auto r = btrfs::create_subvolume(store()); !r) return base::fail(r.error());
  }
  std::time_t now = std::time(nullptr);
  std::string id = make_snapshot_id(now, label);
  for (int n = 2; path_exists(store() + "/" + id) || path_exists(store() + "/" + id + ".json"); ++n)
    id = make_snapshot_id(now, label) + "-" + std::to_string(n);

  std::string source = layout_.subvol_path.empty() ? top() : top() + "/" + layout_.subvol_path;
  std::string dest = store() + "/" + id;
  const std::string meta_path = store() + "/" + id + ".json";
  json j{{"id", id},
         {"backend", "btrfs"},
         {"label", label},
         {"created_unix", static_cast<std::int64_t>(now)},
         {"root_subvol_path", layout_.subvol_path},
         {"root_subvol_id", layout_.subvol_id},
         {"boot_captured", false},
         {"esp_path", ""},
         {"complete", false},
         {"metadata", metadata}};
  // The metadata first, marked incomplete: a process killed while the snapshot is made leaves
  // something list() reports as an incomplete snapshot, with the metadata saying whose it is,
  // and prune() removes it.
  if (auto r = base::write_file_atomic(meta_path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600); !r) return base::fail(r.error());
  // From here on a failure removes what was made: no half-written snapshot stays.
  auto undo = [&](base::Error e) -> base::Result<SnapshotInfo> {
    for (const char* suffix : {".boot", ".esp"}) {
      if (auto fd = open_dir(store())) (void)remove_tree(fd->get(), id + suffix);
      (void)::unlink((store() + "/" + id + suffix + ".manifest").c_str());
    }
    if (path_exists(dest)) (void)btrfs::delete_subvolume(dest);
    (void)::unlink(meta_path.c_str());
    return base::fail(std::move(e));
  };
  if (auto r = btrfs::create_snapshot(source, dest, true); !r) return undo(r.error());

  bool boot = false;
  if (layout_.boot_separate) {
    std::string boot_dir = (layout_.root_dir == "/" ? std::string() : layout_.root_dir) + "/boot";
    auto cap = capture_boot(boot_dir, store(), id);
    if (!cap) return undo(cap.error());
    boot = true;
  }
  std::string esp;
  if (layout_.esp_separate && !layout_.esp_path.empty()) {
    std::string esp_dir = (layout_.root_dir == "/" ? std::string() : layout_.root_dir) + layout_.esp_path;
    auto cap = capture_boot(esp_dir, store(), id, ".esp");
    if (!cap) return undo(cap.error());
    esp = layout_.esp_path;
  }
  j["boot_captured"] = boot;
  j["esp_path"] = esp;
  j["complete"] = true;
  if (auto r = base::write_file_atomic(meta_path, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600); !r) return undo(r.error());
  return info(id);
}

namespace {

// Entries of the store that are not snapshots of their own: a snapshot's /boot and ESP copies,
// a rollback's restore subvolume, journals, manifests, temporary files.
bool snapshot_name(const std::string& n) {
  auto ends = [&](std::string_view suffix) {
    return n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return !n.empty() && n[0] != '.' && !ends(".boot") && !ends(".esp") && !ends(".json") && !ends(".manifest") &&
         !ends(".journal") && n.find(".restore-") == std::string::npos && n.find(".tmp") == std::string::npos;
}

bool broken_name(const std::string& n) {
  return n.rfind("rollback-", 0) == 0 && n.size() > 16 && n.compare(n.size() - 7, 7, "-broken") == 0;
}

}  // namespace

// A snapshot as the store shows it: its metadata when there is some (incomplete when the
// subvolume is missing), else what the subvolume itself says: a kept broken root, or a snapshot
// whose creation was interrupted before its metadata was written (older versions wrote it last).
base::Result<SnapshotInfo> BtrfsBackend::describe(const std::string& id) {
  const std::string meta = store() + "/" + id + ".json";
  const bool has_subvolume = path_exists(store() + "/" + id);
  if (path_exists(meta)) {
    auto root = base::Root::open(store());
    if (!root) return base::fail(root.error());
    auto text = root->read_file(id + ".json", 1 << 20);
    if (!text) return base::fail(text.error());
    auto info = parse_info(*text, store());
    if (!info) return base::fail(info.error());
    if (!has_subvolume) info->complete = false;
    return info;
  }
  if (!has_subvolume) return base::fail("snapshot", id, "no such snapshot (see `upgrade-guard snapshot list`)");
  struct stat st {};
  if (::lstat((store() + "/" + id).c_str(), &st) != 0) return base::fail_errno("lstat", store() + "/" + id);
  SnapshotInfo info;
  info.id = id;
  info.backend = "btrfs";
  info.location = store() + "/" + id;
  info.created_unix = st.st_mtime;
  if (broken_name(id)) {
    info.kind = "broken";
    info.label = "a root replaced by a rollback";
  } else {
    info.complete = false;
    info.label = "(interrupted while it was taken)";
  }
  return info;
}

base::Result<std::vector<SnapshotInfo>> BtrfsBackend::list() {
  std::vector<SnapshotInfo> out;
  if (!path_exists(store())) return out;
  auto fd = open_dir(store());
  if (!fd) return base::fail(fd.error());
  auto names = base::list_dir(fd->get(), store());
  if (!names) return base::fail(names.error());
  std::set<std::string> ids;
  for (const auto& n : *names) {
    struct stat st {};
    if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) {
      ids.insert(n.substr(0, n.size() - 5));
    } else if (snapshot_name(n) && ::fstatat(fd->get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISDIR(st.st_mode)) {
      ids.insert(n);
    }
  }
  for (const auto& id : ids) {
    auto info = describe(id);
    if (!info) return base::fail(info.error());
    out.push_back(std::move(*info));
  }
  std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return a.created_unix != b.created_unix ? a.created_unix < b.created_unix : a.id < b.id;
  });
  return out;
}

base::Result<SnapshotInfo> BtrfsBackend::info(const std::string& id) {
  if (!valid_id(id)) return base::fail("snapshot", id, "no such snapshot (see `upgrade-guard snapshot list`)");
  return describe(id);
}

base::Result<void> BtrfsBackend::remove(const std::string& id) {
  auto snap = info(id);
  if (!snap) return base::fail(snap.error());
  auto pending = pending_rollbacks();
  if (!pending) return base::fail(pending.error());
  for (const auto& p : *pending)
    if (p.snapshot_id == id)
      return base::fail(kRefused, id,
                        "a rollback to this snapshot is unfinished (" + p.journal + "): run recover first");
  if (path_exists(snap->location)) {
    // After a rollback of the live root the replaced tree is the running system until the
    // reboot: never delete the root someone runs from.
    if (auto sub = btrfs::subvolume_id(snap->location); sub && layout_.live && *sub == layout_.subvol_id)
      return base::fail(kRefused, id, "snapshot " + id + " is the running system's root until the next boot");
    if (auto r = btrfs::delete_subvolume(snap->location); !r) return r;
  }
  for (const char* suffix : {".boot", ".esp"}) {
    if (auto fd = open_dir(store())) {
      if (auto r = remove_tree(fd->get(), id + suffix); !r) return r;
    }
    (void)::unlink((store() + "/" + id + suffix + ".manifest").c_str());
  }
  if (::unlink((store() + "/" + id + ".json").c_str()) != 0 && errno != ENOENT)
    return base::fail_errno("unlink", store() + "/" + id + ".json");
  return {};
}

base::Result<base::Root> BtrfsBackend::open(const std::string& id) {
  auto snap = info(id);
  if (!snap) return base::fail(snap.error());
  if (!snap->complete)
    return base::fail(kRefused, id, "snapshot " + id + " is incomplete (taking it was interrupted): it cannot be used");
  return base::Root::open(snap->location);
}

namespace {

// Runs the rollback forward from the step after `j.step` to the end. Every step first checks
// whether it already happened (a crash may fall between the act and the journal write).
// `finishing`: also the steps a prepared rollback leaves for complete_prepared().
base::Result<void> run_forward(Journal& j, const std::string& top, const std::string& store,
                               const std::optional<RollbackStep>& stop_after, bool finishing = true) {
  auto topfd = open_dir(top);
  if (!topfd) return base::fail(topfd.error());
  const std::string old_root = j.root_name.empty() ? top : top + "/" + j.root_name;
  const std::string new_root = top + "/" + j.restore_name;

  auto finish = [&](RollbackStep s) -> base::Result<void> {
    j.step = s;
    if (s == RollbackStep::done) j.state = "complete";
    if (auto r = j.save(); !r) return r;
    if (stop_after && *stop_after == s)
      return base::fail(base::Error{"rollback", j.path, EINTR,
                                    std::string("interrupted after step ") + to_string(s) + " (test hook)"});
    return {};
  };
  auto swapped = [&]() -> bool {
    if (!j.exchange) return j.step >= RollbackStep::swapped;
    auto id = btrfs::subvolume_id(top + "/" + j.root_name);
    return id && *id == j.new_root_id && j.new_root_id != 0;
  };

  if (j.step < RollbackStep::restore_created) {
    if (!path_exists(new_root)) {
      if (auto r = btrfs::create_snapshot(store + "/" + j.snapshot_id, new_root, false); !r) return r;
    }
    auto id = btrfs::subvolume_id(new_root);
    if (!id) return base::fail(id.error());
    j.new_root_id = *id;
    if (auto r = finish(RollbackStep::restore_created); !r) return r;
  }
  if (j.prepared && !finishing && !swapped()) return {};

  if (j.step < RollbackStep::preserved) {
    auto newfd = open_dir(new_root);
    if (!newfd) return base::fail(newfd.error());
    for (const auto& p : j.preserve) {
      std::string r = rel(p);
      if (r.empty() || std::find(j.preserved_done.begin(), j.preserved_done.end(), p) != j.preserved_done.end())
        continue;
      bool in_nested = false;
      for (const auto& n : j.nested) in_nested = in_nested || under(r, n);
      std::string name = base_of(r), parent = parent_of(r);
      auto old_parent = open_in(old_root, parent, false);
      struct stat st {};
      if (in_nested || !old_parent || !exists_at(old_parent->get(), name, &st)) {
        // Nothing to carry (absent in the current root), or it is a nested subvolume, which
        // the next step moves whole.
        j.preserved_done.push_back(p);
        if (auto s = j.save(); !s) return s;
        continue;
      }
      auto new_parent = open_in(new_root, parent, true);
      if (!new_parent) return base::fail(new_parent.error());
      std::string tmp = name + ".upgrade-guard-tmp";
      if (auto x = remove_tree(new_parent->get(), tmp); !x) return x;
      std::string aside_rel = j.replaced_dir() + (parent.empty() ? "" : "/" + parent);
      if (exists_at(new_parent->get(), name)) {
        auto aside = open_in(new_root, aside_rel, true);
        if (!aside) return base::fail(aside.error());
        if (!exists_at(aside->get(), name)) {
          if (::renameat(new_parent->get(), name.c_str(), aside->get(), name.c_str()) != 0)
            return base::fail_errno("renameat", new_root + "/" + r, errno, "cannot move the snapshot's version aside");
        } else {
          // Our own copy already renamed into place before a crash: it is complete.
          j.preserved_done.push_back(p);
          if (auto s = j.save(); !s) return s;
          continue;
        }
      }
      auto copied = copy_tree(old_parent->get(), name, new_parent->get(), tmp);
      if (!copied) return base::fail(copied.error());
      if (::renameat(new_parent->get(), tmp.c_str(), new_parent->get(), name.c_str()) != 0)
        return base::fail_errno("renameat", new_root + "/" + r);
      j.preserved_done.push_back(p);
      if (auto s = j.save(); !s) return s;
    }
    if (auto x = finish(RollbackStep::preserved); !x) return x;
  }

  if (j.step < RollbackStep::nested_moved) {
    for (const auto& n : j.nested) {
      std::string name = base_of(n), parent = parent_of(n);
      auto new_parent = open_in(new_root, parent, true);
      if (!new_parent) return base::fail(new_parent.error());
      auto old_parent = open_in(old_root, parent, false);
      struct stat st {};
      if (!old_parent || !exists_at(old_parent->get(), name, &st)) continue;  // moved before a crash
      auto sub_id = btrfs::is_subvolume(old_root + "/" + n);
      if (!sub_id || !*sub_id) continue;  // already moved; a placeholder or nothing is left
      if (exists_at(new_parent->get(), name)) {
        // The snapshot shows a nested subvolume as an empty directory: drop it; anything else
        // (a directory that later became a subvolume) is kept aside.
        if (::unlinkat(new_parent->get(), name.c_str(), AT_REMOVEDIR) != 0) {
          auto aside = open_in(new_root, j.replaced_dir() + (parent.empty() ? "" : "/" + parent), true);
          if (!aside) return base::fail(aside.error());
          if (::renameat(new_parent->get(), name.c_str(), aside->get(), name.c_str()) != 0)
            return base::fail_errno("renameat", new_root + "/" + n);
        }
      }
      if (::renameat(old_parent->get(), name.c_str(), new_parent->get(), name.c_str()) != 0)
        return base::fail_errno("renameat", old_root + "/" + n, errno, "cannot move the nested subvolume");
      if (auto s = j.save(); !s) return s;
    }
    if (auto x = finish(RollbackStep::nested_moved); !x) return x;
  }

  if (j.step < RollbackStep::boot_restored) {
    if (j.boot) {
      std::string boot_dir = (j.live ? std::string() : old_root) + "/boot";
      if (auto r = restore_boot(boot_dir, store, j.snapshot_id, ".boot", j.ts); !r) return r;
    }
    if (!j.esp_path.empty()) {
      std::string esp_dir = (j.live ? std::string() : old_root) + j.esp_path;
      if (auto r = restore_boot(esp_dir, store, j.snapshot_id, ".esp", j.ts); !r) return r;
    }
    if (auto x = finish(RollbackStep::boot_restored); !x) return x;
  }

  if (j.step < RollbackStep::swapped) {
    if (j.exchange && !swapped()) {
      if (::renameat2(topfd->get(), j.root_name.c_str(), topfd->get(), j.restore_name.c_str(), RENAME_EXCHANGE) != 0)
        return base::fail_errno("renameat2 RENAME_EXCHANGE", top + "/" + j.root_name);
    }
    if (auto x = finish(RollbackStep::swapped); !x) return x;
  }

  if (j.step < RollbackStep::default_set) {
    if (j.set_default) {
      if (auto r = btrfs::set_default_subvolume(top, j.new_root_id); !r) return r;
    }
    if (auto x = finish(RollbackStep::default_set); !x) return x;
  }

  if (j.step < RollbackStep::broken_kept) {
    if (j.exchange && path_exists(top + "/" + j.restore_name)) {
      auto id = btrfs::subvolume_id(top + "/" + j.restore_name);
      if (id && *id == j.old_root_id) {
        if (::renameat(topfd->get(), j.restore_name.c_str(), topfd->get(), j.broken_name.c_str()) != 0)
          return base::fail_errno("renameat", top + "/" + j.broken_name);
      }
    }
    // A live root's old tree is still the running system until the reboot: read-only now,
    // every service on it would fail its writes (journald included). It stays writable.
    // The same for a root directory that is a mount of the old tree: whoever uses it keeps it.
    if (j.exchange && !j.live && !j.mounted && path_exists(top + "/" + j.broken_name)) {
      if (auto r = btrfs::set_read_only(top + "/" + j.broken_name, true); !r) return r;
    }
    // Described like a snapshot, so that `snapshot list` shows it and `snapshot delete` can
    // remove it once nobody needs it.
    if (j.exchange && path_exists(top + "/" + j.broken_name)) {
      const std::string id = j.broken_name.substr(j.broken_name.rfind('/') + 1);
      json meta{{"id", id},
                {"backend", "btrfs"},
                {"label", "root replaced by the rollback to " + j.snapshot_id},
                {"created_unix", static_cast<std::int64_t>(std::time(nullptr))},
                {"kind", "broken"},
                {"complete", true},
                {"boot_captured", false},
                {"esp_path", ""},
                {"metadata", {{"rollback", j.owner}, {"restored", j.snapshot_id}}}};
      if (auto r = base::write_file_atomic(store + "/" + id + ".json", meta.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", 0600); !r) return r;
    }
    if (auto x = finish(RollbackStep::broken_kept); !x) return x;
  }
  return finish(RollbackStep::done);
}

// A rollback interrupted after it carried the preserve paths and before the swap is completed
// later (recover, the next boot): what was written to them in between is in the old root only.
// Carries them again: each copy made before (the snapshot's own version is aside, or the
// snapshot never had the path) is replaced by a fresh copy of the old root's.
base::Result<void> refresh_preserved(Journal& j, const std::string& top, const std::string& store) {
  const std::string old_root = j.root_name.empty() ? top : top + "/" + j.root_name;
  const std::string new_root = top + "/" + j.restore_name;
  for (const auto& p : j.preserved_done) {
    std::string r = rel(p);
    bool in_nested = false;
    for (const auto& n : j.nested) in_nested = in_nested || under(r, n);
    if (r.empty() || in_nested) continue;
    std::string name = base_of(r), parent = parent_of(r);
    auto old_parent = open_in(old_root, parent, false);
    if (!old_parent || !exists_at(old_parent->get(), name)) continue;  // nothing was carried
    auto new_parent = open_in(new_root, parent, false);
    if (!new_parent) continue;
    auto aside = open_in(new_root, j.replaced_dir() + (parent.empty() ? "" : "/" + parent), false);
    const bool ours = (aside && exists_at(aside->get(), name)) || !path_exists(store + "/" + j.snapshot_id + "/" + r);
    if (!ours) continue;
    std::string tmp = name + ".upgrade-guard-tmp";
    if (auto x = remove_tree(new_parent->get(), tmp); !x) return x;
    auto copied = copy_tree(old_parent->get(), name, new_parent->get(), tmp);
    if (!copied) return base::fail(copied.error());
    if (auto x = remove_tree(new_parent->get(), name); !x) return x;
    if (::renameat(new_parent->get(), tmp.c_str(), new_parent->get(), name.c_str()) != 0)
      return base::fail_errno("renameat", new_root + "/" + r);
  }
  return {};
}

// Undoes a rollback that has not swapped: nested subvolumes go back, /boot goes back, the
// restore subvolume is deleted. The current root was never replaced.
base::Result<void> run_revert(Journal& j, const std::string& top, const std::string& store) {
  const std::string old_root = j.root_name.empty() ? top : top + "/" + j.root_name;
  const std::string new_root = top + "/" + j.restore_name;
  if (path_exists(new_root)) {
    for (const auto& n : j.nested) {
      std::string name = base_of(n), parent = parent_of(n);
      auto new_parent = open_in(new_root, parent, false);
      if (!new_parent) continue;
      auto is_sub = btrfs::is_subvolume(new_root + "/" + n);
      if (!is_sub || !*is_sub) continue;
      auto old_parent = open_in(old_root, parent, true);
      if (!old_parent) return base::fail(old_parent.error());
      struct stat st {};
      if (exists_at(old_parent->get(), name, &st)) {
        if (::unlinkat(old_parent->get(), name.c_str(), AT_REMOVEDIR) != 0)
          return base::fail_errno("unlinkat", old_root + "/" + n, errno, "cannot put the nested subvolume back");
      }
      if (::renameat(new_parent->get(), name.c_str(), old_parent->get(), name.c_str()) != 0)
        return base::fail_errno("renameat", old_root + "/" + n, errno, "cannot put the nested subvolume back");
    }
    // restore_boot may have begun before a crash even when the journal does not say so; when it
    // never started there is no aside directory and this does nothing.
    if (!j.esp_path.empty()) {
      if (auto r = unrestore_boot((j.live ? std::string() : old_root) + j.esp_path, j.ts); !r) return r;
    }
    if (j.boot) {
      if (auto r = unrestore_boot((j.live ? std::string() : old_root) + "/boot", j.ts); !r) return r;
    }
    if (auto r = btrfs::delete_subvolume(new_root, true); !r) return r;
  }
  (void)store;
  j.state = "reverted";
  return j.save();
}

}  // namespace

base::Result<RollbackResult> BtrfsBackend::rollback(const std::string& id, const RollbackOptions& options) {
  if (layout_.pinned_by_id())
    return base::fail(kRefused, layout_.root_dir,
                      "the root is pinned by subvolid= (fstab, kernel command line or grub.cfg): a rollback "
                      "cannot change which subvolume boots; pin it with subvol= instead");
  // The subvolume the boot configuration pins, never a snapshot the system runs from.
  auto target = rollback_target(layout_);
  if (!target) return base::fail(target.error());
  auto snap = info(id);
  if (!snap) return base::fail(snap.error());
  if (!snap->complete)
    return base::fail(kRefused, id, "snapshot " + id + " is incomplete (taking it was interrupted): no rollback to it");
  auto pending = pending_rollbacks();
  if (!pending) return base::fail(pending.error());
  if (!pending->empty())
    return base::fail(kRefused, (*pending)[0].journal,
                      "another rollback is unfinished: complete or revert it first (upgrade-guard recover)");

  Journal j;
  std::time_t now = std::time(nullptr);
  // The journal's name is claimed with O_EXCL, so two rollbacks never share one (the guard's
  // lock already keeps them apart; this holds without it too). An empty journal is a claim
  // whose plan was never written: nothing was changed, pending_rollbacks() passes over it.
  for (int n = 1;; ++n) {
    j.ts = n == 1 ? utc_stamp(now) : utc_stamp(now) + "-" + std::to_string(n);
    j.path = store() + "/rollback-" + j.ts + ".journal";
    UniqueFd claim(::open(j.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (claim) break;
    if (errno != EEXIST) return base::fail_errno("open", j.path, errno, "cannot create the rollback journal");
  }
  j.owner = options.owner;
  j.snapshot_id = id;
  j.root_name = target->subvol_path;
  j.running_from = target->running_from;
  std::string old_root = j.root_name.empty() ? top() : top() + "/" + j.root_name;
  auto old_id = btrfs::subvolume_id(old_root);
  if (!old_id) {
    ::unlink(j.path.c_str());  // the claim: nothing was changed
    if (!j.running_from.empty())
      return base::fail(kRefused, old_root,
                        "the root runs from " + j.running_from + " and the boot configuration pins " + j.root_name +
                            ", which is not a subvolume of this filesystem: nothing to roll back into");
    return base::fail(old_id.error());
  }
  // Not layout_.subvol_id: after an earlier rollback the path names another subvolume, and
  // the path is what boots.
  j.old_root_id = *old_id;
  j.restore_name = std::string(kStoreName) + "/" + id + ".restore-" + j.ts;
  j.broken_name = std::string(kStoreName) + "/rollback-" + j.ts + "-broken";
  j.exchange = !j.root_name.empty();
  j.set_default = !layout_.pinned_by_path();
  if (!j.exchange && !j.set_default)
    return base::fail(kRefused, layout_.root_dir,
                      "the root is the top level and pinned by subvol=: nothing can swap it");
  j.live = layout_.live;
  // Running from a snapshot (the GRUB fallback boot), nothing uses the pinned root: no reason
  // to wait for the shutdown.
  j.prepared = j.live && options.prepare_only && j.exchange && j.running_from.empty();
  j.boot_id = options.boot_id;
  j.mounted = !j.live && layout_.mount_fs_root != "/" && same_dir(layout_.mount_point, layout_.root_dir);
  j.boot = snap->boot_captured;
  j.esp_path = snap->esp_path;
  j.preserve = options.preserve ? *options.preserve : preserve_;
  auto nested = topmost_nested(old_root);
  if (!nested) return base::fail(nested.error());
  j.nested = *nested;
  if (auto r = j.save(); !r) return base::fail(r.error());
  if (options.stop_after && *options.stop_after == RollbackStep::planned)
    return base::fail(base::Error{"rollback", j.path, EINTR, "interrupted after step planned (test hook)"});
  if (auto r = run_forward(j, top(), store(), options.stop_after, false); !r) return base::fail(r.error());
  return result_of(j, top());
}

base::Result<std::vector<RollbackResult>> BtrfsBackend::complete_prepared(const std::string& except_boot) {
  auto all = load_journals(store());
  if (!all) return base::fail(all.error());
  std::vector<RollbackResult> out;
  for (auto& j : *all) {
    if (j.state != "in-progress" || !j.prepared) continue;
    if (!except_boot.empty() && j.boot_id == except_boot) continue;
    if (auto r = run_forward(j, top(), store(), std::nullopt, true); !r) return base::fail(r.error());
    out.push_back(result_of(j, top()));
  }
  return out;
}

base::Result<std::optional<std::string>> BtrfsBackend::pinned_root_path() {
  auto target = rollback_target(layout_);
  if (!target) return base::fail(target.error());
  if (target->running_from.empty()) return std::nullopt;
  return target->subvol_path.empty() ? top() : top() + "/" + target->subvol_path;
}

base::Result<std::vector<PendingRollback>> BtrfsBackend::pending_rollbacks() {
  auto all = load_journals(store());
  if (!all) return base::fail(all.error());
  std::vector<PendingRollback> out;
  for (const auto& j : *all) {
    if (j.state == "in-progress") out.push_back(describe_journal(j, top()));
  }
  return out;
}

base::Result<std::optional<PendingRollback>> BtrfsBackend::find_rollback(const std::string& owner) {
  std::optional<PendingRollback> found;
  if (owner.empty()) return found;
  auto all = load_journals(store());
  if (!all) return base::fail(all.error());
  for (const auto& j : *all) {
    if (j.owner == owner) found = describe_journal(j, top());
  }
  return found;
}

base::Result<RollbackResult> BtrfsBackend::resume_rollback(const std::string& journal, ResumeMode mode) {
  auto j = Journal::load(journal);
  if (!j) return base::fail(j.error());
  if (j->state != "in-progress") return result_of(*j, top());
  if (mode == ResumeMode::complete) {
    if (describe_journal(*j, top()).can_revert && j->step >= RollbackStep::preserved) {
      if (auto r = refresh_preserved(*j, top(), store()); !r) return base::fail(r.error());
    }
    if (auto r = run_forward(*j, top(), store(), std::nullopt, false); !r) return base::fail(r.error());
    return result_of(*j, top());
  }
  auto pending = pending_rollbacks();
  if (!pending) return base::fail(pending.error());
  for (const auto& p : *pending) {
    if (p.journal == journal && !p.can_revert)
      return base::fail(kRefused, journal,
                        "the restored root has already been swapped in; the rollback can only be completed");
  }
  if (auto r = run_revert(*j, top(), store()); !r) return base::fail(r.error());
  auto res = result_of(*j, top());
  res.notes.push_back("the rollback was reverted; the root is as it was before it");
  return res;
}

}  // namespace guard::snapshots
