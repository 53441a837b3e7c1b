#include "guard/boot_check.h"

#include <sys/stat.h>

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/log.h"
#include "base/root.h"
#include "base/strings.h"
#include "guard/check_session.h"
#include "guard/gate.h"
#include "guard/locks.h"
#include "snapshots/layout.h"

namespace guard {
namespace {

using std::chrono::steady_clock;
constexpr const char* kBootCheckMessageId = "2c9e7f41b8a34d6e9f0a1b2c3d4e5f67";

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : "; ") + x;
  return out;
}

std::chrono::milliseconds since(steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - t);
}

// Polls the manager until the boot settled or the policy's timeout; a problem line when it did not.
std::optional<std::string> wait_for_settle(BootBus& bus, const policies::Policy& policy, const BootCheckOptions& o) {
  const auto deadline = steady_clock::now() + policy.boot_check.settle_timeout;
  std::string state = "?";
  for (;;) {
    auto s = bus.system_state();
    if (!s) return "cannot ask systemd how far the boot got: " + s.error().to_string();
    state = *s;
    auto jobs = bus.jobs();
    if (jobs && boot_settled(state, *jobs, o.own_unit)) return std::nullopt;
    if (steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(o.poll);
  }
  return fmt::format("the boot did not settle within {} s (systemd state: {})",
                     policy.boot_check.settle_timeout.count(), state);
}

// Required units not active and failed units, one problem line each.
void check_units(BootBus& bus, const policies::Policy& policy, const BootCheckOptions& o,
                 std::vector<std::string>& problems) {
  for (const auto& unit : policy.required_services) {
    auto state = bus.unit_active_state(unit);
    if (!state) problems.push_back("cannot read the state of required unit " + unit + ": " + state.error().to_string());
    else if (*state != "active") problems.push_back("required unit " + unit + " is " + *state);
  }
  auto failed = bus.failed_units();
  if (!failed) {
    problems.push_back("cannot list failed units: " + failed.error().to_string());
    return;
  }
  for (const auto& unit : *failed) {
    bool required = std::find(policy.required_services.begin(), policy.required_services.end(), unit) !=
                    policy.required_services.end();
    if (unit != o.own_unit && !required) problems.push_back("unit " + unit + " failed");
  }
}

// The always-on checks against the root's accepted baseline; blocking findings become problems.
std::optional<checks::Report> run_checks(const GlobalOptions& options, const policies::Policy& policy, StateStore& db,
                                         const BootTrialRecord& trial, BootCheckSummary& s) {
  CheckSessionOptions session;
  session.check_ids = boot_check_ids();
  auto checked = run_check_session(options, policy, session);
  if (!checked) {
    s.problems.push_back("the checks could not run: " + checked.error().error.to_string());
    return std::nullopt;
  }
  checks::Report report = std::move(checked->report);
  auto root = base::Root::open(options.root);
  auto baseline = root ? db.load_baseline(root_key(*root)) : base::Result<std::optional<std::vector<std::string>>>();
  if (baseline && *baseline) {
    checks::apply_baseline(report, **baseline);
  } else {
    s.notes.push_back("no accepted baseline for " + options.root + ": every finding counts");
  }
  (void)db.save_report(trial.run_id, ReportStage::check, report);
  for (const auto& f : report.findings) {
    if (checks::is_blocking(f)) s.problems.push_back(f.check + ": " + (f.path.empty() ? "" : f.path + ": ") + f.message);
  }
  return report;
}

// True when the upgrade the trial belongs to was rolled back already: an earlier trial of its
// run was, or the run itself rolled back (its record says so, or it stopped in the rollback
// phase: the state directory was copied into the restored root during the rollback).
bool upgrade_rolled_back(const StateStore& db, const BootTrialRecord& trial) {
  if (!trial.run_id) return false;
  if (auto trials = db.boot_trials_of_run(*trial.run_id)) {
    for (const auto& t : *trials) {
      if (t.id != trial.id && t.state == BootTrialState::rolled_back) return true;
    }
  }
  auto run = db.get_run(*trial.run_id);
  if (!run || !*run) return false;
  return (*run)->outcome == RunOutcome::rolled_back || (!(*run)->outcome && (*run)->phase == RunPhase::rollback);
}

// A run whose rollback was recorded only up to the copy of the state directory: the restored
// root has now booted, so the rollback is complete.
void finish_rolled_back_run(StateStore& db, const BootTrialRecord& trial, BootCheckSummary& s) {
  if (!trial.run_id) return;
  auto run = db.get_run(*trial.run_id);
  if (!run || !*run || (*run)->finished_unix || (*run)->phase != RunPhase::rollback) return;
  (void)db.finish_run(*trial.run_id, RunOutcome::rolled_back, kExitRolledBack,
                      "rolled back to " + trial.snapshot_id + "; the restored root booted (trial " +
                          std::to_string(trial.id) + ")");
  s.notes.push_back("run " + std::to_string(*trial.run_id) + " is recorded as rolled back");
}

void bless(StateStore& db, const base::Root& root, const BootTrialRecord& trial, BootCheckSummary& s) {
  s.message = "trial " + std::to_string(trial.id) + " blessed: the boot passed its checks";
  s.exit_code = kExitOk;
  (void)db.set_boot_trial_state(trial.id, BootTrialState::blessed, s.message);
  if (!trial.snapshot_id.empty()) {
    if (auto r = db.set_snapshot_known_good(trial.snapshot_id, true); r)
      s.notes.push_back("snapshot " + trial.snapshot_id + " is the last known-good");
  }
  finish_rolled_back_run(db, trial, s);
  if (auto n = disarm_boot_counter(root); !n.empty()) s.notes.push_back(n);
}

void close_gate(StateStore& db, const GlobalOptions& options, const base::Root& root, const BootTrialRecord& trial,
                const std::string& why, BootCheckSummary& s) {
  std::string problems = s.problems.empty() ? std::string("failed") : join(s.problems);
  s.message = "trial " + std::to_string(trial.id) + " failed (" + problems + "): " + why + "; reboot gate closed";
  s.exit_code = kExitChecksFailed;
  (void)db.set_boot_trial_state(trial.id, BootTrialState::failed, s.message);
  finish_rolled_back_run(db, trial, s);
  GateState gate;
  gate.closed = true;
  gate.reason = "trial boot " + std::to_string(trial.id) + " failed: " + problems;
  gate.run_id = trial.run_id;
  gate.changed_by = "boot-check (trial " + std::to_string(trial.id) + ")";
  auto g = change_gate(db, options.state_dir, gate, root.is_host_root());
  s.notes.push_back(g ? *g : "closing the gate failed: " + g.error().to_string());
  if (auto n = disarm_boot_counter(root); !n.empty()) s.notes.push_back(n);
}

// Rolls back to the trial's snapshot (the restored root starts at the next boot) and reboots.
// False when no rollback happened (the caller closes the gate instead).
bool roll_back(StateStore& db, const GlobalOptions& options, const policies::Policy& policy, BootBus& bus,
               const base::Root& root, const BootTrialRecord& trial, const BootCheckOptions& o, BootCheckSummary& s) {
  auto layout = snapshots::detect_layout(options.root);
  auto backend = layout ? snapshots::make_backend(*layout, policy, options.state_dir)
                        : base::Result<std::unique_ptr<snapshots::SnapshotBackend>>(tl::unexpected(layout.error()));
  if (!backend) {
    s.notes.push_back("no rollback possible: " + backend.error().to_string());
    return false;
  }
  std::string problems = join(s.problems);
  // Recorded before the rollback copies the state directory into the restored root.
  s.message = "trial " + std::to_string(trial.id) + " failed (" + problems + "): rolled back to " + trial.snapshot_id;
  (void)db.set_boot_trial_state(trial.id, BootTrialState::rolled_back, s.message);
  (void)disarm_boot_counter(root);
  auto rolled = rollback_with_trial(db, root, **backend, policy, options.state_dir, trial.run_id, trial.snapshot_id);
  if (!rolled) {
    (void)db.set_boot_trial_state(trial.id, BootTrialState::failed, "the rollback failed: " + rolled.error().to_string());
    s.notes.push_back("the rollback to " + trial.snapshot_id + " failed: " + rolled.error().to_string());
    return false;
  }
  for (const auto& n : rolled->notes) s.notes.push_back(n);
  s.notes.push_back("the broken root is kept as " + rolled->broken);
  s.exit_code = kExitRolledBack;
  if (!rolled->takes_effect_now && o.reboot) {
    base::log(base::LogLevel::warning, kBootCheckMessageId, s.message + "; rebooting into the restored root",
              {{"UG_BOOT_TRIAL", std::to_string(trial.id)}});
    auto r = bus.reboot();
    s.notes.push_back(r ? "rebooting into the restored root" : "the reboot failed: " + r.error().to_string());
  }
  return true;
}

}  // namespace

