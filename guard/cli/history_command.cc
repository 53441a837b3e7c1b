// upgrade-guard history: the runs recorded in the state store, or one run with its findings.
#include <fmt/format.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "guard/cli/render.h"
#include "guard/core/liveness.h"
#include "guard/state/store.h"

namespace guard::cli {

using state::RunOutcome;
using state::RunRecord;
using state::StateStore;
namespace {

struct HistoryOptions {
  int limit = 20;
  std::int64_t run_id = 0;  // 0: list
};

// argv as a shell user would type it: apt-get install './a b.deb'
std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_not_of(
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                   "-_./=:,+@%") == std::string::npos;
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

// What a run is doing or how it ended, e.g. "rolled-back", "running (command)",
// "unrecovered (command)": its process is gone and `recover` has not finished it yet.
std::string run_state(const RunRecord& run) {
  if (run.outcome) {
    if (*run.outcome == RunOutcome::interrupted) return fmt::format("interrupted ({})", state::to_string(run.phase));
    return state::to_string(*run.outcome);
  }
  if (run_process_alive(run)) return fmt::format("running ({})", state::to_string(run.phase));
  return fmt::format("unrecovered ({})", state::to_string(run.phase));
}

nlohmann::json run_json(const RunRecord& run) {
  nlohmann::json j{
      {"id", run.id},
      {"kind", state::to_string(run.kind)},
      {"started", iso_utc(run.started_unix)},
      {"started_unix", run.started_unix},
      {"root", run.root},
      {"command", run.command},
      {"phase", state::to_string(run.phase)},
      {"state", run_state(run)},
      {"pid", run.pid},
      {"hostname", run.hostname},
      {"boot_id", run.boot_id},
      {"message", run.message},
  };
  j["finished_unix"] = run.finished_unix ? nlohmann::json(*run.finished_unix) : nlohmann::json(nullptr);
  j["finished"] = run.finished_unix ? nlohmann::json(iso_utc(*run.finished_unix)) : nlohmann::json(nullptr);
  j["outcome"] = run.outcome ? nlohmann::json(state::to_string(*run.outcome)) : nlohmann::json(nullptr);
  j["exit_code"] = run.exit_code ? nlohmann::json(*run.exit_code) : nlohmann::json(nullptr);
  j["command_status"] = run.command_status ? nlohmann::json(*run.command_status) : nlohmann::json(nullptr);
  j["snapshot"] = run.snapshot_id ? nlohmann::json(*run.snapshot_id) : nlohmann::json(nullptr);
  return j;
}

int list_runs(const StateStore& store, const HistoryOptions& opts, bool json) {
  auto runs = store.list_runs(opts.limit);
  if (!runs) return report_error(runs.error(), kExitEnvironment);
  if (json) {
    nlohmann::json out{{"schema", 1}, {"runs", nlohmann::json::array()}};
    for (const auto& r : *runs) out["runs"].push_back(run_json(r));
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kExitOk;
  }
  if (runs->empty()) {
    fmt::print("no runs recorded yet\n");
    return kExitOk;
  }
  // Columns as wide as their widest cell, so long roots and snapshot ids stay aligned.
  std::vector<std::array<std::string, 7>> rows;
  rows.push_back({"RUN", "STARTED", "ROOT", "STATE", "EXIT", "SNAPSHOT", "COMMAND"});
  for (const auto& r : *runs) {
    rows.push_back({std::to_string(r.id), local_time(r.started_unix), r.root, run_state(r),
                    r.exit_code ? std::to_string(*r.exit_code) : "-", r.snapshot_id.value_or("-"),
                    shell_join(r.command)});
  }
  std::array<std::size_t, 7> width{};
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows) {
    fmt::print("{:>{}}  {:<{}}  {:<{}}  {:<{}}  {:>{}}  {:<{}}  {}\n", row[0], width[0], row[1], width[1], row[2],
               width[2], row[3], width[3], row[4], width[4], row[5], width[5], row[6]);
  }
  return kExitOk;
}

int show_run(const StateStore& store, std::int64_t run_id, bool json) {
  auto run = store.get_run(run_id);
  if (!run) return report_error(run.error(), kExitEnvironment);
  if (!*run) {
    return report_error(base::Error{"history", store.path(), 0, fmt::format("no run {} is recorded", run_id)},
                        kExitUsage);
  }
  const RunRecord& r = **run;
  auto phases = store.run_phases(run_id);
  if (!phases) return report_error(phases.error(), kExitEnvironment);
  auto findings = store.findings_for_run(run_id);
  if (!findings) return report_error(findings.error(), kExitEnvironment);
  auto packages = store.package_changes(run_id);
  if (!packages) return report_error(packages.error(), kExitEnvironment);
  auto trials = store.boot_trials_of_run(run_id);
  if (!trials) return report_error(trials.error(), kExitEnvironment);
  auto rollbacks = store.rollbacks_of_run(run_id);
  if (!rollbacks) return report_error(rollbacks.error(), kExitEnvironment);

  if (json) {
    nlohmann::json out{{"schema", 1}, {"run", run_json(r)}};
    auto& pj = out["phases"] = nlohmann::json::array();
    for (const auto& p : *phases) pj.push_back({{"phase", state::to_string(p.phase)}, {"at_unix_ms", p.at_unix_ms}});
    auto& pk = out["packages"] = nlohmann::json::array();
    for (const auto& p : *packages) {
      pk.push_back({{"package", p.package}, {"old_version", p.old_version}, {"new_version", p.new_version}});
    }
    auto& tj = out["boot_trials"] = nlohmann::json::array();
    for (const auto& t : *trials) {
      tj.push_back({{"id", t.id},
                    {"snapshot", t.snapshot_id},
                    {"state", state::to_string(t.state)},
                    {"attempts", t.attempts},
                    {"updated_unix", t.updated_unix},
                    {"message", t.message}});
    }
    auto& rj = out["rollbacks"] = nlohmann::json::array();
    for (const auto& rb : *rollbacks) {
      rj.push_back({{"id", rb.id},
                    {"snapshot", rb.snapshot_id},
                    {"state", state::to_string(rb.state)},
                    {"journal", rb.journal},
                    {"broken", rb.broken},
                    {"updated_unix", rb.updated_unix},
                    {"message", rb.message}});
    }
    auto& fj = out["findings"] = nlohmann::json::array();
    for (const auto& f : *findings) {
      fj.push_back({{"stage", state::to_string(f.stage)},
                    {"check", f.check},
                    {"severity", f.severity},
                    {"path", f.path},
                    {"package", f.package},
                    {"message", f.message},
                    {"hint", f.hint},
                    {"known", f.known}});
    }
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return kExitOk;
  }

  fmt::print("run {}\n", r.id);
  fmt::print("  command:   {}\n", shell_join(r.command));
  fmt::print("  root:      {}\n", r.root);
  fmt::print("  started:   {} (pid {} on {})\n", local_time(r.started_unix), r.pid, r.hostname);
  if (r.finished_unix) fmt::print("  finished:  {}\n", local_time(*r.finished_unix));
  fmt::print("  state:     {}\n", run_state(r));
  if (!r.finished_unix && !run_process_alive(r)) {
    fmt::print("             the guard died during {}: `upgrade-guard recover` finishes the run\n", state::to_string(r.phase));
  }
  if (r.exit_code) fmt::print("  exit code: {}\n", *r.exit_code);
  if (r.command_status) fmt::print("  status:    the command {}\n", *r.command_status);
  if (r.snapshot_id) fmt::print("  snapshot:  {}\n", *r.snapshot_id);
  if (!r.message.empty()) fmt::print("  message:   {}\n", r.message);
  if (!phases->empty()) {
    fmt::print("phases:\n");
    for (std::size_t i = 0; i < phases->size(); ++i) {
      const auto& p = (*phases)[i];
      std::string took =
          i + 1 < phases->size()
              ? fmt::format("{:.1f} s", static_cast<double>((*phases)[i + 1].at_unix_ms - p.at_unix_ms) / 1000)
              : std::string();
      fmt::print("  {:<12} {:>10}\n", state::to_string(p.phase), took);
    }
  }
  if (!packages->empty()) {
    fmt::print("packages:\n");
    for (const auto& p : *packages) {
      if (p.old_version.empty())
        fmt::print("  {:<32} installed {}\n", p.package, p.new_version);
      else if (p.new_version.empty())
        fmt::print("  {:<32} removed {}\n", p.package, p.old_version);
      else
        fmt::print("  {:<32} {} -> {}\n", p.package, p.old_version, p.new_version);
    }
  }
  if (!trials->empty()) {
    // Oldest first, like the phases: the trial boot, then the boot after its rollback.
    fmt::print("boot trials:\n");
    for (auto t = trials->rbegin(); t != trials->rend(); ++t) {
      fmt::print("  trial {} {:<11} {} (boots: {}){}{}\n", t->id, state::to_string(t->state), local_time(t->updated_unix),
                 t->attempts, t->message.empty() ? "" : ": ", t->message);
    }
  }
  if (!rollbacks->empty()) {
    fmt::print("rollbacks:\n");
    for (auto rb = rollbacks->rbegin(); rb != rollbacks->rend(); ++rb) {
      fmt::print("  rollback {} {:<9} {} to {}{}{}\n", rb->id, state::to_string(rb->state), local_time(rb->updated_unix),
                 rb->snapshot_id, rb->message.empty() ? "" : ": ", rb->message);
    }
  }
  if (findings->empty()) {
    fmt::print("findings: none\n");
    return kExitOk;
  }
  fmt::print("findings:\n");
  for (const auto& f : *findings) {
    std::string where = f.path;
    if (!f.package.empty()) where += where.empty() ? f.package : " (" + f.package + ")";
    fmt::print("  [{}] {:<5} {:<11} {}{}{}{}\n", state::to_string(f.stage), f.known ? "known" : f.severity, f.check, where,
               where.empty() ? "" : ": ", f.message, f.hint.empty() ? "" : " — " + f.hint);
  }
  return kExitOk;
}

}  // namespace

void add_history_command(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<HistoryOptions>();
  CLI::App* sub = app.add_subcommand(
      "history", "List past runs from the state store (newest first), or show one run with its phases and findings");
  sub->add_option("--limit", opts->limit, "Show at most N runs (default 20; 0 for all)")->check(CLI::Range(0, 1000000));
  sub->add_option("--run", opts->run_id, "Show run ID in detail: phases, timings and findings")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--json", ctx.options.json, "Print JSON (\"schema\": 1) instead of text");
  sub->callback([&ctx, opts]() {
    // Reading history never creates the store.
    auto store = ctx.invocation().existing_store();
    if (!store) {
      ctx.exit_code = report_error(store.error().error, kExitEnvironment);
      return;
    }
    if (*store == nullptr) {
      if (ctx.options.json) {
        fmt::print("{}\n", nlohmann::json{{"schema", 1}, {"runs", nlohmann::json::array()}}.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        fmt::print("no runs recorded yet\n");
      }
      ctx.exit_code = kExitOk;
      return;
    }
    ctx.exit_code = opts->run_id > 0 ? show_run(**store, opts->run_id, ctx.options.json)
                                     : list_runs(**store, *opts, ctx.options.json);
  });
}

}  // namespace guard::cli
