#include "guard/audit/audit.h"

#include <chrono>
#include <fmt/format.h>

#include "base/log.h"
#include "guard/core/check_session.h"
#include "guard/core/locks.h"
#include "guard/gate/gate.h"

namespace guard::audit {
namespace {

// journalctl MESSAGE_ID=7d3c9a41e2b84f6c8e05a1b9c4d2f630 lists every audit's result.
constexpr const char* kAuditMessageId = "7d3c9a41e2b84f6c8e05a1b9c4d2f630";

// Closes the gate for new blocking findings when the policy says so. A gate already closed
// keeps its reason (e.g. the run that closed it). Without an accepted baseline nothing has been
// reviewed yet: every finding would count as new, and a host that carries old oddities would
// lose its reboots the first night after install. The audit then reports and never closes.
void apply_gate_policy(RunContext& ctx, AuditResult& a) {
  auto gate = ctx.store.get_gate();
  if (!gate) {
    a.gate_note = "the gate state cannot be read (" + gate.error().to_string() + ")";
    a.gate.closed = true;  // unknown is never open
    return;
  }
  a.gate = *gate;
  if (a.new_blocking == 0) return;
  if (!a.baseline_found) {
    a.gate_note = "no accepted baseline: the reboot gate is left as it is";
    return;
  }
  if (!ctx.policy.audit.close_gate) {
    a.gate_note = "policy audit.close_gate = false: the reboot gate is left as it is";
    return;
  }
  if (a.gate.closed) {
    a.gate_note = "the reboot gate was already closed by " + a.gate.changed_by + ": " + a.gate.reason;
    return;
  }
  state::GateState g;
  g.closed = true;
  g.reason = fmt::format("audit found {} new blocking finding{} (`upgrade-guard audit` lists them)", a.new_blocking,
                         a.new_blocking == 1 ? "" : "s");
  g.changed_by = "audit";
  std::optional<gate::Enforcement> enforce;
  if (ctx.live) enforce.emplace(gate::Enforcement{ctx.root, ctx.gate_bus});
  gate::GateChange change = gate::change_gate(ctx.store, ctx.paths.state_dir, g, enforce);
  a.gate = g;
  a.gate_note = "the reboot gate is closed (`upgrade-guard gate status` exits 1 until `gate open`): " + change.summary();
}

void log_result(const AuditResult& a) {
  std::string message = fmt::format("audit of {}: {} new blocking finding{}, {} new, {} in all{}", a.root,
                                    a.new_blocking, a.new_blocking == 1 ? "" : "s", a.new_findings,
                                    a.report.findings.size(), a.baseline_found ? "" : " (no accepted baseline)");
  if (!a.baseline_found)
    message += fmt::format(": {} finding{} to review, then `upgrade-guard baseline accept`", a.report.findings.size(),
                           a.report.findings.size() == 1 ? "" : "s");
  base::log(a.new_blocking > 0 || !a.baseline_found ? base::LogLevel::warning : base::LogLevel::info, kAuditMessageId, message,
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

}  // namespace

std::string hash_cache_file(const std::string& state_dir, const std::string& root_key) {
  if (root_key == "/") return state_dir + "/verified-hashes";
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : root_key) h = (h ^ c) * 0x100000001b3ULL;
  return fmt::format("{}/verified-hashes-{:016x}", state_dir, h);
}

base::Result<AuditResult> run_audit(RunContext& ctx, bool deep) {
  auto quiet = wait_for_quiet_root(ctx.root, ctx.root_key, ctx.store, ctx.policy.preflight.lock_timeout,
                                   [&](int pid, const std::string& p) {
                                     ctx.say(fmt::format("waiting for the package manager (pid {} holds {})", pid, p));
                                   });
  if (!quiet) return base::fail(quiet.error());

  const auto start = std::chrono::steady_clock::now();
  CheckSessionOptions session;
  session.hash_cache.file = hash_cache_file(ctx.paths.state_dir, ctx.root_key);
  session.hash_cache.deep = deep;
  auto report = run_checks({ctx.root, ctx.policy, ctx.runner, ctx.live}, session);
  if (!report) return base::fail(report.error());
  AuditResult a;
  a.root = ctx.root_key;
  auto compared = compare_with_baseline(ctx.store, ctx.root_key, *report);
  if (!compared) return base::fail(compared.error());
  a.baseline_found = *compared;
  auto saved = ctx.store.save_report(std::nullopt, state::ReportStage::audit, *report);
  if (!saved) return base::fail(saved.error());
  a.report_id = *saved;
  a.report = std::move(*report);
  for (const auto& f : a.report.findings) a.new_findings += f.known ? 0 : 1;
  a.new_blocking = a.report.blocking_count();
  apply_gate_policy(ctx, a);
  a.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_result(a);
  return a;
}

}  // namespace guard::audit
