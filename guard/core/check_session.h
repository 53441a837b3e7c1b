// Running the checks the way every command does (check, run, recover, audit, gate open,
// boot-check): on one root with the policy, scoped or full, package owners filled in; and the
// root's accepted baseline, compared or saved.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/process.h"
#include "base/root.h"
#include "checks/check.h"
#include "checks/dpkg_diff.h"
#include "checks/report.h"
#include "guard/state/store.h"
#include "policies/policy.h"

namespace guard {

// What the checks run on. e.g. {root, policy, runner, live=true} for the running system.
struct CheckTarget {
  const base::Root& root;
  const policies::Policy& policy;
  base::CommandRunner& runner;  // custom and backup checks run commands
  bool live = false;            // the root is the running system (devices, units)
};

struct CheckSessionOptions {
  std::vector<std::string> check_ids;  // empty = every check the policy enables
  checks::Scope scope;                 // default: everything
  // checks::CheckContext::needed_index: the baseline of a run writes it, its post-checks read it.
  std::string needed_index;
  // checks::CheckContext::hash_cache: the audit's verified-hash cache.
  checks::HashCacheOptions hash_cache;
  std::function<void(std::string_view, std::uint64_t, std::uint64_t)> progress;
};

// Runs the checks and names the dpkg package owning each finding's path. An error when a
// check id is unknown.
[[nodiscard]] base::Result<checks::Report> run_checks(const CheckTarget& target, const CheckSessionOptions& session);

// The scope of the post-checks after a change: the packages `diff` names, their files in
// `root` now, plus `old_paths` (e.g. their file lists before the change, read from the snapshot,
// so that whatever needed a removed library is checked too).
[[nodiscard]] checks::Scope changed_scope(const base::Root& root, const checks::StatusDiff& diff,
                                          const std::set<std::string>& old_paths);

// The names of every package a diff touches, e.g. {"libssl3:amd64", "curl"}.
[[nodiscard]] std::set<std::string> changed_packages(const checks::StatusDiff& diff);

// Every path the dpkg file lists of `root` give for the packages in `packages` (keys like
// "libc6:amd64" or bare names), added to `out`.
void add_package_paths(const base::Root& root, const std::set<std::string>& packages, std::set<std::string>& out);

// Marks the findings of `report` that the root `root_key` has accepted as known. False when the
// root has no accepted baseline yet (then every finding counts).
[[nodiscard]] base::Result<bool> compare_with_baseline(const state::StateStore& store, const std::string& root_key,
                                                       checks::Report& report);

// Every finding's key, as a baseline stores them.
[[nodiscard]] std::vector<std::string> finding_keys(const checks::Report& report);

}  // namespace guard
