// upgrade-guard gate status|close|open
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <optional>
#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include "base/root.h"
#include "guard/check_session.h"
#include "guard/cli.h"
#include "guard/gate.h"
#include "guard/state.h"

namespace guard {
namespace {

std::string format_time(std::int64_t unix_time) {
  std::time_t t = static_cast<std::time_t>(unix_time);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// The new blocking findings of the root's last audit, which closed the gate.
std::vector<FindingRecord> last_audit_blocking(const StateStore& store, const std::string& root_dir) {
  std::vector<FindingRecord> out;
  auto root = base::Root::open(root_dir);
  if (!root) return out;
  auto last = store.latest_report(root_key(*root), ReportStage::audit);
  if (!last || !*last) return out;
  for (const auto& f : (*last)->report.findings) {
    if (!checks::is_blocking(f)) continue;
    FindingRecord rec;
    rec.check = f.check;
    rec.path = f.path;
    rec.package = f.package;
    rec.message = f.message;
    out.push_back(rec);
  }
  return out;
}

int gate_status(CliContext& ctx) {
  const auto& o = ctx.options;
  struct stat st {};
  GateState gate;
  std::vector<FindingRecord> findings;
  if (::stat(StateStore::database_path(o.state_dir).c_str(), &st) == 0) {
    auto store = StateStore::open(o.state_dir);
    if (!store) return report_error(store.error(), kExitEnvironment);
    auto g = store->get_gate();
    if (!g) return report_error(g.error(), kExitEnvironment);
    gate = *g;
    if (gate.closed && gate.run_id) {
      if (auto f = store->findings_for_run(*gate.run_id)) {
        for (auto& rec : *f) {
          if (rec.stage == ReportStage::post && rec.severity == "block" && !rec.known) findings.push_back(rec);
        }
      }
    } else if (gate.closed && gate.changed_by == "audit") {
      findings = last_audit_blocking(*store, o.root);
    }
  }
  if (o.json) {
    nlohmann::json j{{"schema", 1}, {"closed", gate.closed}, {"reboot_safe", !gate.closed}};
    if (gate.closed) {
      j["reason"] = gate.reason;
      j["run"] = gate.run_id ? nlohmann::json(*gate.run_id) : nlohmann::json(nullptr);
      j["since_unix"] = gate.changed_unix;
      j["changed_by"] = gate.changed_by;
      auto& fj = j["findings"] = nlohmann::json::array();
      for (const auto& f : findings)
        fj.push_back({{"check", f.check}, {"path", f.path}, {"package", f.package}, {"message", f.message}});
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else if (!gate.closed) {
    std::printf("gate open: a reboot is safe as far as upgrade-guard knows\n");
  } else {
    std::printf("gate CLOSED since %s by %s: %s\n", format_time(gate.changed_unix).c_str(), gate.changed_by.c_str(),
                gate.reason.c_str());
    for (const auto& f : findings)
      std::printf("  %s %s: %s%s\n", f.check.c_str(), f.path.c_str(), f.message.c_str(),
                  f.package.empty() ? "" : (" [" + f.package + "]").c_str());
    std::printf("Fix the findings, then `upgrade-guard gate open` (re-runs the checks) or, knowingly,\n"
                "`upgrade-guard gate open --force --reason ...`.\n");
  }
  return gate.closed ? kExitChecksFailed : kExitOk;
}

// Root and the state store for changing the gate; nullopt (exit code set) when either is missing.
std::optional<StateStore> open_store_as_root(CliContext& ctx, const char* what) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "upgrade-guard: %s must run as root\n", what);
    ctx.exit_code = kExitEnvironment;
    return std::nullopt;
  }
  auto store = StateStore::open(ctx.options.state_dir);
  if (!store) {
    ctx.exit_code = report_error(store.error(), kExitEnvironment);
    return std::nullopt;
  }
  return std::move(*store);
}

}  // namespace

void add_gate_command(CLI::App& app, CliContext& ctx) {
  auto* gate = app.add_subcommand("gate", "Show, close or open the pre-reboot gate");
  gate->require_subcommand(1);
  add_gate_hold_command(*gate, ctx);  // hidden: run by upgrade-guard-gate.service
  auto* status = gate->add_subcommand(
      "status",
      "Exit 0 when a reboot is safe, 1 when the gate is closed (printing the run and findings that\n"
      "closed it). For scripts, Ansible, unattended-upgrades and kured --reboot-sentinel-command.");
  status->callback([&ctx] { ctx.exit_code = gate_status(ctx); });

  auto reason = std::make_shared<std::string>();
  auto* close = gate->add_subcommand("close", "Close the gate by hand: reboots are refused until it opens");
  close->add_option("--reason", *reason, "Why (recorded with who closed it)")->required();
  close->callback([&ctx, reason] {
    auto store = open_store_as_root(ctx, "gate close");
    if (!store) return;
    GateState g;
    g.closed = true;
    g.reason = *reason;
    g.changed_by = invoking_user();
    auto r = change_gate(*store, ctx.options.state_dir, g, true);
    if (!r) {
      ctx.exit_code = report_error(r.error(), kExitEnvironment);
      return;
    }
    std::printf("gate closed: %s\n%s\n", reason->c_str(), r->c_str());
    ctx.exit_code = kExitOk;
  });

  auto force = std::make_shared<bool>(false);
  auto open_reason = std::make_shared<std::string>();
  auto* open = gate->add_subcommand(
      "open",
      "Open the gate after re-running the checks against the baseline (they must pass), or\n"
      "without them with --force. Who and why are recorded.");
  open->add_flag("--force", *force, "Open without re-running the checks");
  open->add_option("--reason", *open_reason, "Why (recorded)");
  open->callback([&ctx, force, open_reason] {
    if (::geteuid() != 0) {
      std::fprintf(stderr, "upgrade-guard: gate open must run as root\n");
      ctx.exit_code = kExitEnvironment;
      return;
    }
    if (!*force) {
      auto policy = load_cli_policy(ctx.options);
      if (!policy) {
        ctx.exit_code = report_error(policy.error(), kExitUsage);
        return;
      }
      CheckSessionOptions session;
      session.baseline = "compare";
      auto checked = run_check_session(ctx.options, *policy, session);
      if (!checked) {
        ctx.exit_code = report_error(checked.error().error, checked.error().exit_code);
        return;
      }
      if (checked->report.verdict != checks::Verdict::pass) {
        std::fputs(checks::render_human(checked->report, ::isatty(STDOUT_FILENO) != 0).c_str(), stdout);
        std::printf("the checks still fail: the gate stays closed (use --force to open it anyway)\n");
        ctx.exit_code = kExitChecksFailed;
        return;
      }
    }
    auto store = open_store_as_root(ctx, "gate open");
    if (!store) return;
    GateState g;
    g.closed = false;
    g.reason = open_reason->empty() ? (*force ? "opened with --force" : "checks pass") : *open_reason;
    g.changed_by = invoking_user() + (*force ? " (--force)" : "");
    auto r = change_gate(*store, ctx.options.state_dir, g, true);
    if (!r) {
      ctx.exit_code = report_error(r.error(), kExitEnvironment);
      return;
    }
    std::printf("gate open (%s)\n%s\n", g.reason.c_str(), r->c_str());
    ctx.exit_code = kExitOk;
  });
}

}  // namespace guard
