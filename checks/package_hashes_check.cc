#include "checks/package_hashes_check.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <execution>
#include <mutex>
#include <unordered_set>

#include "checks/dpkg_db.h"
#include "checks/md5.h"

namespace guard::checks {
namespace {

// One file to hash.
struct Job {
  std::string listed;    // as the package lists it, e.g. "/bin/bash"
  std::string location;  // where it is on disk: the divert-to path when diverted
  std::string md5;       // expected
  const PackageRecord* package = nullptr;
  bool conffile = false;
  std::uint64_t size = 0;
  bool present = false;   // exists (missing files are package-files' business)
  bool regular = false;
  std::optional<Finding> finding;
};

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
      j.location = db.diversions().location(c.path, pkg.name);
      j.md5 = c.md5;
      j.package = &pkg;
      j.conffile = true;
      jobs.push_back(std::move(j));
    }
  }
  auto sums = db.md5sums(pkg);
  if (!sums) {
    if (!everything) return;
    Finding f;
    f.severity = Severity::warn;
    f.path = db.info_path(pkg, ".md5sums");
    f.package = pkg.key();
    f.message = "the package's md5sums cannot be used: " + sums.error().to_string();
    f.hint = repair_command(ctx.root, "apt-get install --reinstall " + pkg.key());
    f.id = "bad-md5sums";
    findings.push_back(std::move(f));
    return;
  }
  if (!*sums) return;
  for (auto& e : **sums) {
    if (conffile_paths.count(e.path) > 0) continue;
    if (!everything && !wanted_path(ctx.scope, e.path)) continue;
    if (db.filter().excluded(e.path)) continue;
    Job j;
    j.location = db.diversions().location(e.path, pkg.name);
    j.listed = std::move(e.path);
    j.md5 = std::move(e.md5);
    j.package = &pkg;
    jobs.push_back(std::move(j));
  }
}

void hash_one(const CheckContext& ctx, Job& j) {
  auto fd = ctx.root.open(j.location, O_RDONLY | O_NOCTTY | O_NONBLOCK);
  const PackageRecord& pkg = *j.package;
  Finding f;
  f.path = j.location;
  f.package = pkg.key();
  std::string diverted = j.location == j.listed ? "" : fmt::format(" (diverted from {})", j.listed);
  if (!fd) {
    if (fd.error().err == ENOENT) return;  // removed since the size pass
    f.severity = Severity::warn;
    f.message = fmt::format("cannot read {}{}: {}", j.location, diverted, fd.error().to_string());
    f.id = "unreadable";
    j.finding = std::move(f);
    return;
  }
  auto digest = md5_fd(fd->get(), j.location);
  if (!digest) {
    f.severity = Severity::warn;
    f.message = fmt::format("cannot read {}{}: {}", j.location, diverted, digest.error().to_string());
    f.id = "unreadable";
    j.finding = std::move(f);
    return;
  }
  if (digest->md5 == j.md5) return;
  if (j.conffile) {
    f.severity = ctx.policy.conffiles;
    f.message = fmt::format("conffile {} of package {} differs from the version installed{} (edited by the "
                            "administrator?)",
                            j.location, pkg.key(), diverted);
    f.hint = "if the edit is not intended: " +
             repair_command(ctx.root, "apt-get install --reinstall -o Dpkg::Options::=--force-confask " + pkg.key());
    f.id = "conffile-changed";
  } else {
    bool system = digest->elf || is_system_path(j.location);
    f.severity = system ? Severity::block : Severity::warn;
    f.message = fmt::format("{}{} {} of package {} has changed since it was installed (md5 {}, package says {})",
                            digest->elf ? "ELF file" : "file", "", j.location, pkg.key(), digest->md5, j.md5);
    if (!diverted.empty()) f.message += diverted;
    f.hint = repair_command(ctx.root, "apt-get install --reinstall " + pkg.key());
    f.id = "changed";
  }
  j.finding = std::move(f);
}

}  // namespace

base::Result<CheckOutput> PackageHashesCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  auto exists = ctx.root.exists("/var/lib/dpkg/status");
  if (exists && !*exists) {
    out.skipped = "no dpkg database (/var/lib/dpkg/status)";
    return out;
  }
  auto db = DpkgDb::load(ctx.root);
  if (!db) return tl::unexpected(db.error());

  std::vector<Job> jobs;
  jobs.reserve(db->packages().size() * 64);
  for (const auto& p : db->packages()) {
    if (has_files(p.state)) collect(ctx, *db, p, jobs, out.findings);
  }

  // Size pass: skip what is missing (package-files reports it), order largest first so
  // the big files do not end up alone on one core at the end.
  std::for_each(std::execution::par, jobs.begin(), jobs.end(), [&](Job& j) {
    auto st = ctx.root.stat(j.location);
    if (!st) return;
    j.present = true;
    j.regular = S_ISREG(st->st_mode);
    j.size = static_cast<std::uint64_t>(st->st_size);
  });
  std::vector<Job*> order;
  order.reserve(jobs.size());
  for (auto& j : jobs) {
    if (!j.present) continue;
    if (!j.regular) {
      Finding f;
      f.severity = j.conffile ? ctx.policy.conffiles : is_system_path(j.location) ? Severity::block : Severity::warn;
      f.path = j.location;
      f.package = j.package->key();
      f.message = fmt::format("{} of package {} is no longer a regular file", j.location, j.package->key());
      f.hint = repair_command(ctx.root, "apt-get install --reinstall " + j.package->key());
      f.id = "not-regular";
      out.findings.push_back(std::move(f));
      continue;
    }
    order.push_back(&j);
  }
  std::stable_sort(order.begin(), order.end(), [](const Job* a, const Job* b) { return a->size > b->size; });

  std::atomic<std::uint64_t> done{0};
  std::mutex progress_mutex;
  std::for_each(std::execution::par, order.begin(), order.end(), [&](Job* j) {
    hash_one(ctx, *j);
    std::uint64_t n = ++done;
    if (ctx.progress && n % 4096 == 0) {
      std::lock_guard lock(progress_mutex);
      ctx.progress(id(), n, order.size());
    }
  });
  out.items = order.size();
  for (Job* j : order) {
    if (j->finding) out.findings.push_back(std::move(*j->finding));
  }
  return out;
}

}  // namespace guard::checks