const std::vector<std::string>& boot_check_ids() {
  static const std::vector<std::string> ids{"dpkg-state", "boot", "mounts", "services", "critical"};
  return ids;
}

BootCheckSummary run_boot_check(const GlobalOptions& options, const policies::Policy& policy, BootBus& bus,
                                const BootCheckOptions& o) {
  BootCheckSummary s;
  // The quick no-op of every ordinary boot: no database, or no pending trial in it.
  struct stat st {};
  if (::stat(StateStore::database_path(options.state_dir).c_str(), &st) != 0) {
    s.message = "no boot trial pending";
    return s;
  }
  auto fail = [&](const std::string& why) {
    s.message = why;
    s.exit_code = kExitEnvironment;
    base::log(base::LogLevel::error, kBootCheckMessageId, why);
    return s;
  };
  auto db = StateStore::open(options.state_dir);
  if (!db) return fail(db.error().to_string());
  auto pending = db->pending_boot_trial();
  if (!pending) return fail(pending.error().to_string());
  if (!*pending) {
    s.message = "no boot trial pending";
    return s;
  }
  auto lock = GuardLock::acquire(o.run_dir);
  if (!lock) return fail(lock.error().to_string());
  auto root = base::Root::open(options.root);
  if (!root) return fail(root.error().to_string());
  BootTrialRecord trial = **pending;
  auto attempts = db->record_boot_attempt(trial.id);
  trial.attempts = attempts ? *attempts : trial.attempts + 1;
  s.trial = trial;

  auto start = steady_clock::now();
  if (auto unsettled = wait_for_settle(bus, policy, o)) s.problems.push_back(*unsettled);
  s.settle_time = since(start);
  auto checks_start = steady_clock::now();
  check_units(bus, policy, o, s.problems);
  s.report = run_checks(options, policy, *db, trial, s);
  s.check_time = since(checks_start);

  auto cmdline = base::Root::open("/");
  auto cmdline_text = cmdline ? cmdline->read_file(o.cmdline_path, 1 << 20) : base::Result<std::string>();
  TrialFacts facts;
  facts.healthy = s.problems.empty();
  facts.policy_rollback = policy.boot_check.rollback;
  facts.cmdline_allows_rollback = !cmdline_text || cmdline_allows_rollback(*cmdline_text);
  facts.attempts = trial.attempts;
  facts.upgrade_already_rolled_back = upgrade_rolled_back(*db, trial);
  facts.can_roll_back = !trial.snapshot_id.empty();
  TrialDecision decision = decide_trial(facts);
  s.action = decision.action;
  if (decision.action == TrialAction::bless) {
    bless(*db, *root, trial, s);
  } else if (decision.action == TrialAction::roll_back) {
    if (!roll_back(*db, options, policy, bus, *root, trial, o, s)) {
      s.action = TrialAction::close_gate;
      close_gate(*db, options, *root, trial, "the rollback was not possible", s);
    }
  } else {
    close_gate(*db, options, *root, trial, decision.why, s);
  }
  base::log(s.exit_code == kExitOk ? base::LogLevel::info : base::LogLevel::warning, kBootCheckMessageId, s.message,
            {{"UG_BOOT_TRIAL", std::to_string(trial.id)},
             {"UG_RUN_ID", trial.run_id ? std::to_string(*trial.run_id) : ""},
             {"UG_ACTION", to_string(*s.action)},
             {"UG_SETTLE_MS", std::to_string(s.settle_time.count())},
             {"UG_CHECK_MS", std::to_string(s.check_time.count())}});
  return s;
}

