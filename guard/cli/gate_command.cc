// upgrade-guard gate status|close|open
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/trusted_dir.h"
#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "guard/cli/render.h"
#include "guard/core/check_session.h"
#include "guard/gate/gate.h"
#include "guard/run/pipeline.h"

namespace guard::cli {
namespace {

// One finding the gate status shows. e.g. {"libraries", "/usr/bin/curl", "curl", "needs libcurl.so.4..."}.
struct GateFinding {
  std::string check;
  std::string path;
  std::string package;
  std::string message;
};

// Why the gate is closed, in findings: the run's new blocking post-check findings, or the
// root's last audit's.
std::vector<GateFinding> gate_findings(const state::StateStore& store, const state::GateState& gate,
                                       const std::string& root_key) {
  std::vector<GateFinding> out;
  if (gate.run_id) {
    if (auto f = store.findings_for_run(*gate.run_id)) {
      for (const auto& rec : *f) {
        if (rec.stage == state::ReportStage::post && rec.severity == "block" && !rec.known)
          out.push_back({rec.check, rec.path, rec.package, rec.message});
      }
    }
  } else if (gate.changed_by == "audit") {
    auto last = store.latest_report(root_key, state::ReportStage::audit);
    if (last && *last) {
      for (const auto& f : (*last)->report.findings) {
        if (checks::is_blocking(f)) out.push_back({f.check, f.path, f.package, f.message});
      }
    }
  }
  return out;
}

// The gate's state could not be read: "unknown", which counts as closed (exit 4, never 0).
int gate_unknown(const CliContext& ctx, const base::Error& why) {
  report_error(why, kExitEnvironment);
  if (ctx.options.json) {
    nlohmann::json j{{"schema", 1},     {"closed", nullptr},          {"state", "unknown"},
                     {"reboot_safe", false}, {"error", why.to_string()}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("gate UNKNOWN: its state cannot be read, so it counts as closed: do not reboot until `upgrade-guard "
                "gate status` (as root) says open\n");
  }
  return kExitEnvironment;
}

int gate_status(CliContext& ctx) {
  const auto& o = ctx.options;
  Invocation& inv = ctx.invocation();
  // A state directory others can write to may hold a planted gate file or database.
  if (auto trusted = base::check_trusted_dir(o.state_dir, "the state directory"); !trusted)
    return gate_unknown(ctx, trusted.error());
  // The gate file alone (molly-guard's view) and the database; closed if either says closed,
  // and neither may be unreadable: unknown is never reported as open.
  auto file = gate::read_gate_file(gate::gate_file_path(o.state_dir));
  if (!file) return gate_unknown(ctx, file.error());
  auto store = inv.existing_store();
  if (!store) return gate_unknown(ctx, store.error().error);
  state::GateState row;
  std::vector<GateFinding> findings;
  std::vector<run::OpenWork> work;
  if (*store != nullptr) {
    auto g = (*store)->get_gate();
    if (!g) return gate_unknown(ctx, g.error());
    row = *g;
    work = run::open_work(**store);
  } else if (::access(o.state_dir.c_str(), F_OK) == 0 && ::access(o.state_dir.c_str(), R_OK | X_OK) != 0) {
    return gate_unknown(
        ctx, base::Error{"access", o.state_dir, errno, "cannot read the state directory (run as root)"});
  }
  state::GateState gate = gate::effective_gate(row, *file);
  // A rollback half done leaves the next boot's root undetermined: that closes the gate too.
  std::vector<std::string> unfinished;
  for (const auto& w : work) {
    if (w.blocks_hook || w.closes_gate) unfinished.push_back(w.text);
  }
  if (!gate.closed && !unfinished.empty()) {
    gate.closed = true;
    gate.reason = unfinished.front();
    gate.changed_by = "an unfinished rollback or run";
  }
  if (*store != nullptr && gate.closed) {
    auto r = inv.root();
    findings = gate_findings(**store, gate, r ? root_key(**r) : o.root);
  }
  if (o.json) {
    nlohmann::json j{{"schema", 1},
                     {"closed", gate.closed},
                     {"state", gate.closed ? "closed" : "open"},
                     {"reboot_safe", !gate.closed}};
    if (gate.closed) {
      j["reason"] = gate.reason;
      j["run"] = gate.run_id ? nlohmann::json(*gate.run_id) : nlohmann::json(nullptr);
      j["since_unix"] = gate.changed_unix;
      j["changed_by"] = gate.changed_by;
      auto& fj = j["findings"] = nlohmann::json::array();
      for (const auto& f : findings)
        fj.push_back({{"check", f.check}, {"path", f.path}, {"package", f.package}, {"message", f.message}});
    }
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (!gate.closed) {
    std::printf("gate open: a reboot is safe as far as upgrade-guard knows\n");
  } else {
    std::printf("gate CLOSED%s by %s: %s\n",
                gate.changed_unix ? (" since " + local_time(gate.changed_unix)).c_str() : "",
                gate.changed_by.c_str(), gate.reason.c_str());
    for (const auto& f : findings)
      std::printf("  %s %s: %s%s\n", f.check.c_str(), f.path.c_str(), f.message.c_str(),
                  f.package.empty() ? "" : (" [" + f.package + "]").c_str());
    if (!unfinished.empty() && gate.changed_by == "an unfinished rollback or run")
      std::printf("Finish it first (`upgrade-guard recover`; a rollback can be given up: `recover --abandon`).\n");
    else
      std::printf("Fix the findings, then `upgrade-guard gate open` (re-runs the checks) or, knowingly,\n"
                  "`upgrade-guard gate open --force --reason ...`.\n");
  }
  return gate.closed ? kExitChecksFailed : kExitOk;
}

// Changes the gate (root only) and prints what was done; the exit code.
int change(CliContext& ctx, const state::GateState& g, const std::string& said) {
  Invocation& inv = ctx.invocation();
  auto store = inv.store();
  if (!store) return report_error(store.error().error, store.error().exit_code);
  auto root = inv.root();
  if (!root) return report_error(root.error().error, root.error().exit_code);
  gate::GateChange change = gate::change_gate(**store, ctx.options.state_dir, g, inv.enforcement(**root));
  if (!change.recorded) {
    for (const auto& p : change.problems) print_problem(p);
    if (g.closed && change.file_written)
      std::printf("%s (the gate file says so; the state database could not record it)\n", said.c_str());
    return kExitEnvironment;
  }
  std::printf("%s\n%s\n", said.c_str(), change.summary().c_str());
  return kExitOk;
}

}  // namespace

void add_gate_command(CLI::App& app, CliContext& ctx) {
  auto* gate = app.add_subcommand("gate", "Show, close or open the pre-reboot gate");
  gate->require_subcommand(1);
  add_gate_hold_command(*gate, ctx);  // hidden: run by upgrade-guard-gate.service
  auto* status = gate->add_subcommand(
      "status",
      "Exit 0 when a reboot is safe, 1 when the gate is closed (printing the run and findings that\n"
      "closed it), 4 when its state is unknown: the state database or gate file cannot be read (not\n"
      "root), is lost (state.db missing or empty although state.db.created says there was one),\n"
      "damaged or newer than this program, or the state directory is writable by others; it then\n"
      "prints \"gate UNKNOWN\" (JSON: \"state\": \"unknown\", \"reboot_safe\": false) and counts as closed,\n"
      "never \"open\". The gate is closed while\n"
      "the state database or the gate file says so, while a rollback is unfinished, and while a run\n"
      "interrupted after its command started waits for `upgrade-guard recover`. For\n"
      "scripts, Ansible and unattended-upgrades: reboot only after `gate status` exits 0 (a refused\n"
      "`reboot` can itself exit 0). Not kured's sentinel as it is (it exits 0 with no reboot\n"
      "needed): use /usr/libexec/upgrade-guard/kured-sentinel, which also needs /run/reboot-required.");
  status->callback([&ctx] { ctx.exit_code = gate_status(ctx); });

  auto reason = std::make_shared<std::string>();
  auto* close = gate->add_subcommand("close", "Close the gate by hand: reboots are refused until it opens");
  close->add_option("--reason", *reason, "Why (recorded with who closed it)")->required();
  close->callback([&ctx, reason] {
    if ((ctx.exit_code = require_root("gate close")) != kExitOk) return;
    state::GateState g;
    g.closed = true;
    g.reason = *reason;
    g.changed_by = gate::invoking_user();
    ctx.exit_code = change(ctx, g, "gate closed: " + *reason);
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
    if ((ctx.exit_code = require_root("gate open")) != kExitOk) return;
    if (!*force) {
      auto run_ctx = ctx.invocation().context();
      if (!run_ctx) {
        ctx.exit_code = report_error(run_ctx.error().error, run_ctx.error().exit_code);
        return;
      }
      RunContext& rc = **run_ctx;
      auto report = run_checks({rc.root, rc.policy, rc.runner, rc.live}, {});
      if (!report) {
        ctx.exit_code = report_error(report.error(), kExitEnvironment);
        return;
      }
      if (auto compared = compare_with_baseline(rc.store, rc.root_key, *report); !compared) {
        ctx.exit_code = report_error(compared.error(), kExitEnvironment);
        return;
      }
      if (auto saved = rc.store.save_report(std::nullopt, state::ReportStage::check, *report); !saved) {
        ctx.exit_code = report_error(saved.error(), kExitEnvironment);
        return;
      }
      if (report->verdict != checks::Verdict::pass) {
        std::fputs(checks::render_human(*report, ::isatty(STDOUT_FILENO) != 0, ctx.options.verbose).c_str(), stdout);
        std::printf("the checks still fail: the gate stays closed (use --force to open it anyway)\n");
        ctx.exit_code = kExitChecksFailed;
        return;
      }
    }
    state::GateState g;
    g.closed = false;
    g.reason = open_reason->empty() ? (*force ? "opened with --force" : "checks pass") : *open_reason;
    g.changed_by = gate::invoking_user() + (*force ? " (--force)" : "");
    ctx.exit_code = change(ctx, g, "gate open (" + g.reason + ")");
  });
}

}  // namespace guard::cli
