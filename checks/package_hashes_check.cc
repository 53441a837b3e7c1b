#include "checks/package_hashes_check.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <execution>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "base/regular_file.h"
#include "checks/dpkg_db.h"
#include "checks/hash_cache.h"
#include "checks/md5.h"

namespace guard::checks {
namespace {

// One file to hash.
struct Job {
  std::string listed;    // as the package lists it, e.g. "/bin/bash"
  std::string diverted;  // where it is on disk when diverted, else empty
  std::string md5;       // expected
  const PackageRecord* package = nullptr;
  bool conffile = false;
  std::uint64_t size = 0;
  bool present = false;   // exists (missing files are package-files' business)
  bool regular = false;
  FileIdentity identity;  // from the size pass
  bool from_cache = false;  // the verified-hash cache vouches for it: not read
  bool cacheable = false;   // hashed, matched, and unchanged while it was read
  std::unique_ptr<Finding> finding;  // rare: kept out of line so the job list stays small

  [[nodiscard]] const std::string& location() const { return diverted.empty() ? listed : diverted; }
};

std::string divert(const DpkgDb& db, const std::string& path, const PackageRecord& pkg) {
  std::string where = db.diversions().location(path, pkg.name);
  return where == path ? std::string() : where;
}

bool wanted_path(const Scope& scope, const std::string& path) {
  if (scope.paths.empty()) return false;
  std::string alias = usr_alias(path);
  return scope.paths.count(path) > 0 || scope.paths.count(usr_canonical(path)) > 0 ||
         (!alias.empty() && scope.paths.count(alias) > 0);
}

void collect(const CheckContext& ctx, const DpkgDb& db, const PackageRecord& pkg, std::vector<Job>& jobs,
             std::vector<Finding>& findings) {
  bool everything = in_scope(ctx.scope, pkg);
  if (!everything && ctx.scope.paths.empty()) return;
  std::unordered_set<std::string_view> conffile_paths;
  for (const auto& c : pkg.conffiles) conffile_paths.insert(c.path);
  if (ctx.policy.conffiles != Severity::off) {
    for (const auto& c : pkg.conffiles) {
      if (c.obsolete || c.remove_on_upgrade || c.md5 == "newconffile" || c.md5.size() != 32) continue;
      if (!everything && !wanted_path(ctx.scope, c.path)) continue;
      if (db.filter().excluded(c.path)) continue;
      Job j;
      j.listed = c.path;
      j.diverted = divert(db, c.path, pkg);
      j.md5 = c.md5;
      j.package = &pkg;
      j.conffile = true;
      jobs.push_back(std::move(j));
    }
  }
  auto sums = db.md5sums(pkg);
  if (!sums) {
    if (!everything) return;
    findings.push_back(make_package_finding("package-hashes", Severity::warn, pkg.key(), db.info_path(pkg, ".md5sums"),
                                            "the package's md5sums cannot be used: " + sums.error().to_string(),
                                            repair_command(ctx.root, "apt-get install --reinstall " + pkg.key()),
                                            "bad-md5sums"));
    return;
  }
  if (!*sums) return;
  for (auto& e : **sums) {
    if (conffile_paths.count(e.path) > 0) continue;
    if (!everything && !wanted_path(ctx.scope, e.path)) continue;
    if (db.filter().excluded(e.path)) continue;
    Job j;
    j.diverted = divert(db, e.path, pkg);
    j.listed = std::move(e.path);
    j.md5 = std::move(e.md5);
    j.package = &pkg;
    jobs.push_back(std::move(j));
  }
}

// A finding about the file of job `j`; the hint reinstalls its package.
Finding job_finding(const CheckContext& ctx, const Job& j, Severity severity, std::string message, std::string id) {
  const std::string package = j.package->key();
  return make_package_finding("package-hashes", severity, package, j.location(), std::move(message),
                              repair_command(ctx.root, "apt-get install --reinstall " + package), std::move(id));
}

std::string diverted_note(const Job& j) {
  return j.diverted.empty() ? std::string() : fmt::format(" (diverted from {})", j.listed);
}

// Whether the file's identity is the one of the size pass, unchanged while it was read, and
// old enough (`settled_before`, unix ns) that a write in the same clock tick as the stat could
// not have left ctime as it was.
bool stable(int fd, const Job& j, std::int64_t settled_before) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || FileIdentity::of(st) != j.identity) return false;
  return j.identity.ctime_sec * 1'000'000'000 + j.identity.ctime_nsec < settled_before;
}