std::string render_boot_check(const BootCheckSummary& s) {
  std::string out = "upgrade-guard boot-check: " + s.message + "\n";
  if (!s.trial) return out;
  out += fmt::format("  trial {} (run {}, snapshot {}), boot {} of it\n", s.trial->id,
                     s.trial->run_id ? std::to_string(*s.trial->run_id) : "-", s.trial->snapshot_id,
                     s.trial->attempts);
  out += fmt::format("  settled after {:.1f} s, checked in {:.1f} s\n", s.settle_time.count() / 1000.0,
                     s.check_time.count() / 1000.0);
  for (const auto& p : s.problems) out += "  problem: " + p + "\n";
  for (const auto& n : s.notes) out += "  - " + n + "\n";
  return out;
}

std::string render_boot_check_json(const BootCheckSummary& s) {
  nlohmann::json j{{"schema", 1},
                   {"message", s.message},
                   {"exit_code", s.exit_code},
                   {"problems", s.problems},
                   {"notes", s.notes},
                   {"settle_ms", s.settle_time.count()},
                   {"check_ms", s.check_time.count()}};
  j["action"] = s.action ? nlohmann::json(to_string(*s.action)) : nlohmann::json(nullptr);
  if (s.trial) {
    j["trial"] = {{"id", s.trial->id},
                  {"run", s.trial->run_id ? nlohmann::json(*s.trial->run_id) : nlohmann::json(nullptr)},
                  {"snapshot", s.trial->snapshot_id},
                  {"attempts", s.trial->attempts}};
  } else {
    j["trial"] = nullptr;
  }
  if (s.report) j["report"] = checks::to_json(*s.report);
  return j.dump(2);
}

}  // namespace guard
