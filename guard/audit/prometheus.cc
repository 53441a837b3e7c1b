#include "guard/audit/prometheus.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <tuple>

#include "base/atomic_file.h"

namespace guard::audit {
namespace {

using policies::Severity;

constexpr std::array kSeverities = {Severity::info, Severity::warn, Severity::block};

// "# HELP name text\n# TYPE name gauge\n": every metric here is a gauge (a value that can go down).
std::string header(std::string_view name, std::string_view help) {
  return fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n", name, help);
}

// The checks that get series: the requested ones in order, then any other one with findings
// or a summary (a report from a newer check set), so nothing is silently left out.
std::vector<std::string> series_checks(const checks::Report& report, const std::vector<std::string>& requested) {
  std::vector<std::string> ids = requested;
  auto add = [&ids](const std::string& id) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  for (const auto& c : report.checks) add(c.id);
  for (const auto& f : report.findings) add(f.check);
  return ids;
}

std::string findings_metric(const checks::Report& report, const std::vector<std::string>& ids) {
  // (check, severity, new) -> count
  std::map<std::tuple<std::string, Severity, bool>, int> counts;
  for (const auto& f : report.findings) ++counts[{f.check, f.severity, !f.known}];
  std::string out = header("upgrade_guard_findings",
                           "Findings of the last audit by check and severity; new=\"true\" for findings absent from "
                           "the accepted baseline (new blocking ones are what closes the gate).");
  for (const auto& id : ids) {
    for (Severity s : kSeverities) {
      for (bool is_new : {true, false}) {
        auto it = counts.find({id, s, is_new});
        out += fmt::format("upgrade_guard_findings{{check=\"{}\",severity=\"{}\",new=\"{}\"}} {}\n",
                           escape_label_value(id), policies::to_string(s), is_new ? "true" : "false",
                           it == counts.end() ? 0 : it->second);
      }
    }
  }
  return out;
}

std::string check_errors_metric(const checks::Report& report, const std::vector<std::string>& ids) {
  std::string out = header("upgrade_guard_check_error",
                           "1 when the check could not run to the end in the last audit (the audit then fails).");
  for (const auto& id : ids) {
    bool failed = std::any_of(report.checks.begin(), report.checks.end(), [&id](const checks::CheckSummary& c) {
      return c.id == id && c.status == checks::CheckStatus::error;
    });
    out += fmt::format("upgrade_guard_check_error{{check=\"{}\"}} {}\n", escape_label_value(id), failed ? 1 : 0);
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string render_textfile(const checks::Report& report, const AuditMetrics& metrics) {
  const auto ids = series_checks(report, metrics.check_ids);
  std::string out;
  out += header("upgrade_guard_last_audit_timestamp_seconds", "Unix time the last upgrade-guard audit finished.");
  out += fmt::format("upgrade_guard_last_audit_timestamp_seconds {:.0f}\n", metrics.finished_unix);
  out += header("upgrade_guard_audit_duration_seconds", "How long the last audit took.");
  out += fmt::format("upgrade_guard_audit_duration_seconds {:.3f}\n", metrics.duration_seconds);
  out += header("upgrade_guard_gate_closed", "1 while the reboot gate is closed (as the last audit left it).");
  out += fmt::format("upgrade_guard_gate_closed {}\n", metrics.gate_closed ? 1 : 0);
  out += header("upgrade_guard_audit_baseline",
                "1 when the last audit compared against an accepted baseline; 0: run `upgrade-guard baseline accept`.");
  out += fmt::format("upgrade_guard_audit_baseline {}\n", metrics.baseline_found ? 1 : 0);
  out += findings_metric(report, ids);
  out += check_errors_metric(report, ids);
  return out;
}

base::Result<void> write_textfile(const std::string& path, std::string_view text) {
  return base::write_file_atomic(path, text, 0644);
}

}  // namespace guard::audit