void hash_one(const CheckContext& ctx, Job& j, std::int64_t settled_before) {
  // Regular files only: one replaced by /dev/zero since the size pass would be hashed forever.
  auto fd = base::open_regular(ctx.root, j.location());
  if (!fd && fd.error().err == ENOENT) return;  // removed since the size pass
  bool before = fd && settled_before > 0 && stable(fd->get(), j, settled_before);
  auto digest = fd ? md5_fd(fd->get(), j.location()) : base::Result<FileDigest>(tl::unexpected(fd.error()));
  if (digest && digest->md5 == j.md5) {
    j.cacheable = before && stable(fd->get(), j, settled_before);
    return;
  }
  const std::string package = j.package->key();
  if (!digest) {
    j.finding = std::make_unique<Finding>(job_finding(
        ctx, j, Severity::warn,
        fmt::format("cannot read {}{}: {}", j.location(), diverted_note(j), digest.error().to_string()), "unreadable"));
  } else if (j.conffile) {
    j.finding = std::make_unique<Finding>(make_package_finding(
        "package-hashes", ctx.policy.conffiles, package, j.location(),
        fmt::format("conffile {} of package {} differs from the version installed{} (edited by the administrator?)",
                    j.location(), package, diverted_note(j)),
        "if the edit is not intended: " +
            repair_command(ctx.root, "apt-get install --reinstall -o Dpkg::Options::=--force-confask " + package),
        "conffile-changed"));
  } else {
    bool system = digest->elf || is_system_path(j.location());
    j.finding = std::make_unique<Finding>(job_finding(
        ctx, j, system ? Severity::block : Severity::warn,
        fmt::format("{} {} of package {} has changed since it was installed{} (md5 {}, package says {})",
                    digest->elf ? "ELF file" : "file", j.location(), package, diverted_note(j), digest->md5, j.md5),
        "changed"));
  }
}

// The verified-hash cache of a run: whether it is used, trusted, and the entries read.
struct CacheUse {
  bool use = false;    // read and rewritten: a full scope with a cache file
  bool trust = false;  // its entries vouch for unchanged files (not a deep run)
  bool deep = false;
  HashCache old;
  RootIdentity root;
  std::int64_t now = 0;             // unix seconds at the start
  std::int64_t settled_before = 0;  // unix ns: a file changed since is not cached (0 = no caching)
  std::string note;
};

CacheUse open_cache(const CheckContext& ctx) {
  CacheUse c;
  if (ctx.hash_cache.file.empty() || !ctx.scope.full) return c;
  auto wall = std::chrono::system_clock::now().time_since_epoch();
  c.now = std::chrono::duration_cast<std::chrono::seconds>(wall).count();
  // A second of margin covers the coarse clock the kernel stamps ctime with.
  c.settled_before = std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count() - 1'000'000'000;
  auto root = RootIdentity::of(ctx.root);
  if (!root) {
    c.note = "the hash cache is not used: cannot identify the root (" + root.error().to_string() + ")";
    c.settled_before = 0;
    return c;
  }
  c.use = true;
  c.root = *root;
  const std::string& file = ctx.hash_cache.file;
  auto read = read_hash_cache(file);
  bool valid = false;
  if (!read) {
    if (read.error().err != ENOENT)
      c.note = "the hash cache is ignored and rebuilt: " + read.error().to_string();
  } else if (!(read->root == c.root)) {
    c.note = "the hash cache " + file + " is ignored and rebuilt: it was written for another root (another "
             "filesystem, subvolume or root directory)";
  } else {
    valid = true;
    c.old = std::move(*read);
  }
  const std::int64_t every = ctx.policy.audit.deep_every.count();
  c.deep = ctx.hash_cache.deep || !valid || every == 0 || c.now - c.old.last_deep >= every;
  c.trust = !c.deep;
  return c;
}

