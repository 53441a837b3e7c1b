#include "guard/core/rollback.h"

#include <sys/stat.h>

#include <algorithm>
#include <fmt/format.h>

#include "base/log.h"
#include "base/root.h"

namespace guard {
namespace {

std::string broken_id(const std::string& broken) {
  auto slash = broken.rfind('/');
  return slash == std::string::npos ? broken : broken.substr(slash + 1);
}

// Records a rollback the backend finished: the record done, the broken root as a snapshot, in
// one transaction. A failure leaves the record running (recover finds the journal
// complete and records it) and says so in a note.
void record_done(RunContext& ctx, snapshots::SnapshotBackend& backend, RollbackOutcome& out) {
  const auto& r = out.result;
  std::string message = fmt::format("rolled back to {} ({})", r.snapshot_id, r.method);
  auto written = ctx.store.transaction([&]() -> base::Result<void> {
    if (auto w = ctx.store.set_rollback_state(out.record.id, state::RollbackState::done, r.journal, r.broken, message);
        !w)
      return w;
    if (r.broken.empty() || r.broken.front() == '<') return {};  // the top level itself stays where it is
    state::SnapshotRecord broken;
    broken.id = broken_id(r.broken);
    broken.backend = backend.name();
    broken.label = "root replaced by the rollback to " + r.snapshot_id;
    broken.location = r.broken;
    broken.root = ctx.root_key;
    broken.created_unix = state::now_unix();
    broken.run_id = out.record.run_id;
    // Not pinned: kept broken roots are pruned by their own count (policy snapshot.keep_broken).
    return ctx.store.record_snapshot(broken);
  });
  if (!written) {
    out.notes.push_back(std::string(kRollbackUnrecordedNote) + " (" + written.error().to_string() +
                        "): `upgrade-guard recover` records it");
    return;
  }
  out.record.state = state::RollbackState::done;
  out.record.journal = r.journal;
  out.record.broken = r.broken;
  out.record.message = message;
  base::log(base::LogLevel::warning, kRollbackMessageId,
            fmt::format("{} rolled back to {}; the replaced root is kept as {}", ctx.root_key, r.snapshot_id, r.broken),
            {{"UG_ROLLBACK_ID", std::to_string(out.record.id)},
             {"UG_RUN_ID", out.record.run_id ? std::to_string(*out.record.run_id) : ""},
             {"UG_BOOT_TRIAL", out.trial_id ? std::to_string(*out.trial_id) : ""}});
}

// Records a rollback the backend could not do; the error is returned to the caller as well.
base::Error record_failed(RunContext& ctx, RollbackOutcome& out, const base::Error& error) {
  std::string message = "the rollback to " + out.record.snapshot_id + " failed: " + error.to_string();
  if (auto w = ctx.store.set_rollback_state(out.record.id, state::RollbackState::failed, "", "", message); !w)
    base::log(base::LogLevel::error, kRollbackMessageId,
              "recording the failed rollback " + std::to_string(out.record.id) + " failed: " + w.error().to_string() +
                  "; it stays recorded as running, which recover treats the same way");
  if (out.trial_id) {
    if (auto w = ctx.store.set_boot_trial_state(*out.trial_id, state::BootTrialState::failed, message); !w)
      base::log(base::LogLevel::error, kRollbackMessageId,
                "recording boot trial " + std::to_string(*out.trial_id) + " failed: " + w.error().to_string() +
                    ", ignoring: boot-check closes the gate on a trial whose rollback is not done");
  }
  base::log(base::LogLevel::error, kRollbackMessageId, message,
            {{"UG_ROLLBACK_ID", std::to_string(out.record.id)},
             {"UG_RUN_ID", out.record.run_id ? std::to_string(*out.record.run_id) : ""}});
  return base::Error{error.what, error.path, error.err, message};
}

// The restored root's first boot is a trial (live root only): recorded before the backend
// copies the state directory into the restored root. A trial already pending for the same
// target (an earlier attempt of this rollback) is reused.
void record_trial(RunContext& ctx, RollbackOutcome& out) {
  if (!ctx.live) return;
  if (auto pending = ctx.store.pending_boot_trial(); pending && *pending &&
                                                     (*pending)->snapshot_id == out.record.snapshot_id &&
                                                     (*pending)->run_id == out.record.run_id) {
    out.trial_id = (*pending)->id;
    return;
  }
  auto trial = ctx.store.create_boot_trial(out.record.run_id, out.record.snapshot_id);
  if (!trial) {
    // The rollback matters more than checking the boot after it.
    out.notes.push_back("the boot into the restored root is not checked: recording its trial failed (" +
                        trial.error().to_string() + "), ignoring");
    return;
  }
  out.trial_id = *trial;
}

}  // namespace

snapshots::RollbackOptions rollback_options(const RunContext& ctx, const state::RollbackRecord& record) {
  snapshots::RollbackOptions options;
  options.preserve = ctx.policy.preserve;
  const std::string& dir = ctx.paths.state_dir;
  if (ctx.live && !dir.empty() && dir.front() == '/' &&
      std::find(options.preserve->begin(), options.preserve->end(), dir) == options.preserve->end())
    options.preserve->push_back(base::normalize_path(dir));
  options.owner = record.owner();
  struct stat st {};
  options.prepare_only =
      ctx.live && ::stat((ctx.paths.run_dir + "/" + kShutdownCompletionFile).c_str(), &st) == 0 && S_ISREG(st.st_mode);
  options.boot_id = ctx.boot_id;
  return options;
}

base::Result<RollbackOutcome> roll_back(RunContext& ctx, snapshots::SnapshotBackend& backend,
                                        std::optional<std::int64_t> run_id, const std::string& snapshot_id) {
  auto id = ctx.store.begin_rollback(run_id, ctx.root_key, snapshot_id, ctx.pid, ctx.boot_id);
  if (!id)
    return base::fail(base::Error{kRollbackUnrecorded, id.error().path, id.error().err,
                                  "nothing was rolled back: the rollback could not be recorded first (" +
                                      id.error().message + ")"});
  RollbackOutcome out;
  out.record.id = *id;
  out.record.run_id = run_id;
  out.record.root = ctx.root_key;
  out.record.snapshot_id = snapshot_id;
  out.record.pid = ctx.pid;
  out.record.boot_id = ctx.boot_id;
  record_trial(ctx, out);
  auto rolled = backend.rollback(snapshot_id, rollback_options(ctx, out.record));
  if (!rolled) return base::fail(record_failed(ctx, out, rolled.error()));
  out.result = std::move(*rolled);
  record_done(ctx, backend, out);
  return out;
}

base::Result<RollbackOutcome> finish_rollback(RunContext& ctx, snapshots::SnapshotBackend& backend,
                                              const state::RollbackRecord& record) {
  RollbackOutcome out;
  out.record = record;
  auto journal = backend.find_rollback(record.owner());
  if (!journal) return base::fail(journal.error());
  base::Result<snapshots::RollbackResult> rolled;
  if (*journal && (*journal)->state == "reverted") {
    std::string why = "its journal " + (*journal)->journal + " was reverted: the root was left as it was";
    if (auto w = ctx.store.set_rollback_state(record.id, state::RollbackState::abandoned, (*journal)->journal, "", why);
        !w)
      return base::fail(w.error());
    return base::fail("rollback", (*journal)->journal, "rollback " + std::to_string(record.id) + ": " + why);
  }
  // Anything still to do may carry the state directory into the restored root: its trial first.
  if (!*journal || (*journal)->state == "in-progress") record_trial(ctx, out);
  if (*journal) {
    // In progress (interrupted, or stopped on an error): completing picks up where it stopped.
    // Complete: only the record is missing.
    rolled = backend.resume_rollback((*journal)->journal, snapshots::ResumeMode::complete);
  } else {
    // No journal: the backend never started (or failed before writing one). Run it again.
    rolled = backend.rollback(record.snapshot_id, rollback_options(ctx, record));
  }
  if (!rolled) return base::fail(record_failed(ctx, out, rolled.error()));
  out.result = std::move(*rolled);
  record_done(ctx, backend, out);
  return out;
}

base::Result<std::string> abandon_rollback(RunContext& ctx, snapshots::SnapshotBackend& backend,
                                           const state::RollbackRecord& record) {
  auto journal = backend.find_rollback(record.owner());
  if (!journal) return base::fail(journal.error());
  std::string done = "nothing had been changed";
  if (*journal && (*journal)->state == "in-progress") {
    if (!(*journal)->can_revert)
      return base::fail(snapshots::kRefused, (*journal)->journal,
                        "the restored root was already swapped in: this rollback can only be completed "
                        "(`upgrade-guard recover`)");
    auto reverted = backend.resume_rollback((*journal)->journal, snapshots::ResumeMode::revert);
    if (!reverted) return base::fail(reverted.error());
    done = "its journal " + (*journal)->journal + " was reverted: the root is as it was before";
  } else if (*journal && (*journal)->state == "complete") {
    return base::fail(snapshots::kRefused, (*journal)->journal,
                      "this rollback is complete: `upgrade-guard recover` records it");
  }
  std::string message = "abandoned: " + done;
  if (auto w = ctx.store.set_rollback_state(record.id, state::RollbackState::abandoned,
                                            *journal ? (*journal)->journal : "", "", message);
      !w)
    return base::fail(w.error());
  if (auto pending = ctx.store.pending_boot_trial();
      pending && *pending && (*pending)->snapshot_id == record.snapshot_id && (*pending)->run_id == record.run_id) {
    if (auto w = ctx.store.set_boot_trial_state((*pending)->id, state::BootTrialState::failed,
                                                "the rollback it was to check was abandoned");
        !w)
      return base::fail(w.error());
  }
  return "rollback " + std::to_string(record.id) + " to " + record.snapshot_id + " " + message;
}

}  // namespace guard
