#include "guard/boot/boot_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>
#include <thread>

#include "base/log.h"
#include "base/root.h"
#include "base/strings.h"
#include "guard/boot/grub_counter.h"
#include "guard/boot/trial_status.h"
#include "guard/core/check_session.h"
#include "guard/core/locks.h"
#include "guard/core/liveness.h"
#include "guard/core/rollback.h"
#include "guard/gate/gate.h"
#include "snapshots/layout.h"

namespace guard::boot {
namespace {

using std::chrono::steady_clock;
constexpr const char* kBootCheckMessageId = "2c9e7f41b8a34d6e9f0a1b2c3d4e5f67";

using state::BootTrialRecord;
using state::BootTrialState;
using state::RunOutcome;
using state::RunPhase;

std::string join(const std::vector<std::string>& v) { return base::join(v, "; "); }

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
std::optional<checks::Report> check_root(RunContext& ctx, const BootTrialRecord& trial, BootCheckSummary& s) {
  CheckSessionOptions session;
  session.check_ids = boot_check_ids();
  auto report = run_checks({ctx.root, ctx.policy, ctx.runner, ctx.live}, session);
  if (!report) {
    s.problems.push_back("the checks could not run: " + report.error().to_string());
    return std::nullopt;
  }
  auto compared = compare_with_baseline(ctx.store, ctx.root_key, *report);
  if (!compared || !*compared)
    s.notes.push_back("no accepted baseline for " + ctx.root_key + ": every finding counts");
  if (auto w = ctx.store.save_report(trial.run_id, state::ReportStage::check, *report); !w)
    s.notes.push_back("the report was not recorded (" + w.error().to_string() + "), ignoring: the verdict stands");
  for (const auto& f : report->findings) {
    if (checks::is_blocking(f)) s.problems.push_back(f.check + ": " + (f.path.empty() ? "" : f.path + ": ") + f.message);
  }
  return std::move(*report);
}

// True when the upgrade the trial belongs to was rolled back already: an earlier trial of its
// run was, or the run itself rolled back (its record says so, or it stopped in the rollback
// phase: the state directory was copied into the restored root during the rollback).
bool upgrade_rolled_back(const state::StateStore& store, const BootTrialRecord& trial) {
  if (!trial.run_id) return false;
  if (auto trials = store.boot_trials_of_run(*trial.run_id)) {
    for (const auto& t : *trials) {
      if (t.id != trial.id && t.state == BootTrialState::rolled_back) return true;
    }
  }
  auto run = store.get_run(*trial.run_id);
  if (!run || !*run) return false;
  return (*run)->outcome == RunOutcome::rolled_back || (!(*run)->outcome && (*run)->phase == RunPhase::rollback);
}

// The rollback that made this boot, recorded only up to the copy of the state directory: the
// restored root has booted, so it is done (its journal says complete), and so is its run.
void finish_rolled_back_run(RunContext& ctx, const BootTrialRecord& trial, BootCheckSummary& s) {
  if (!trial.run_id) return;
  // When the rollback really ended: its journal's last write (the run's rollback phase lasted
  // that long, not until this boot).
  std::optional<std::int64_t> ended_ms;
  if (auto rollbacks = ctx.store.rollbacks_of_run(*trial.run_id); rollbacks && !rollbacks->empty()) {
    const state::RollbackRecord& rb = rollbacks->front();
    if (rb.state == state::RollbackState::running && !rollback_process_alive(rb)) {
      if (auto backend = ctx.snapshots.get()) {
        auto journal = (*backend)->find_rollback(rb.owner());
        if (journal && *journal && (*journal)->state == "complete") {
          struct stat st {};
          if (::stat((*journal)->journal.c_str(), &st) == 0)
            ended_ms = std::int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000;
          auto done = finish_rollback(ctx, **backend, rb);
          s.notes.push_back(done ? "rollback " + std::to_string(rb.id) + " is recorded as done"
                                 : "rollback " + std::to_string(rb.id) + " is not recorded: " +
                                       done.error().to_string() + " (`upgrade-guard recover` records it)");
        }
      }
    }
  }
  auto run = ctx.store.get_run(*trial.run_id);
  if (!run || !*run || (*run)->finished_unix || (*run)->phase != RunPhase::rollback) return;
  auto w = ctx.store.finish_run(*trial.run_id, RunOutcome::rolled_back, kExitRolledBack,
                                "rolled back to " + trial.snapshot_id + "; the restored root booted (trial " +
                                    std::to_string(trial.id) + ")",
                                ended_ms);
  s.notes.push_back(w ? "run " + std::to_string(*trial.run_id) + " is recorded as rolled back"
                      : "run " + std::to_string(*trial.run_id) + " is not recorded as rolled back (" +
                            w.error().to_string() + "): `upgrade-guard recover` records it");
}

void disarm(const base::Root& root, BootCheckSummary& s) {
  if (auto n = disarm_boot_counter(root); !n.empty()) s.notes.push_back(n);
}

// Records how trial `id` ended and, on the running system, leaves the marker that tells
// `boot-check --status` it ended in this boot (a --root check is not this machine's boot).
base::Result<void> settle_trial(state::StateStore& store, const std::string& run_dir, bool live, std::int64_t id,
                                BootTrialState st, const std::string& message) {
  auto w = store.set_boot_trial_state(id, st, message);
  if (w && live) write_settled_marker(run_dir, id);
  return w;
}

void bless(RunContext& ctx, const BootTrialRecord& trial, BootCheckSummary& s) {
  s.message = "trial " + std::to_string(trial.id) + " blessed: the boot passed its checks";
  s.exit_code = kExitOk;
  if (auto w = settle_trial(ctx.store, ctx.paths.run_dir, ctx.live, trial.id, BootTrialState::blessed, s.message); !w)
    s.notes.push_back("the blessing was not recorded (" + w.error().to_string() +
                      "), ignoring: the trial stays pending and the next boot checks it again");
  if (!trial.snapshot_id.empty()) {
    auto good = ctx.store.set_snapshot_known_good(trial.snapshot_id, true);
    s.notes.push_back(good ? "snapshot " + trial.snapshot_id + " is the last known-good"
                           : "snapshot " + trial.snapshot_id + " is not marked known-good: " + good.error().to_string());
  }
  finish_rolled_back_run(ctx, trial, s);
  disarm(ctx.root, s);
}

void close_gate(RunContext& ctx, const BootTrialRecord& trial, const std::string& why, BootCheckSummary& s) {
  std::string problems = s.problems.empty() ? std::string("failed") : join(s.problems);
  s.message = "trial " + std::to_string(trial.id) + " failed (" + problems + "): " + why + "; reboot gate closed";
  s.exit_code = kExitChecksFailed;
  state::GateState gate;
  gate.closed = true;
  gate.reason = "trial boot " + std::to_string(trial.id) + " failed: " + problems;
  gate.run_id = trial.run_id;
  gate.changed_by = "boot-check (trial " + std::to_string(trial.id) + ")";
  std::optional<gate::Enforcement> enforce;
  if (ctx.live) enforce.emplace(gate::Enforcement{ctx.root, ctx.gate_bus});
  s.notes.push_back(gate::change_gate(ctx.store, ctx.paths.state_dir, gate, enforce).summary());
  if (auto w = settle_trial(ctx.store, ctx.paths.run_dir, ctx.live, trial.id, BootTrialState::failed, s.message); !w)
    s.notes.push_back("the failed trial was not recorded (" + w.error().to_string() +
                      "), ignoring: the gate is closed, and the next boot does not roll back (attempt 2)");
  finish_rolled_back_run(ctx, trial, s);
  disarm(ctx.root, s);
}

// Rolls back to the trial's snapshot (the restored root starts at the next boot) and reboots.
// False when no rollback happened (the caller closes the gate instead).
bool roll_back(RunContext& ctx, BootBus& bus, const BootTrialRecord& trial, const BootCheckOptions& o,
               BootCheckSummary& s) {
  auto backend = ctx.snapshots.get();
  if (!backend) {
    s.notes.push_back("no rollback possible: " + backend.error().to_string());
    return false;
  }
  std::string problems = join(s.problems);
  // Recorded before the rollback copies the state directory into the restored root: the
  // restored root must not find this trial pending. Unrecorded, no rollback (no loop).
  s.message = "trial " + std::to_string(trial.id) + " failed (" + problems + "): rolled back to " + trial.snapshot_id;
  if (auto w = settle_trial(ctx.store, ctx.paths.run_dir, ctx.live, trial.id, BootTrialState::rolled_back, s.message);
      !w) {
    s.notes.push_back("no rollback: the trial's end could not be recorded first (" + w.error().to_string() + ")");
    return false;
  }
  disarm(ctx.root, s);
  auto rolled = guard::roll_back(ctx, **backend, trial.run_id, trial.snapshot_id);
  if (!rolled) {
    s.notes.push_back("the rollback to " + trial.snapshot_id + " failed: " + rolled.error().to_string());
    return false;
  }
  s.notes.insert(s.notes.end(), rolled->result.notes.begin(), rolled->result.notes.end());
  s.notes.insert(s.notes.end(), rolled->notes.begin(), rolled->notes.end());
  s.notes.push_back("the broken root is kept as " + rolled->result.broken);
  s.exit_code = kExitRolledBack;
  // The run passed its checks when it ran; what became of it is this rollback.
  if (trial.run_id) {
    if (auto w = ctx.store.amend_run(*trial.run_id, RunOutcome::rolled_back, kExitRolledBack, s.message); !w)
      s.notes.push_back("run " + std::to_string(*trial.run_id) + " is not recorded as rolled back: " +
                        w.error().to_string());
  }
  if (!rolled->result.takes_effect_now && o.reboot) {
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

std::optional<BootCheckSummary> fallback_boot_summary(std::string_view cmdline, const std::string& running_from) {
  auto trial = fallback_trial_from_cmdline(cmdline);
  if (!trial || !snapshots::in_snapshot_store(running_from) || running_from.find('/') == std::string::npos)
    return std::nullopt;
  std::string snapshot = running_from.substr(running_from.find('/') + 1);
  BootCheckSummary s;
  s.message = "fallback boot: the boot of trial " + std::to_string(*trial) +
              " never reached boot-check (a kernel panic or a hang before userspace), so GRUB booted the "
              "pre-upgrade snapshot " + snapshot + " once, read-only; the next boot starts the upgraded root again";
  s.notes.push_back("to stay on the pre-upgrade system: `upgrade-guard rollback --to " + snapshot +
                    "` (it restores the root subvolume that fstab and GRUB pin), then reboot");
  s.exit_code = kExitChecksFailed;
  base::log(base::LogLevel::warning, kBootCheckMessageId, s.message, {{"UG_BOOT_TRIAL", std::to_string(*trial)}});
  return s;
}

namespace {

// The state database of the pinned root, e.g. "/run/upgrade-guard/top/@rootfs/var/lib/upgrade-guard",
// opened for writing; an error says why there is none. The directory must be the one the
// pinned root itself resolves (no symlink leads out of it).
base::Result<state::StateStore> open_carried_store(const std::string& pinned, const std::string& state_dir) {
  const std::string dir = pinned + base::normalize_path(state_dir);
  auto root = base::Root::open(pinned);
  if (!root) return base::fail(root.error());
  auto in_root = root->open(state_dir, O_PATH | O_DIRECTORY);
  if (!in_root && in_root.error().err == ENOENT)
    return base::fail_errno("openat2", dir, ENOENT, "the pinned root has no state directory: nothing recorded a trial there");
  if (!in_root) return base::fail(in_root.error());
  struct stat a {}, b {};
  if (::fstat(in_root->get(), &a) != 0 || ::stat(dir.c_str(), &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
    return base::fail("stat", dir, "the state directory of the pinned root is reached through a symlink: not used");
  if (::stat(state::StateStore::database_path(dir).c_str(), &b) != 0)
    return base::fail_errno("stat", state::StateStore::database_path(dir), errno,
                            "the pinned root has no state database: nothing recorded a trial there");
  return state::StateStore::open(dir);
}

}  // namespace

std::optional<BootCheckSummary> recover_fallback_boot(std::string_view cmdline, const std::string& running_from,
                                                      FallbackEnv& env, BootBus& bus, const BootCheckOptions& o) {
  auto found = fallback_boot_summary(cmdline, running_from);
  if (!found) return std::nullopt;
  BootCheckSummary s = std::move(*found);
  const std::int64_t trial_id = *fallback_trial_from_cmdline(cmdline);
  const std::string snapshot = running_from.substr(running_from.find('/') + 1);
  // Nothing done automatically: the summary's manual way stays, after the reason.
  auto stay = [&s](const std::string& why) {
    s.notes.insert(s.notes.begin(), why);
    s.action = TrialAction::close_gate;
    s.exit_code = kExitChecksFailed;
    return s;
  };
  auto backend = env.snapshots.get();
  if (!backend) return stay("no automatic recovery: " + backend.error().to_string());
  auto pinned = (*backend)->pinned_root_path();
  if (!pinned || !*pinned)
    return stay("no automatic recovery: the root the boot configuration pins cannot be reached (" +
                (pinned ? std::string("the backend cannot tell") : pinned.error().to_string()) + ")");
  auto store = open_carried_store(**pinned, env.paths.state_dir);
  if (!store) return stay("no automatic recovery: " + store.error().to_string());
  auto lock = GuardLock::acquire(env.paths.run_dir);
  if (!lock) return stay("no automatic recovery: " + lock.error().to_string());
  auto trial = store->get_boot_trial(trial_id);
  if (!trial || !*trial)
    return stay("no automatic recovery: trial " + std::to_string(trial_id) + " is not recorded in " + **pinned +
                (trial ? std::string() : " (" + trial.error().to_string() + ")"));
  BootTrialRecord t = **trial;
  s.trial = t;
  if (t.state != BootTrialState::pending)
    return stay("no automatic recovery: trial " + std::to_string(t.id) + " is " + state::to_string(t.state) +
                " already (a second fallback boot of it): no second rollback, no loop");
  if (t.snapshot_id != snapshot)
    return stay("no automatic recovery: trial " + std::to_string(t.id) + " would roll back to " + t.snapshot_id +
                ", but this boot runs from " + snapshot);

  // The same rules as a trial that fails in userspace; the boot never got that far.
  s.problems.push_back("the trial boot never reached boot-check; GRUB booted the pre-upgrade snapshot instead");
  TrialFacts facts;
  facts.healthy = false;
  facts.policy_rollback = env.policy.boot_check.rollback;
  facts.cmdline_allows_rollback = cmdline_allows_rollback(cmdline);
  facts.attempts = 1;  // the failed boot never counted itself
  facts.upgrade_already_rolled_back = upgrade_rolled_back(*store, t);
  facts.can_roll_back = true;
  TrialDecision decision = decide_trial(facts);
  if (decision.action != TrialAction::roll_back) {
    std::string why = "fallback boot: " + decision.why;
    if (auto w = settle_trial(*store, env.paths.run_dir, /*live=*/true, t.id, BootTrialState::failed,
                              s.problems.front() + "; " + why);
        !w)
      s.notes.push_back("the failed trial was not recorded: " + w.error().to_string());
    return stay("no automatic recovery: " + decision.why);
  }

  // The running system, with the state of the pinned root (the live root is the snapshot).
  auto context_with = [&env](state::StateStore& db) {
    return RunContext{.policy = env.policy,
                      .root = env.root,
                      .root_key = "/",
                      .live = true,
                      .store = db,
                      .runner = env.runner,
                      .snapshots = env.snapshots,
                      .gate_bus = nullptr,
                      .paths = env.paths,
                      .pid = ::getpid(),
                      .hostname = env.hostname,
                      .boot_id = env.boot_id,
                      .progress = {}};
  };
  RunContext ctx = context_with(*store);
  BootCheckOptions no_reboot = o;
  no_reboot.reboot = false;  // the rollback's end is recorded in the restored root first
  if (!roll_back(ctx, bus, t, no_reboot, s)) {
    s.action = TrialAction::close_gate;
    s.exit_code = kExitChecksFailed;
    s.message = "fallback boot: the rollback of trial " + std::to_string(t.id) + " to " + snapshot +
                " failed; the next boot starts the upgraded root again";
    return s;
  }
  s.action = TrialAction::roll_back;
  s.message = "fallback boot: trial " + std::to_string(t.id) + " never reached boot-check; the root is rolled back to " +
              snapshot + ", the pre-upgrade system, for good";
  // The database the rollback wrote into went with the replaced root (now read-only); the
  // restored root carries a copy made before the exchange. Its end is recorded there.
  auto rollbacks = store->rollbacks_of_run(t.run_id.value_or(0));
  std::optional<state::RollbackRecord> record;
  if (rollbacks && !rollbacks->empty()) record = rollbacks->front();
  // The same path now shows the restored tree; opened with the same checks.
  auto restored = open_carried_store(**pinned, env.paths.state_dir);
  if (record && restored) {
    RunContext in_restored = context_with(*restored);
    auto copy = restored->get_rollback(record->id);
    if (copy && *copy && (*copy)->state == state::RollbackState::running) {
      auto done = finish_rollback(in_restored, **backend, **copy);
      if (t.run_id) (void)restored->amend_run(*t.run_id, RunOutcome::rolled_back, kExitRolledBack, s.message);
      std::erase_if(s.notes, [](const std::string& n) { return n.starts_with(kRollbackUnrecordedNote); });
      s.notes.push_back(done ? "rollback " + std::to_string(record->id) + " is recorded in the restored root"
                             : "rollback " + std::to_string(record->id) + " is not recorded in the restored root (" +
                                   done.error().to_string() + "): its next boot records it");
    }
  }
  base::log(base::LogLevel::warning, kBootCheckMessageId, s.message + "; rebooting into the restored root",
            {{"UG_BOOT_TRIAL", std::to_string(t.id)}, {"UG_ACTION", "fallback-roll-back"}});
  if (o.reboot) {
    auto r = bus.reboot();
    s.notes.push_back(r ? "rebooting into the restored root" : "the reboot failed: " + r.error().to_string());
  }
  return s;
}

BootCheckSummary run_boot_check(RunContext& ctx, BootBus& bus, const BootCheckOptions& o) {
  BootCheckSummary s;
  const policies::Policy& policy = ctx.policy;
  auto fail = [&](const std::string& why) {
    s.message = why;
    s.exit_code = kExitEnvironment;
    base::log(base::LogLevel::error, kBootCheckMessageId, why);
    return s;
  };
  auto pending = ctx.store.pending_boot_trial();
  if (!pending) return fail(pending.error().to_string());
  if (!*pending) {
    s.message = "no boot trial pending";
    return s;
  }
  auto lock = GuardLock::acquire(ctx.paths.run_dir);
  if (!lock) return fail(lock.error().to_string());
  BootTrialRecord trial = **pending;
  // The attempt is counted first: a check that dies half-way never rolls back on the next boot.
  auto attempts = ctx.store.record_boot_attempt(trial.id);
  if (!attempts) s.notes.push_back("the boot attempt was not counted (" + attempts.error().to_string() +
                                   "): no automatic rollback this time (no reboot loop)");
  trial.attempts = attempts ? *attempts : std::max(trial.attempts + 1, 2);
  s.trial = trial;

  auto start = steady_clock::now();
  if (auto unsettled = wait_for_settle(bus, policy, o)) s.problems.push_back(*unsettled);
  s.settle_time = since(start);
  auto checks_start = steady_clock::now();
  check_units(bus, policy, o, s.problems);
  s.report = check_root(ctx, trial, s);
  s.check_time = since(checks_start);

  auto host = base::Root::open("/");
  auto cmdline_text = host ? host->read_file(o.cmdline_path, 1 << 20) : base::Result<std::string>();
  if (auto expected = next_kernel(ctx.paths.state_dir)) {
    auto running = host ? host->read_file(o.osrelease_path, 4096) : base::Result<std::string>();
    std::string now = running ? std::string(base::trim(*running)) : std::string("?");
    s.notes.push_back(now == *expected ? "the trial boot runs the new kernel " + *expected
                                       : "the trial boot runs kernel " + now + ", not " + *expected +
                                             " the upgrade installed: is GRUB's default entry the new kernel?");
    forget_next_kernel(ctx.paths.state_dir);
  }
  TrialFacts facts;
  facts.healthy = s.problems.empty();
  facts.policy_rollback = policy.boot_check.rollback;
  facts.cmdline_allows_rollback = !cmdline_text || cmdline_allows_rollback(*cmdline_text);
  facts.attempts = trial.attempts;
  facts.upgrade_already_rolled_back = upgrade_rolled_back(ctx.store, trial);
  facts.can_roll_back = !trial.snapshot_id.empty();
  TrialDecision decision = decide_trial(facts);
  s.action = decision.action;
  if (decision.action == TrialAction::bless) {
    bless(ctx, trial, s);
  } else if (decision.action == TrialAction::roll_back) {
    if (!roll_back(ctx, bus, trial, o, s)) {
      s.action = TrialAction::close_gate;
      close_gate(ctx, trial, "the rollback was not possible", s);
    }
  } else {
    close_gate(ctx, trial, decision.why, s);
  }
  base::log(s.exit_code == kExitOk ? base::LogLevel::info : base::LogLevel::warning, kBootCheckMessageId, s.message,
            {{"UG_BOOT_TRIAL", std::to_string(trial.id)},
             {"UG_RUN_ID", trial.run_id ? std::to_string(*trial.run_id) : ""},
             {"UG_ACTION", to_string(*s.action)},
             {"UG_SETTLE_MS", std::to_string(s.settle_time.count())},
             {"UG_CHECK_MS", std::to_string(s.check_time.count())}});
  return s;
}

}  // namespace guard::boot