// Writes the files verified this run (read or vouched for) as the new cache; a note for the
// summary.
std::string save_cache(const CheckContext& ctx, const CacheUse& c, const std::vector<Job>& jobs) {
  HashCache next;
  next.root = c.root;
  next.last_deep = c.deep ? c.now : c.old.last_deep;
  for (const auto& j : jobs) {
    if (j.from_cache || j.cacheable) next.entries.push_back(CachedHash{j.location(), j.md5, j.identity});
  }
  std::sort(next.entries.begin(), next.entries.end(),
            [](const CachedHash& a, const CachedHash& b) { return a.path < b.path; });
  next.entries.erase(std::unique(next.entries.begin(), next.entries.end(),
                                 [](const CachedHash& a, const CachedHash& b) { return a.path == b.path; }),
                     next.entries.end());
  std::string note = c.deep ? " (deep: every file read)" : "";
  if (auto w = write_hash_cache(ctx.hash_cache.file, next); !w)
    note += "; the hash cache cannot be written: " + w.error().to_string();
  return note;
}

}  // namespace

base::Result<CheckOutput> PackageHashesCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  auto loaded = load_dpkg_db_if_present(ctx.root);
  if (!loaded) return tl::unexpected(loaded.error());
  if (!*loaded) {
    out.skipped = kNoDpkgDatabase;
    return out;
  }
  auto& db = *loaded;
  CacheUse cache = open_cache(ctx);

  std::vector<Job> jobs;
  jobs.reserve(db->packages().size() * 64);
  for (const auto& p : db->packages()) {
    if (has_files(p.state)) collect(ctx, *db, p, jobs, out.findings);
  }

  // Size pass: skip what is missing (package-files reports it), order largest first so
  // the big files do not end up alone on one core at the end.
  std::for_each(std::execution::par, jobs.begin(), jobs.end(), [&](Job& j) {
    auto st = ctx.root.stat(j.location());
    if (!st) return;
    j.present = true;
    j.regular = S_ISREG(st->st_mode);
    j.size = static_cast<std::uint64_t>(st->st_size);
    j.identity = FileIdentity::of(*st);
    if (cache.trust && j.regular) {
      const CachedHash* e = cache.old.find(j.location());
      j.from_cache = e != nullptr && e->md5 == j.md5 && e->identity == j.identity;
    }
  });
  std::vector<Job*> order;
  order.reserve(jobs.size());
  for (auto& j : jobs) {
    if (!j.present) continue;
    if (!j.regular) {
      Severity severity = j.conffile                     ? ctx.policy.conffiles
                          : is_system_path(j.location()) ? Severity::block
                                                         : Severity::warn;
      out.findings.push_back(job_finding(
          ctx, j, severity, fmt::format("{} of package {} is no longer a regular file", j.location(), j.package->key()),
          "not-regular"));
      continue;
    }
    if (j.from_cache) {
      ++out.cached;
      continue;
    }
    order.push_back(&j);
  }
  std::stable_sort(order.begin(), order.end(), [](const Job* a, const Job* b) { return a->size > b->size; });

  // Each worker pulls the next largest file from a shared counter until none are left, so
  // the order is largest first across all cores and no core ends up waiting (TBB spins while
  // it waits for a stolen chunk of big files, which costs CPU on a busy machine).
  std::atomic<std::size_t> next{0};
  std::mutex progress_mutex;
  std::vector<std::size_t> workers(std::max(1U, std::thread::hardware_concurrency()));
  for (std::size_t i = 0; i < workers.size(); ++i) workers[i] = i;
  std::for_each(std::execution::par, workers.begin(), workers.end(), [&](std::size_t) {
    for (;;) {
      std::size_t n = next.fetch_add(1, std::memory_order_relaxed);
      if (n >= order.size()) return;
      hash_one(ctx, *order[n], cache.settled_before);
      if (ctx.progress && (n + 1) % 4096 == 0) {
        std::lock_guard lock(progress_mutex);
        ctx.progress(id(), n + 1, order.size());
      }
    }
  });
  out.hashed = order.size();
  out.items = out.hashed + out.cached;
  for (Job* j : order) {
    if (j->finding) out.findings.push_back(std::move(*j->finding));
  }
  out.note = fmt::format("{} files hashed, {} verified by the hash cache", out.hashed, out.cached);
  if (cache.use) out.note += save_cache(ctx, cache, jobs);
  if (!cache.note.empty()) out.note += "; " + cache.note;
  return out;
}

}  // namespace guard::checks
