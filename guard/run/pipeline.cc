// The guarded upgrade, apt's hooks, recover and the manual rollback, as the steps of
// guard/run/steps.h in order. Each function reads top to bottom as what happens.
#include "guard/run/pipeline.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <fmt/format.h>

#include "base/strings.h"
#include "guard/core/liveness.h"
#include "guard/core/locks.h"
#include "guard/core/retention.h"
#include "guard/core/rollback.h"
#include "guard/gate/enforcement.h"
#include "guard/gate/gate.h"
#include "guard/run/steps.h"

namespace guard::run {

using state::RunKind;
using state::RunOutcome;
using state::RunPhase;

namespace {

// The command status of a run taken by apt's hooks.
constexpr std::string_view kHookStatus = "hook: ";

std::string apt_name(const AptProcess& apt) {
  return apt.command.empty() ? "apt (pid " + std::to_string(apt.pid) + ")"
                             : fmt::format("`{}` (pid {})", base::join(apt.command, " "), apt.pid);
}

RunSummary refused(RunSummary s, const std::string& why, int exit_code = kExitEnvironment) {
  s.outcome = RunOutcome::refused;
  s.exit_code = exit_code;
  s.message = why;
  return s;
}

std::string root_suffix(const std::string& root) { return root == "/" ? "" : " (root " + root + ")"; }

}  // namespace

// ---- upgrade-guard run -- CMD -------------------------------------------------------------

RunSummary RunPipeline::run(const std::vector<std::string>& argv) {
  RunSummary s;
  s.command = argv;
  // One guard at a time.
  auto lock = GuardLock::acquire(ctx_.paths.run_dir);
  if (!lock) return refused(s, lock.error().to_string());
  // Nothing starts on top of unfinished work: a half-upgraded root, a rollback half done.
  if (auto work = open_work(ctx_.store); !work.empty())
    return refused(s, work.front().text + "; a new run is refused until then");

  Run run(ctx_, s, Mode::command);
  // The record first: from here on a dead guard leaves a run that recover finds.
  if (!run.begin(RunKind::run, ctx_.pid)) return s;
  // Refuse what cannot be guarded: dpkg already interrupted, a read-only root, too little space.
  if (!run.preflight()) return s;
  // The checks before the command: only what is new after it counts against it.
  if (!run.step(RunPhase::baseline, [&] { return run.take_baseline(); })) return s;
  // The snapshot a regression rolls back to, recorded before the command starts.
  if (!run.step(RunPhase::snapshot, [&] { return run.take_snapshot(); })) return s;
  // The command, its output teed to run-<id>.log.
  if (!run.step(RunPhase::command, [&] { return run.run_command(argv); })) return s;
  // What changed, the post-checks, the verdict, and keep, roll back or close the gate.
  run.judge(ctx_.policy.on_fail);
  return s;
}

// ---- apt's hooks --------------------------------------------------------------------------

RunSummary RunPipeline::hook_pre() {
  RunSummary s;
  s.exit_code = kExitOk;
  const bool required = ctx_.policy.snapshot.required;
  // Without a snapshot the policy requires, or with a rollback unfinished, apt must not go on;
  // any other trouble of the guard's own only costs this apt run its guard.
  auto unguarded = [&](const std::string& why, bool stop_apt = false) -> RunSummary& {
    s.outcome = RunOutcome::refused;
    s.exit_code = stop_apt || required ? kExitChecksFailed : kExitOk;
    s.message = (stop_apt || required ? "refusing to let dpkg run: " : "this apt run is NOT guarded: ") + why;
    return s;
  };
  auto lock = GuardLock::acquire(ctx_.paths.run_dir, ctx_.policy.preflight.lock_timeout,
                                 [&](const std::string& why) { ctx_.say("waiting: " + why); });
  if (!lock) return unguarded(lock.error().to_string());
  auto apt = find_apt_process(ctx_.root);
  if (!apt) return unguarded(apt.error().to_string());

  // A later dpkg invocation of the same apt process continues its run.
  if (auto session = read_hook_session(ctx_.paths.run_dir, ctx_.root_key, *apt)) {
    auto run = ctx_.store.get_run(session->run_id);
    if (!run) return unguarded(run.error().to_string());
    if (*run) {
      const state::RunRecord& r = **run;
      s.run_id = r.id;
      s.outcome = RunOutcome::passed;
      if (!r.finished_unix) {
        s.message = fmt::format("run {} continues", r.id);
        return s;
      }
      if (r.outcome == RunOutcome::passed || r.outcome == RunOutcome::gated || r.outcome == RunOutcome::warned) {
        if (auto reopened = ctx_.store.reopen_run(r.id, apt->pid); !reopened)
          return unguarded(reopened.error().to_string());
        s.message = fmt::format("run {} continues: {} runs dpkg again", r.id, apt_name(*apt));
        return s;
      }
      s.run_id = 0;  // rolled back, refused...: this dpkg invocation gets a run of its own
    }
  }
  for (const auto& work : open_work(ctx_.store)) {
    if (work.blocks_hook) return unguarded(work.text, /*stop_apt=*/true);
    s.notes.push_back("warning: " + work.text);
  }

  s.command = apt->command.empty() ? std::vector<std::string>{"apt"} : apt->command;
  Run run(ctx_, s, Mode::hook);
  if (!run.begin(RunKind::hook, apt->pid)) return unguarded(s.message);
  if (!run.preflight()) return unguarded(s.message);
  if (!run.step(RunPhase::baseline, [&] { return run.take_baseline(); })) return unguarded(s.message);
  if (!run.step(RunPhase::snapshot, [&] { return run.take_snapshot(); })) return unguarded(s.message);
  const std::string status = std::string(kHookStatus) + "dpkg running under apt pid " + std::to_string(apt->pid);
  if (!run.step(RunPhase::command, [&] { return run.record_hook_command(status); })) return unguarded(s.message);
  if (auto w = write_hook_session(ctx_.paths.run_dir, HookSession{*apt, s.run_id, ctx_.root_key}); !w)
    s.notes.push_back("warning: " + w.error().to_string());
  s.outcome = RunOutcome::passed;
  s.exit_code = kExitOk;
  s.message = fmt::format("run {}: {}; dpkg's changes are checked when it finishes", s.run_id,
                          s.snapshot ? "snapshot " + *s.snapshot + " taken" : "no snapshot");
  return s;
}

RunSummary RunPipeline::hook_post() {
  RunSummary s;
  s.exit_code = kExitOk;
  // The guard's own trouble never fails apt: the run stays unfinished, and once apt is gone
  // every invocation reports it until `upgrade-guard recover` checks it.
  auto unchecked = [&](const std::string& why) -> RunSummary& {
    s.outcome = RunOutcome::failed;
    s.exit_code = kExitOk;
    s.message = "dpkg's changes were NOT checked: " + why;
    return s;
  };
  auto lock = GuardLock::acquire(ctx_.paths.run_dir, ctx_.policy.preflight.lock_timeout,
                                 [&](const std::string& why) { ctx_.say("waiting: " + why); });
  if (!lock) return unchecked(lock.error().to_string() + "; run `upgrade-guard recover` once apt has finished");
  auto apt = find_apt_process(ctx_.root);
  if (!apt) return unchecked(apt.error().to_string());
  auto session = read_hook_session(ctx_.paths.run_dir, ctx_.root_key, *apt);
  if (!session) {
    // The pre hook took no run (it said why, or the package was installed by this very apt
    // run and had no pre hook yet): nothing to check, nothing to say.
    s.outcome = RunOutcome::passed;
    s.message = "no guarded run for " + apt_name(*apt) +
                " (the pre-invoke hook took none): what dpkg changed was NOT checked";
    return s;
  }
  auto record = ctx_.store.get_run(session->run_id);
  if (!record) return unchecked(record.error().to_string());
  if (!*record) return unchecked("run " + std::to_string(session->run_id) + " is not in the state database");
  const state::RunRecord& r = **record;
  s.run_id = r.id;
  s.command = r.command;
  s.snapshot = r.snapshot_id;
  if (r.finished_unix) {
    s.message = fmt::format("run {} was already checked ({})", r.id, r.message);
    return s;
  }
  Run run(ctx_, s, Mode::hook);
  if (!run.resume(r)) return s;
  const std::string status = std::string(kHookStatus) + "dpkg finished under apt pid " + std::to_string(apt->pid);
  if (!run.record_hook_command(status)) return unchecked(s.message);
  run.judge(ctx_.policy.hook.on_fail);
  if (s.outcome == RunOutcome::failed) s.exit_code = kExitOk;  // the guard's trouble, not dpkg's
  else if (s.exit_code != kExitOk) s.exit_code = kExitChecksFailed;
  return s;
}

RunSummary RunPipeline::hook_release() {
  RunSummary s;
  s.exit_code = kExitOk;
  s.outcome = RunOutcome::passed;
  std::vector<std::string> said;
  if (auto apt = find_apt_process(ctx_.root)) {
    if (auto session = read_hook_session(ctx_.paths.run_dir, ctx_.root_key, *apt)) {
      s.run_id = session->run_id;
      auto run = ctx_.store.get_run(session->run_id);
      if (run && *run && !(*run)->finished_unix) {
        auto w = ctx_.store.mark_interrupted(session->run_id,
                                             "upgrade-guard was removed by this apt run: what dpkg changed was not checked");
        said.push_back(w ? fmt::format("run {} ends unchecked: upgrade-guard is being removed", session->run_id)
                         : "run " + std::to_string(session->run_id) + " could not be ended: " + w.error().to_string());
      }
      if (::unlink((ctx_.paths.run_dir + "/hook-session").c_str()) != 0 && errno != ENOENT)
        said.push_back("cannot remove " + ctx_.paths.run_dir + "/hook-session, ignoring: the next apt run is another process");
    }
  }
  if (ctx_.live) {
    auto unblocked = gate::remove_reboot_block(ctx_.root, ctx_.gate_bus);
    said.push_back(unblocked ? "reboot block: " + unblocked->note
                             : "the reboot block was not removed: " + unblocked.error().to_string());
  }
  auto gate = ctx_.store.get_gate();
  auto file = gate::read_gate_file(gate::gate_file_path(ctx_.paths.state_dir));
  const bool closed = !gate || !file || gate::effective_gate(*gate, *file).closed;
  s.notes = said;
  s.message = closed ? "the reboot gate is CLOSED (`upgrade-guard gate status` said why before the removal): removing "
                       "upgrade-guard does not make a reboot safe"
                     : "released";
  return s;
}

// ---- recover ------------------------------------------------------------------------------

namespace {

// The end of run `run` once its rollback is done: recorded (an unfinished run), or amended (a
// run that ended gated because its rollback failed, now done by recover); the gate it closed
// opens, since the broken root is gone or goes at the next boot.
void record_rolled_back_run(RunContext& ctx, const state::RunRecord& run, const std::string& snapshot_id,
                            RunSummary& s) {
  const bool manual = run.kind == RunKind::rollback;
  const int code = manual ? kExitOk : kExitRolledBack;
  if (!run.finished_unix) {
    std::string message = "rolled back to " + snapshot_id + " (recorded by `upgrade-guard recover`)";
    if (auto w = ctx.store.finish_run(run.id, RunOutcome::rolled_back, code, message); !w) {
      s.notes.push_back("recording the end of run " + std::to_string(run.id) + " failed: " + w.error().to_string());
      return;
    }
  } else if (run.outcome == RunOutcome::gated) {
    std::string message = "rolled back to " + snapshot_id + " by `upgrade-guard recover` after: " + run.message;
    if (auto w = ctx.store.amend_run(run.id, RunOutcome::rolled_back, code, message); !w) {
      s.notes.push_back("recording run " + std::to_string(run.id) + " as rolled back failed: " + w.error().to_string());
      return;
    }
  } else {
    return;
  }
  // The gate the run closed opens: the broken root is gone (or goes at the next boot).
  auto closed = gate::closed_by_run(ctx.store, ctx.paths.state_dir, run.id);
  if (closed && *closed) {
    state::GateState open;
    open.reason = "run " + std::to_string(run.id) + " was rolled back by recover";
    open.run_id = run.id;
    open.changed_by = "recover";
    std::optional<gate::Enforcement> enforce;
    if (ctx.live) enforce.emplace(gate::Enforcement{ctx.root, ctx.gate_bus});
    s.notes.push_back(gate::change_gate(ctx.store, ctx.paths.state_dir, open, enforce).summary());
  }
}

}  // namespace

std::vector<RunSummary> RunPipeline::recover(RecoverMode mode) {
  std::vector<RunSummary> out;
  auto fail = [&](const std::string& why) {
    RunSummary s;
    s.message = why;
    s.exit_code = kExitEnvironment;
    out.push_back(s);
    return out;
  };
  auto lock = GuardLock::acquire(ctx_.paths.run_dir);
  if (!lock) return fail(lock.error().to_string());

  // 1. Rollbacks recorded as running whose process is gone, or failed: completed (or given up).
  auto rollbacks = ctx_.store.open_rollbacks(ctx_.root_key);
  if (!rollbacks) return fail("cannot read the recorded rollbacks: " + rollbacks.error().to_string());
  for (const auto& rb : *rollbacks) {
    if (rollback_process_alive(rb)) continue;
    RunSummary s;
    s.run_id = rb.run_id.value_or(0);
    s.snapshot = rb.snapshot_id;
    auto backend = ctx_.snapshots.get();
    auto run = rb.run_id ? ctx_.store.get_run(*rb.run_id) : base::Result<std::optional<state::RunRecord>>();
    if (run && *run) s.command = (*run)->command;
    if (!backend) {
      s.outcome = RunOutcome::failed;
      s.message = "rollback " + std::to_string(rb.id) + " to " + rb.snapshot_id +
                  " cannot be finished: no snapshot backend: " + backend.error().to_string();
      out.push_back(s);
      continue;
    }
    if (mode == RecoverMode::abandon) {
      auto gave_up = abandon_rollback(ctx_, **backend, rb);
      s.outcome = gave_up ? RunOutcome::interrupted : RunOutcome::failed;
      s.exit_code = gave_up ? kExitOk : kExitEnvironment;
      s.message = gave_up ? *gave_up : gave_up.error().to_string();
      if (gave_up && run && *run && !(*run)->finished_unix) {
        if (auto w = ctx_.store.mark_interrupted((*run)->id, "its rollback was abandoned"); !w)
          s.notes.push_back(w.error().to_string());
      }
      out.push_back(s);
      continue;
    }
    const bool was_failed = rb.state == state::RollbackState::failed;
    auto done = finish_rollback(ctx_, **backend, rb);
    if (!done) {
      s.outcome = RunOutcome::failed;
      s.message = "the rollback to " + rb.snapshot_id + " could not be finished: " + done.error().to_string();
      s.notes.push_back("fix the cause and run `upgrade-guard recover` again, or keep the root as it is with "
                        "`upgrade-guard recover --abandon`");
      if (run && *run && !(*run)->finished_unix) {
        // Its run ends gated: the root is not the snapshot, and the gate says so.
        Run r(ctx_, s, Mode::command);
        if (r.resume(**run)) {
          RunDecision gated;
          gated.message = s.message + "; reboot gate closed";
          r.close_gate(gated, RunOutcome::gated, kExitChecksFailed);
        }
      }
      s.exit_code = kExitEnvironment;
      out.push_back(s);
      continue;
    }
    s.rollback = done->result;
    s.notes.insert(s.notes.end(), done->result.notes.begin(), done->result.notes.end());
    s.notes.insert(s.notes.end(), done->notes.begin(), done->notes.end());
    if (run && *run) record_rolled_back_run(ctx_, **run, rb.snapshot_id, s);
    const bool manual = run && *run && (*run)->kind == RunKind::rollback;
    s.outcome = RunOutcome::rolled_back;
    s.exit_code = manual || !rb.run_id ? kExitOk : kExitRolledBack;
    s.message = fmt::format("the {} rollback to {} is done ({}); the replaced root is kept as {}",
                            was_failed ? "failed" : "interrupted", rb.snapshot_id, done->result.method,
                            done->result.broken);
    out.push_back(s);
  }

  // 2. Runs whose process is gone.
  auto runs = ctx_.store.unfinished_runs();
  if (!runs) return fail("the state database holds a run this upgrade-guard cannot read: " + runs.error().to_string());
  for (const auto& record : *runs) {
    if (run_process_alive(record)) continue;
    RunSummary s;
    if (record.root != ctx_.root_key) {
      struct stat st {};
      if (::stat(record.root.c_str(), &st) != 0) {
        s.run_id = record.id;
        s.outcome = RunOutcome::interrupted;
        s.exit_code = kExitOk;
        s.message = "its root " + record.root + " is gone: nothing to finish";
        if (auto w = ctx_.store.mark_interrupted(record.id, "its root is gone"); !w) s.message += "; " + w.error().to_string();
        out.push_back(s);
        continue;
      }
      s.run_id = record.id;
      s.exit_code = kExitEnvironment;
      s.outcome = RunOutcome::interrupted;
      s.message = fmt::format("run {} guards {}: finish it with `upgrade-guard --root {} recover`", record.id,
                              record.root, record.root);
      out.push_back(s);
      continue;
    }
    out.push_back(recover_run(record));
  }
  return out;
}

RunSummary RunPipeline::recover_run(const state::RunRecord& record) {
  RunSummary s;
  Run run(ctx_, s, Mode::command);
  if (!run.resume(record)) return s;
  s.notes.push_back(fmt::format("run {} was interrupted during {}", record.id, to_string(record.phase)));
  auto rollbacks = ctx_.store.rollbacks_of_run(record.id);
  if (!rollbacks) {
    s.exit_code = kExitEnvironment;
    s.message = "cannot read the rollbacks of run " + std::to_string(record.id) + ": " + rollbacks.error().to_string();
    return s;
  }
  // Killed after its rollback was done and recorded, before its own end was.
  if (!rollbacks->empty() && rollbacks->front().state == state::RollbackState::done) {
    const auto& rb = rollbacks->front();
    record_rolled_back_run(ctx_, record, rb.snapshot_id, s);
    s.outcome = RunOutcome::rolled_back;
    s.exit_code = record.kind == RunKind::rollback ? kExitOk : kExitRolledBack;
    s.message = "rolled back to " + rb.snapshot_id + " before the guard died; the replaced root is kept as " + rb.broken;
    return s;
  }
  if (record.kind == RunKind::rollback || record.phase < RunPhase::command) {
    if (record.kind != RunKind::rollback) recover_snapshot(record, s);
    std::string why = record.kind == RunKind::rollback
                          ? "the rollback never started: nothing was changed; run `upgrade-guard rollback` again"
                          : "the command never started: nothing to finish";
    if (auto w = ctx_.store.mark_interrupted(record.id, why); !w) {
      s.exit_code = kExitEnvironment;
      s.message = w.error().to_string();
      return s;
    }
    s.outcome = RunOutcome::interrupted;
    s.exit_code = kExitOk;
    s.message = why;
    return s;
  }
  // Wait for a package manager the dead guard left running before judging its work.
  if (auto quiet = wait_for_dpkg_locks(ctx_.root, ctx_.policy.preflight.lock_timeout, [&](int pid, const std::string& p) {
        ctx_.say(fmt::format("waiting for the package manager (pid {}) to release {}", pid, p));
      });
      !quiet) {
    s.exit_code = kExitEnvironment;
    s.message = "not judged yet: " + quiet.error().to_string();
    return s;
  }
  run.judge(record.kind == RunKind::hook ? ctx_.policy.hook.on_fail : ctx_.policy.on_fail);
  return s;
}

// A run killed in its snapshot phase may have left a snapshot nothing records: a whole one is
// recorded (listed, pruned in time), an incomplete one removed.
void RunPipeline::recover_snapshot(const state::RunRecord& record, RunSummary& s) {
  if (record.phase != RunPhase::snapshot || record.snapshot_id) return;
  auto backend = ctx_.snapshots.get();
  if (!backend) return;
  auto all = (*backend)->list();
  if (!all) {
    s.notes.push_back("the snapshots could not be listed to find one run " + std::to_string(record.id) +
                      " may have left: " + all.error().to_string());
    return;
  }
  for (const auto& snap : *all) {
    auto owner = snap.metadata.find("run");
    if (owner == snap.metadata.end() || owner->second != std::to_string(record.id)) continue;
    if (!snap.complete) {
      auto removed = (*backend)->remove(snap.id);
      s.notes.push_back(removed ? "removed the incomplete snapshot " + snap.id + " it left"
                                : "the incomplete snapshot " + snap.id + " it left could not be removed: " +
                                      removed.error().to_string());
      continue;
    }
    const state::SnapshotRecord rec = snapshot_record(snap, ctx_.root_key, record.id);
    auto w = ctx_.store.transaction([&]() -> base::Result<void> {
      if (auto r = ctx_.store.record_snapshot(rec); !r) return r;
      return ctx_.store.set_run_snapshot(record.id, snap.id);
    });
    s.notes.push_back(w ? "recorded the snapshot " + snap.id + " it took (pruned in time like any other)"
                        : "the snapshot " + snap.id + " it took could not be recorded: " + w.error().to_string());
  }
}

// ---- upgrade-guard rollback --to ID -------------------------------------------------------

RunSummary RunPipeline::roll_back_to(const std::string& snapshot_id) {
  RunSummary s;
  s.command = {"upgrade-guard", "rollback", "--to", snapshot_id};
  s.snapshot = snapshot_id;
  auto lock = GuardLock::acquire(ctx_.paths.run_dir);
  if (!lock) return refused(s, lock.error().to_string());
  if (auto work = open_work(ctx_.store); !work.empty())
    return refused(s, work.front().text + "; finish that first (it may roll back itself)");
  auto backend = ctx_.snapshots.get();
  if (!backend) return refused(s, backend.error().to_string());

  Run run(ctx_, s, Mode::command);
  if (!run.begin(RunKind::rollback, ctx_.pid)) return s;
  if (auto w = ctx_.store.set_run_snapshot(s.run_id, snapshot_id); !w) {
    run.stop_unrecorded(w.error());
    return s;
  }
  if (!run.step(RunPhase::rollback, [] { return true; })) return s;
  auto rolled = roll_back(ctx_, **backend, s.run_id, snapshot_id);
  if (!rolled) {
    bool refusal = snapshots::is_refusal(rolled.error());
    run.finish(RunOutcome::failed, refusal ? kExitEnvironment : kExitChecksFailed,
               "the rollback to " + snapshot_id + " failed: " + rolled.error().to_string());
    if (!refusal)
      s.notes.push_back("`upgrade-guard recover` tries it again once the cause is fixed; `upgrade-guard recover "
                        "--abandon` reverts what it did instead");
    return s;
  }
  s.rollback = rolled->result;
  s.notes.insert(s.notes.end(), rolled->result.notes.begin(), rolled->result.notes.end());
  s.notes.insert(s.notes.end(), rolled->notes.begin(), rolled->notes.end());
  std::string message = "rolled back to " + snapshot_id + " (" + rolled->result.method + ")";
  if (auto w = ctx_.store.finish_run(s.run_id, RunOutcome::rolled_back, kExitOk, message); !w)
    s.notes.push_back("recording the end of the rollback failed (" + w.error().to_string() +
                      "): `upgrade-guard recover` records it; the rollback itself is done");
  s.outcome = RunOutcome::rolled_back;
  s.exit_code = kExitOk;
  s.message = message;
  return s;
}

// ---- what must be finished first ----------------------------------------------------------

std::vector<OpenWork> open_work(const state::StateStore& store) {
  std::vector<OpenWork> out;
  auto rollbacks = store.open_rollbacks();
  if (!rollbacks) {
    out.push_back({"the state database holds a rollback this upgrade-guard cannot read (" +
                       rollbacks.error().to_string() + "): fix or move the database first",
                   true});
    return out;
  }
  std::vector<std::int64_t> covered;
  for (const auto& rb : *rollbacks) {
    if (rollback_process_alive(rb)) continue;
    if (rb.run_id) covered.push_back(*rb.run_id);
    if (rb.state == state::RollbackState::failed) {
      out.push_back({fmt::format("the rollback{} to {}{} failed ({}): fix the cause and run `upgrade-guard recover` "
                                 "to try again, or `upgrade-guard recover --abandon` to keep the root as it is",
                                 rb.run_id ? " of run " + std::to_string(*rb.run_id) : "", rb.snapshot_id,
                                 root_suffix(rb.root), rb.message),
                     true});
    } else {
      out.push_back({fmt::format("the rollback{} to {}{} was interrupted: run `upgrade-guard recover` to complete it",
                                 rb.run_id ? " of run " + std::to_string(*rb.run_id) : "", rb.snapshot_id,
                                 root_suffix(rb.root)),
                     true});
    }
  }
  auto runs = store.unfinished_runs();
  if (!runs) {
    out.push_back({"the state database holds a run this upgrade-guard cannot read (" + runs.error().to_string() +
                       "): no new run starts until it is fixed or the database is moved aside",
                   true});
    return out;
  }
  for (const auto& run : *runs) {
    if (run_process_alive(run)) continue;
    if (std::find(covered.begin(), covered.end(), run.id) != covered.end()) continue;
    if (run.kind == RunKind::rollback) {
      out.push_back({fmt::format("the rollback to {}{} (run {}) was interrupted: run `upgrade-guard recover`",
                                 run.snapshot_id.value_or("?"), root_suffix(run.root), run.id),
                     true});
      continue;
    }
    out.push_back({fmt::format("run {}{} was interrupted during the {} phase: run `upgrade-guard recover`", run.id,
                               root_suffix(run.root), to_string(run.phase)),
                   false, run.phase >= RunPhase::command});
  }
  return out;
}

}  // namespace guard::run
