// The check framework: what a check is given, what it returns, and how checks are run.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/process.h"
#include "base/root.h"
#include "checks/report.h"
#include "policies/policy.h"

namespace guard::checks {

// Limits the expensive file checks to what an upgrade changed. Empty scope = everything.
// e.g. packages={"libc6:amd64", "curl"} after an upgrade of those two.
struct Scope {
  bool full = true;
  std::set<std::string> packages;  // package names as in dpkg's status ("pkg" or "pkg:arch")
  std::set<std::string> paths;     // root-relative files known to have changed
};

// Where the package-hashes check keeps the md5s it verified, and whether to trust them.
struct HashCacheOptions {
  // A host file, e.g. "/var/lib/upgrade-guard/verified-hashes"; empty = no cache, every file
  // is hashed.
  std::string file;
  // Rehash every file even where the cache vouches for it (`audit --deep`); the cache is
  // rewritten. Without it the check goes deep on its own when the policy's audit.deep_every
  // has passed since the last deep run.
  bool deep = false;
};

// Everything a check may use. The root is the only way to the files it checks.
struct CheckContext {
  const base::Root& root;
  const policies::Policy& policy;
  Scope scope;
  base::CommandRunner* runner = nullptr;  // for checks that run commands (custom, backup)
  bool live = false;                       // the root is the running system (devices, units)
  // Progress for long checks, may be empty: (check id, items done, items total or 0).
  std::function<void(std::string_view, std::uint64_t, std::uint64_t)> progress;
  // A host file where the libraries check keeps which ELF object names which libraries, e.g.
  // "/var/lib/upgrade-guard/runs/run-12.needed": a full run writes it; a scoped run reads it
  // to load only the objects that name a changed library instead of opening every file.
  std::string needed_index;
  // The package-hashes check's verified-hash cache (checks/hash_cache.h), used only by a full
  // scope: the scheduled audit passes it; `check` and a guarded run's checks do not.
  HashCacheOptions hash_cache;
};

// What a check returns. `skipped` says why the check did not apply (a container without a
// kernel, no fstab...); it is not a failure.
struct CheckOutput {
  std::vector<Finding> findings;
  std::uint64_t items = 0;
  std::string skipped;
  // Said in the check's summary when it ran, e.g. "1,204 files hashed, 98,311 verified by the
  // hash cache".
  std::string note;
  // package-hashes: files read and hashed, and files the verified-hash cache vouched for.
  std::uint64_t hashed = 0;
  std::uint64_t cached = 0;
};

class Check {
 public:
  virtual ~Check() = default;
  // The id used in policies and JSON, e.g. "symlinks".
  [[nodiscard]] virtual std::string_view id() const = 0;
  // One line for --help and reports, e.g. "dangling links and link loops in system dirs".
  [[nodiscard]] virtual std::string_view summary() const = 0;
  // Runs on ctx.root. An Error means the check could not run at all (reported as such);
  // problems found are findings.
  [[nodiscard]] virtual base::Result<CheckOutput> run(const CheckContext& ctx) const = 0;
};

// Every check upgrade-guard has, in report order.
[[nodiscard]] std::vector<std::unique_ptr<Check>> make_all_checks();

// Runs the checks named in `ids` (all when empty) that the policy does not turn off, in
// parallel, and returns the report with severities capped by the policy. Unknown ids are an
// error naming them.
[[nodiscard]] base::Result<Report> run_checks(const CheckContext& ctx, const std::vector<std::string>& ids = {});

// The same over an explicit set of checks (tests pass their own).
[[nodiscard]] Report run_check_set(const CheckContext& ctx, const std::vector<const Check*>& checks);

}  // namespace guard::checks
