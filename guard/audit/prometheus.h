// The audit's metrics as a node-exporter textfile-collector file (Prometheus text exposition
// format 0.0.4), e.g. /var/lib/prometheus/node-exporter/upgrade-guard.prom.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "checks/report.h"

namespace guard::audit {

// What one audit exports besides its report.
struct AuditMetrics {
  double finished_unix = 0;       // upgrade_guard_last_audit_timestamp_seconds, e.g. 1769000000
  double duration_seconds = 0;    // upgrade_guard_audit_duration_seconds, e.g. 41.213
  bool gate_closed = false;       // upgrade_guard_gate_closed after the audit
  bool baseline_found = false;    // upgrade_guard_audit_baseline: compared against an accepted baseline
  std::vector<std::string> check_ids;  // every check that gets a findings series, e.g. known_check_ids()
};

// A label value escaped for the exposition format: backslash, double quote and line feed
// become \\, \" and \n. e.g. escape_label_value("a\"b\\c") == "a\\\"b\\\\c".
[[nodiscard]] std::string escape_label_value(std::string_view value);

// The whole textfile: # HELP and # TYPE for each metric, then its series. The findings gauge
// has one series per check in `metrics.check_ids` (plus any other check with findings), per
// severity (info, warn, block) and per new="true|false" (absent from / present in the accepted
// baseline), zeros included, so an alert never sees a series vanish. e.g.
//   upgrade_guard_findings{check="libraries",severity="block",new="true"} 1
[[nodiscard]] std::string render_textfile(const checks::Report& report, const AuditMetrics& metrics);

// Writes `text` to `path` atomically with mode 0644 (a hidden temp file beside it, which the
// collector ignores, renamed over it). e.g. write_textfile("/var/lib/prometheus/node-exporter/upgrade-guard.prom", t).
[[nodiscard]] base::Result<void> write_textfile(const std::string& path, std::string_view text);

}  // namespace guard::audit
