#include "checks/package_files_check.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <execution>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "checks/bounded_findings.h"
#include "checks/dpkg_db.h"

namespace guard::checks {
namespace {

// The check's findings, bounded while it runs: a package listing two million missing files
// must not hold two million findings. Workers add under the lock, ordered by package and then
// by the package's own order, so the findings kept do not depend on the threads' timing.
struct PackageResult {
  BoundedFindings* findings = nullptr;
  std::mutex* mutex = nullptr;
  std::uint64_t package_index = 0;
  std::uint64_t next = 0;
  std::uint64_t items = 0;

  void push_back(Finding f) {
    std::lock_guard lock(*mutex);
    findings->add(std::move(f), (package_index << 32) | next++);
  }
};

// The paths of `pkg` to look at: all of them in its scope, else those named in scope.paths.
std::vector<const std::string*> paths_to_check(const Scope& scope, const PackageRecord& pkg,
                                               const std::vector<std::string>& all) {
  bool everything = in_scope(scope, pkg);
  std::vector<const std::string*> chosen;
  for (const auto& p : all) {
    if (everything || scope.paths.count(p) > 0 || scope.paths.count(usr_canonical(p)) > 0 ||
        (!usr_alias(p).empty() && scope.paths.count(usr_alias(p)) > 0))
      chosen.push_back(&p);
  }
  return chosen;
}

void check_package(const CheckContext& ctx, const DpkgDb& db, const PackageRecord& pkg, PackageResult& result) {
  bool wanted = in_scope(ctx.scope, pkg);
  if (!wanted && ctx.scope.paths.empty()) return;
  auto listed = db.list(pkg);
  if (!listed) {
    if (!wanted) return;
    result.push_back(
        make_package_finding("package-files", Severity::warn, pkg.key(), db.info_path(pkg, ".list"),
                             fmt::format("package {} has no readable file list ({}): its files cannot be checked",
                                         pkg.key(), listed.error().to_string()),
                             repair_command(ctx.root, "apt-get install --reinstall " + pkg.key()), "no-list"));
    return;
  }
  // Directories are the listed paths that other listed paths are inside.
  std::unordered_set<std::string_view> dirs;
  for (const auto& p : *listed) dirs.insert(base::dirname(p));
  std::unordered_set<std::string_view> conffiles;
  for (const auto& c : pkg.conffiles) conffiles.insert(c.path);

  Severity conffile_severity = std::min(ctx.policy.conffiles, Severity::warn);
  for (const std::string* path_ptr : paths_to_check(ctx.scope, pkg, *listed)) {
    const std::string& path = *path_ptr;
    if (db.filter().excluded(path)) continue;
    ++result.items;
    std::string where = db.diversions().location(path, pkg.name);
    auto st = ctx.root.stat(where, base::Follow::no);
    if (st && !S_ISLNK(st->st_mode)) continue;  // the common case: there, not a link
    auto target_ok = st ? ctx.root.exists(where, base::Follow::yes) : base::Result<bool>(false);
    if (st && target_ok && *target_ok) continue;
    const std::string& shown = where;
    std::string diverted = where == path ? "" : fmt::format(" (diverted from {})", path);
    auto add = [&](Severity severity, std::string message, std::string id) {
      result.push_back(
          make_package_finding("package-files", severity, pkg.key(), shown, std::move(message),
                               repair_command(ctx.root, "apt-get install --reinstall " + pkg.key()), std::move(id)));
    };
    if (!st) {
      int err = st.error().err;
      if (err != ENOENT && err != ENOTDIR) {
        add(Severity::warn, fmt::format("cannot look at {}{}: {}", shown, diverted, st.error().to_string()),
            "unreadable");
      } else if (dirs.count(path) > 0) {
        add(Severity::warn, fmt::format("directory {} of package {} is missing{}", shown, pkg.key(), diverted),
            "missing-dir");
      } else if (conffiles.count(path) > 0) {
        if (conffile_severity == Severity::off) continue;
        add(conffile_severity,
            fmt::format("conffile {} of package {} is missing{} (deleted on purpose?)", shown, pkg.key(), diverted),
            "missing-conffile");
      } else {
        add(is_system_path(where) ? Severity::block : Severity::warn,
            fmt::format("{} of package {} is missing{}", shown, pkg.key(), diverted), "missing");
      }
      continue;
    }
    auto target = ctx.root.readlink(where);
    std::string why = target_ok ? "does not exist" : target_ok.error().err == ELOOP ? "is a link loop" : "cannot be resolved";
    add(is_system_path(where) ? Severity::block : Severity::warn,
        fmt::format("link {} of package {} is dangling{}: its target {} {}", shown, pkg.key(), diverted,
                    target ? *target : std::string("?"), why),
        "dangling");
  }
}

}  // namespace

base::Result<CheckOutput> PackageFilesCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  auto loaded = load_dpkg_db_if_present(ctx.root);
  if (!loaded) return tl::unexpected(loaded.error());
  if (!*loaded) {
    out.skipped = kNoDpkgDatabase;
    return out;
  }
  auto& db = *loaded;
  std::vector<const PackageRecord*> pkgs;
  for (const auto& p : db->packages()) {
    if (has_files(p.state)) pkgs.push_back(&p);
  }
  BoundedFindings findings;
  std::mutex findings_mutex;
  std::vector<PackageResult> results(pkgs.size());
  for (std::size_t i = 0; i < results.size(); ++i) results[i] = PackageResult{&findings, &findings_mutex, i, 0, 0};
  // Workers pull packages from a shared counter (see package_hashes_check.cc for why).
  std::atomic<std::size_t> next{0};
  std::mutex progress_mutex;
  std::vector<std::size_t> workers(std::max(1U, std::thread::hardware_concurrency()));
  for (std::size_t i = 0; i < workers.size(); ++i) workers[i] = i;
  std::for_each(std::execution::par, workers.begin(), workers.end(), [&](std::size_t) {
    for (;;) {
      std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= pkgs.size()) return;
      check_package(ctx, *db, *pkgs[i], results[i]);
      if (ctx.progress && (i + 1) % 64 == 0) {
        std::lock_guard lock(progress_mutex);
        ctx.progress(id(), i + 1, pkgs.size());
      }
    }
  });
  for (auto& r : results) out.items += r.items;
  out.findings = findings.take(std::string(id()));
  return out;
}

}  // namespace guard::checks
