// `upgrade-guard audit`: every check (not scoped) against the root's accepted baseline, for
// upgrade-guard-audit.timer. Records the report, closes the gate on new blocking findings when
// the policy says so and a baseline has been accepted, and logs a structured journal entry. The Prometheus textfile is
// guard/audit/prometheus.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "base/error.h"
#include "checks/report.h"
#include "guard/core/run_context.h"
#include "guard/state/records.h"

namespace guard::audit {

// What the audit found and did, for the output, the journal and the metrics.
struct AuditResult {
  checks::Report report;
  std::optional<std::int64_t> report_id;
  std::string root;  // the baseline key, e.g. "/"
  bool baseline_found = false;
  std::size_t new_findings = 0;  // any severity, absent from the baseline
  std::size_t new_blocking = 0;
  state::GateState gate;  // after the audit
  std::string gate_note;  // what the audit did to the gate, for the operator
  double seconds = 0;

  // The audit fails (exit 1, the unit shows in `systemctl --failed`) when a check could not run,
  // or, once a baseline is accepted, when a new blocking finding appeared. Before the first
  // `baseline accept` the findings are reported for review and fail nothing.
  [[nodiscard]] bool failed() const { return report.has_check_error() || (baseline_found && new_blocking > 0); }
};

// Audits ctx.root. Fails (what="busy") at once while a guarded run of it is alive, and waits
// up to the policy's preflight.lock_timeout for dpkg's locks. A check that cannot run is in
// the report (its verdict fails), not an error.
// The package-hashes check keeps its verified-hash cache (checks/hash_cache.h) in the state
// directory, one file a root: files whose identity has not changed since their md5 was
// verified are not read again, until the policy's audit.deep_every has passed since the last
// deep audit; `deep` (audit --deep) rehashes every file now.
[[nodiscard]] base::Result<AuditResult> run_audit(RunContext& ctx, bool deep = false);

// The cache file of root `root_key` in `state_dir`: "STATE/verified-hashes" for "/",
// "STATE/verified-hashes-<hash of the key>" for another root.
[[nodiscard]] std::string hash_cache_file(const std::string& state_dir, const std::string& root_key);

}  // namespace guard::audit
