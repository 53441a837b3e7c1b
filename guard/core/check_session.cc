#include "guard/core/check_session.h"

#include <algorithm>

#include "checks/dpkg_db.h"

namespace guard {
namespace {

// Names the dpkg package owning each finding's path, for every check at once, from the
// root's own package lists. Without a dpkg database the findings stay as they are.
void fill_owners(const base::Root& root, checks::Report& report) {
  bool needed = std::any_of(report.findings.begin(), report.findings.end(),
                            [](const checks::Finding& f) { return f.package.empty() && !f.path.empty(); });
  if (!needed) return;
  auto owners = checks::PackageOwners::load(root);
  if (!owners) return;
  for (auto& f : report.findings) {
    if (f.package.empty() && !f.path.empty()) f.package = owners->sole_owner(f.path);
  }
}

}  // namespace

base::Result<checks::Report> run_checks(const CheckTarget& target, const CheckSessionOptions& session) {
  checks::CheckContext ctx{target.root, target.policy,    session.scope,        &target.runner,
                           target.live, session.progress, session.needed_index, session.hash_cache};
  auto report = checks::run_checks(ctx, session.check_ids);
  if (!report) return base::fail(report.error());
  fill_owners(target.root, *report);
  return report;
}

std::set<std::string> changed_packages(const checks::StatusDiff& diff) {
  std::set<std::string> out;
  for (const auto* v : {&diff.installed, &diff.removed, &diff.upgraded, &diff.downgraded, &diff.state_changed}) {
    for (const auto& c : *v) out.insert(c.package);
  }
  return out;
}

checks::Scope changed_scope(const base::Root& root, const checks::StatusDiff& diff,
                            const std::set<std::string>& old_paths) {
  checks::Scope scope = checks::scope_from_diff(diff);
  add_package_paths(root, scope.packages, scope.paths);
  scope.paths.insert(old_paths.begin(), old_paths.end());
  return scope;
}

void add_package_paths(const base::Root& root, const std::set<std::string>& packages, std::set<std::string>& out) {
  if (packages.empty()) return;
  auto db = checks::DpkgDb::load(root);
  if (!db) return;
  for (const auto& pkg : db->packages()) {
    if (packages.count(pkg.key()) == 0 && packages.count(pkg.name) == 0) continue;
    if (auto paths = db->list(pkg)) out.insert(paths->begin(), paths->end());
  }
}

base::Result<bool> compare_with_baseline(const state::StateStore& store, const std::string& root_key,
                                         checks::Report& report) {
  auto keys = store.load_baseline(root_key);
  if (!keys) return base::fail(keys.error());
  if (!*keys) return false;
  checks::apply_baseline(report, **keys);
  return true;
}

std::vector<std::string> finding_keys(const checks::Report& report) {
  std::vector<std::string> keys;
  keys.reserve(report.findings.size());
  for (const auto& f : report.findings) keys.push_back(f.key());
  return keys;
}

}  // namespace guard
