#include "guard/check_session.h"

#include <algorithm>

#include "base/log.h"
#include "base/process.h"
#include "base/root.h"
#include "checks/check.h"
#include "checks/dpkg_db.h"
#include "checks/dpkg_diff.h"
#include "guard/locks.h"
#include "guard/state.h"

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

void add_package_paths(const base::Root& root, const std::set<std::string>& packages, std::set<std::string>& out) {
  auto db = checks::DpkgDb::load(root);
  if (!db) return;
  for (const auto& pkg : db->packages()) {
    if (packages.count(pkg.key()) == 0 && packages.count(pkg.name) == 0) continue;
    if (auto paths = db->list(pkg)) out.insert(paths->begin(), paths->end());
  }
}

std::string root_key(const base::Root& root) {
  return root.is_host_root() ? std::string("/") : root.host_path("/");
}

tl::expected<std::string, CheckSessionError> quiet_root_key(const GlobalOptions& options,
                                                           const policies::Policy& policy) {
  auto fail = [](base::Error e) { return tl::unexpected(CheckSessionError{std::move(e), kExitEnvironment}); };
  auto root = base::Root::open(options.root);
  if (!root) return fail(root.error());
  auto store = StateStore::open(options.state_dir);
  if (!store) return fail(store.error());
  std::string key = root_key(*root);
  auto quiet = wait_for_quiet_root(*root, key, *store, policy.preflight.lock_timeout, [](int pid, const std::string& p) {
    base::log(base::LogLevel::warning, "", "waiting for the package manager (pid " + std::to_string(pid) + " holds " + p + ")");
  });
  if (!quiet) return fail(quiet.error());
  return key;
}

tl::expected<CheckSessionOutcome, CheckSessionError> run_check_session(const GlobalOptions& options,
                                                                       const policies::Policy& policy,
                                                                       const CheckSessionOptions& session) {
  auto fail = [](base::Error e, int code) { return tl::unexpected(CheckSessionError{std::move(e), code}); };
  auto root = base::Root::open(options.root);
  if (!root) return fail(root.error(), kExitEnvironment);

  CheckSessionOutcome outcome;
  checks::Scope scope;
  if (session.scope_changed) {
    auto before = base::Root::open("/");
    if (!before) return fail(before.error(), kExitEnvironment);
    auto before_bytes = before->read_file(session.packages_from);
    if (!before_bytes) return fail(before_bytes.error(), kExitUsage);
    auto after_bytes = root->read_file("/var/lib/dpkg/status");
    if (!after_bytes) return fail(after_bytes.error(), kExitEnvironment);
    auto diff = checks::diff_status(*before_bytes, *after_bytes);
    if (!diff) return fail(diff.error(), kExitUsage);
    scope = checks::scope_from_diff(*diff);
    add_package_paths(*root, scope.packages, scope.paths);
    scope.paths.insert(session.extra_paths.begin(), session.extra_paths.end());
    outcome.notes.push_back("scope: " + std::to_string(scope.packages.size()) + " changed packages since " +
                            session.packages_from);
  }

  base::SystemCommandRunner runner;
  checks::CheckContext ctx{*root, policy, scope, &runner, root->is_host_root(), session.progress,
                           session.needed_index};
  auto report = checks::run_checks(ctx, session.check_ids);
  if (!report) return fail(report.error(), kExitUsage);
  fill_owners(*root, *report);

  if (!session.baseline.empty()) {
    auto state = StateStore::open(options.state_dir);
    if (!state) return fail(state.error(), kExitEnvironment);
    const std::string key = root_key(*root);
    if (session.baseline == "compare") {
      auto keys = state->load_baseline(key);
      if (!keys) return fail(keys.error(), kExitEnvironment);
      outcome.baseline_found = keys->has_value();
      if (*keys) {
        checks::apply_baseline(*report, **keys);
      } else {
        outcome.notes.push_back("no baseline saved for " + key +
                                " yet: every finding counts (save one with --baseline save)");
      }
    }
    auto saved_report = state->save_report(std::nullopt, session.stage, *report);
    if (!saved_report) return fail(saved_report.error(), kExitEnvironment);
    outcome.report_id = *saved_report;
    if (session.baseline == "save") {
      std::vector<std::string> keys;
      for (const auto& f : report->findings) keys.push_back(f.key());
      if (auto saved = state->save_baseline(key, keys); !saved) return fail(saved.error(), kExitEnvironment);
      outcome.notes.push_back("baseline saved for " + key + " (" + std::to_string(keys.size()) +
                              " findings accepted)");
    }
  }

  outcome.report = std::move(*report);
  return outcome;
}

}  // namespace guard
