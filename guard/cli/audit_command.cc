// upgrade-guard audit: the audit (guard/audit/audit.h), its output and its Prometheus textfile.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "guard/audit/audit.h"
#include "guard/audit/prometheus.h"
#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"

namespace guard::cli {

using audit::AuditResult;
namespace {

struct AuditOptions {
  std::string prometheus;            // e.g. /var/lib/prometheus/node-exporter/upgrade-guard.prom
  bool prometheus_optional = false;  // skip the textfile when its directory does not exist
  bool deep = false;                 // rehash every package file, whatever the hash cache says
};

void print_result(const GlobalOptions& o, const AuditResult& a) {
  if (o.json) {
    auto j = checks::to_json(a.report);
    j["audit"] = {{"baseline", a.baseline_found},         {"new_findings", a.new_findings},
                  {"new_blocking", a.new_blocking},        {"gate_closed", a.gate.closed},
                  {"report_id", a.report_id ? nlohmann::json(*a.report_id) : nlohmann::json(nullptr)}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::fputs(checks::render_human(a.report, ::isatty(STDOUT_FILENO) != 0, o.verbose).c_str(), stdout);
  if (!a.baseline_found) {
    std::printf("no accepted baseline for %s yet: the findings above are not reviewed, and until they are\n"
                "the audit fails nothing and never closes the reboot gate. When they are expected on this\n"
                "system, accept them with `upgrade-guard baseline accept`; from then on a new blocking\n"
                "finding closes the gate.\n",
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
  audit::AuditMetrics m;
  m.finished_unix = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  m.duration_seconds = a.seconds;
  m.gate_closed = a.gate.closed;
  m.baseline_found = a.baseline_found;
  m.check_ids = policies::known_check_ids();
  if (auto w = audit::write_textfile(opts.prometheus, audit::render_textfile(a.report, m)); !w) {
    report_error(w.error(), kExitEnvironment);
    return false;
  }
  return true;
}

int run_audit(CliContext& ctx, const AuditOptions& opts) {
  auto run_ctx = ctx.invocation().context();
  if (!run_ctx) return report_error(run_ctx.error().error, run_ctx.error().exit_code);
  auto a = audit::run_audit(**run_ctx, opts.deep);
  if (!a) return report_error(a.error(), kExitEnvironment);
  print_result(ctx.options, *a);
  int code = a->failed() ? kExitChecksFailed : kExitOk;
  if (!opts.prometheus.empty() && !export_metrics(opts, *a) && code == kExitOk) code = kExitEnvironment;
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
      "Before the first `baseline accept` the findings are only reported: the gate is never closed.\n"
      "Exits 0 when nothing new blocks (or no baseline is accepted yet), 1 when something does (or a\n"
      "check could not run), 4 while a guarded run is changing the root. Each audit is logged to the journal\n"
      "(MESSAGE_ID=7d3c9a41e2b84f6c8e05a1b9c4d2f630, fields UG_FINDINGS_NEW, UG_FINDINGS_BLOCKING,\n"
      "UG_GATE_CLOSED...). Package files whose md5 an earlier audit verified are not read again while\n"
      "their identity (device, inode, size, mtime, ctime) is unchanged (the verified-hash cache in the\n"
      "state directory); an audit is deep, reading every file, with --deep or when the last deep one is\n"
      "older than audit.deep_every.");
  sub->add_option("--prometheus", opts->prometheus,
                  "Also write the metrics to FILE (node-exporter textfile collector, atomically, mode 0644),\n"
                  "e.g. /var/lib/prometheus/node-exporter/upgrade-guard.prom");
  sub->add_flag("--prometheus-optional", opts->prometheus_optional,
                "With --prometheus: skip the file when its directory does not exist (node-exporter\n"
                "not installed) instead of failing");
  sub->add_flag("--deep", opts->deep,
                "Read and hash every package file now, trusting nothing from the verified-hash cache\n"
                "(the policy's audit.deep_every makes an audit deep on its own, weekly by default)");
  sub->callback([&ctx, opts] {
    if (opts->prometheus_optional && opts->prometheus.empty()) {
      std::fprintf(stderr, "upgrade-guard: --prometheus-optional needs --prometheus FILE\n");
      ctx.exit_code = kExitUsage;
      return;
    }
    ctx.exit_code = run_audit(ctx, *opts);
  });
}

}  // namespace guard::cli
