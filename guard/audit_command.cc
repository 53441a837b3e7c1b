// upgrade-guard audit: every check (not scoped) against the root's accepted baseline, for
// upgrade-guard-audit.timer. Records the report, closes the gate on new blocking findings
// when the policy says so, logs a structured journal entry and writes the Prometheus textfile.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "guard/check_session.h"
#include "guard/cli.h"
#include "guard/gate.h"
#include "guard/prometheus.h"
#include "guard/state.h"

namespace guard {
namespace {

// journalctl MESSAGE_ID=7d3c9a41e2b84f6c8e05a1b9c4d2f630 lists every audit's result.
constexpr const char* kAuditMessageId = "7d3c9a41e2b84f6c8e05a1b9c4d2f630";

struct AuditOptions {
  std::string prometheus;            // e.g. /var/lib/prometheus/node-exporter/upgrade-guard.prom
  bool prometheus_optional = false;  // skip the textfile when its directory does not exist
};

// What the audit found and did, for the output, the journal and the metrics.
struct AuditResult {
  checks::Report report;
  std::optional<std::int64_t> report_id;
  std::string root;             // the baseline key, e.g. "/"
  bool baseline_found = false;
  std::size_t new_findings = 0;  // any severity, absent from the baseline
  std::size_t new_blocking = 0;
  GateState gate;               // after the audit
  std::string gate_note;        // what the audit did to the gate, for the operator
  double seconds = 0;
};

// Closes the gate for new blocking findings when the policy says so. A gate already closed
// keeps its reason (e.g. the run that closed it).
void apply_gate_policy(StateStore& store, const GlobalOptions& o, const policies::Policy& policy, bool live,
                       AuditResult& a) {
  auto gate = store.get_gate();
  if (gate) a.gate = *gate;
  if (a.new_blocking == 0) return;
  if (!policy.audit.close_gate) {
    a.gate_note = "policy audit.close_gate = false: the reboot gate is left as it is";
    return;
  }
  if (a.gate.closed) {
    a.gate_note = "the reboot gate was already closed by " + a.gate.changed_by + ": " + a.gate.reason;
    return;
  }
  GateState g;
  g.closed = true;
  g.reason = "audit found " + std::to_string(a.new_blocking) + " new blocking finding" +
             (a.new_blocking == 1 ? "" : "s") + " (`upgrade-guard audit` lists them)";
  g.changed_by = "audit";
  auto changed = change_gate(store, o.state_dir, g, live);
  if (!changed) {
    a.gate_note = "closing the reboot gate failed: " + changed.error().to_string();
    return;
  }
  a.gate = g;
  a.gate_note = "the reboot gate is closed (`upgrade-guard gate status` exits 1 until `gate open`): " + *changed;
}

void log_result(const AuditResult& a) {
  std::string message = "audit of " + a.root + ": " + std::to_string(a.new_blocking) + " new blocking finding" +
                        (a.new_blocking == 1 ? "" : "s") + ", " + std::to_string(a.new_findings) + " new, " +
                        std::to_string(a.report.findings.size()) + " in all" +
                        (a.baseline_found ? "" : " (no accepted baseline)");
  base::log(a.new_blocking > 0 ? base::LogLevel::warning : base::LogLevel::info, kAuditMessageId, message,
            {{"UG_ROOT", a.root},
             {"UG_REPORT_ID", a.report_id ? std::to_string(*a.report_id) : ""},
             {"UG_VERDICT", checks::to_string(a.report.verdict)},
             {"UG_FINDINGS", std::to_string(a.report.findings.size())},
             {"UG_FINDINGS_NEW", std::to_string(a.new_findings)},
             {"UG_FINDINGS_BLOCKING", std::to_string(a.new_blocking)},
             {"UG_BASELINE", a.baseline_found ? "1" : "0"},
             {"UG_GATE_CLOSED", a.gate.closed ? "1" : "0"},
             {"UG_DURATION_MS", std::to_string(static_cast<long long>(a.seconds * 1000))}});
}

void print_result(const GlobalOptions& o, const AuditResult& a) {
  if (o.json) {
    auto j = checks::to_json(a.report);
    j["audit"] = {{"baseline", a.baseline_found},         {"new_findings", a.new_findings},
                  {"new_blocking", a.new_blocking},        {"gate_closed", a.gate.closed},
                  {"report_id", a.report_id ? nlohmann::json(*a.report_id) : nlohmann::json(nullptr)}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::fputs(checks::render_human(a.report, ::isatty(STDOUT_FILENO) != 0).c_str(), stdout);
  if (!a.baseline_found) {
    std::printf("no accepted baseline for %s yet: every finding counts as new. When the findings above are\n"
                "expected on this system, accept them with `upgrade-guard baseline accept`.\n",
                a.root.c_str());
  }
  std::printf("audit: %zu new blocking, %zu new, %zu findings in all\n", a.new_blocking, a.new_findings,
              a.report.findings.size());
  if (!a.gate_note.empty()) std::printf("%s\n", a.gate_note.c_str());
}

// Writes the textfile; returns false (after saying why) when it could not.
bool export_metrics(const AuditOptions& opts, const AuditResult& a) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::path(opts.prometheus).parent_path();
  if (opts.prometheus_optional && !dir.empty() && !fs::is_directory(dir, ec)) {
    // On stderr: stdout may be JSON.
    std::fprintf(stderr, "upgrade-guard: no %s: the Prometheus textfile is not written\n", dir.c_str());
    return true;
  }
  AuditMetrics m;
  m.finished_unix = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  m.duration_seconds = a.seconds;
  m.gate_closed = a.gate.closed;
  m.baseline_found = a.baseline_found;
  m.check_ids = policies::known_check_ids();
  if (auto w = write_textfile(opts.prometheus, render_textfile(a.report, m)); !w) {
    report_error(w.error(), kExitEnvironment);
    return false;
  }
  return true;
}

int run_audit(CliContext& ctx, const AuditOptions& opts) {
  const GlobalOptions& o = ctx.options;
  auto policy = load_cli_policy(o);
  if (!policy) return report_error(policy.error(), kExitUsage);
  auto key = quiet_root_key(o, *policy);
  if (!key) return report_error(key.error().error, key.error().exit_code);

  const auto start = std::chrono::steady_clock::now();
  CheckSessionOptions session;
  session.baseline = "compare";
  session.stage = ReportStage::audit;
  auto outcome = run_check_session(o, *policy, session);
  if (!outcome) return report_error(outcome.error().error, outcome.error().exit_code);

  AuditResult a;
  a.report = std::move(outcome->report);
  a.report_id = outcome->report_id;
  a.root = *key;
  a.baseline_found = outcome->baseline_found;
  for (const auto& f : a.report.findings) a.new_findings += f.known ? 0 : 1;
  a.new_blocking = a.report.blocking_count();
  auto store = StateStore::open(o.state_dir);
  if (!store) return report_error(store.error(), kExitEnvironment);
  apply_gate_policy(*store, o, *policy, a.root == "/", a);
  a.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  log_result(a);
  print_result(o, a);
  int code = a.report.verdict == checks::Verdict::pass ? kExitOk : kExitChecksFailed;
  if (!opts.prometheus.empty() && !export_metrics(opts, a) && code == kExitOk) code = kExitEnvironment;
  return code;
}

}  // namespace

void add_audit_command(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<AuditOptions>();
  auto* sub = app.add_subcommand(
      "audit",
      "Run every check (not scoped) against the root's accepted baseline (`baseline accept`) and\n"
      "record the report; for upgrade-guard-audit.timer. A blocking finding absent from the\n"
      "baseline closes the reboot gate when the policy's audit.close_gate is true (the default).\n"
      "Exits 0 when nothing new blocks, 1 when something does (or a check could not run), 4 while\n"
      "a guarded run is changing the root. Each audit is logged to the journal\n"
      "(MESSAGE_ID=7d3c9a41e2b84f6c8e05a1b9c4d2f630, fields UG_FINDINGS_NEW, UG_FINDINGS_BLOCKING,\n"
      "UG_GATE_CLOSED...).");
  sub->add_option("--prometheus", opts->prometheus,
                  "Also write the metrics to FILE (node-exporter textfile collector, atomically, mode 0644),\n"
                  "e.g. /var/lib/prometheus/node-exporter/upgrade-guard.prom");
  sub->add_flag("--prometheus-optional", opts->prometheus_optional,
                "With --prometheus: skip the file when its directory does not exist (node-exporter\n"
                "not installed) instead of failing");
  sub->callback([&ctx, opts] {
    if (opts->prometheus_optional && opts->prometheus.empty()) {
      std::fprintf(stderr, "upgrade-guard: --prometheus-optional needs --prometheus FILE\n");
      ctx.exit_code = kExitUsage;
      return;
    }
    ctx.exit_code = run_audit(ctx, *opts);
  });
}

}  // namespace guard
