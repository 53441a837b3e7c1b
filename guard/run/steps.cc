#include "guard/run/steps.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fmt/format.h>
#include <set>

#include "base/atomic_file.h"
#include "base/dir.h"
#include "base/input_limits.h"
#include "base/log.h"
#include "base/strings.h"
#include "checks/check.h"
#include "guard/boot/grub_counter.h"
#include "guard/boot/trial.h"
#include "guard/core/check_session.h"
#include "guard/core/exit_code.h"
#include "guard/core/liveness.h"
#include "guard/core/locks.h"
#include "guard/core/retention.h"
#include "guard/core/rollback.h"
#include "base/trusted_dir.h"
#include "guard/gate/gate.h"

namespace guard::run {

using state::RunOutcome;
using state::RunPhase;

namespace {

// journalctl MESSAGE_ID=5b1f0e2a7c9d4e8f9a3b6c1d2e4f7a80 lists how every run ended.
constexpr const char* kRunMessageId = "5b1f0e2a7c9d4e8f9a3b6c1d2e4f7a80";

// The checks taken before the command. package-hashes is left to the post-checks: they hash
// only the packages the command changed, whose files dpkg has just written, so a mismatch
// there is new by construction.
std::vector<std::string> baseline_check_ids(const policies::Policy& policy) {
  std::vector<std::string> ids;
  for (const auto& c : checks::make_all_checks()) {
    std::string id(c->id());
    if (id != "package-hashes" && policy.check(id).severity != policies::Severity::off) ids.push_back(id);
  }
  return ids;
}

std::uint64_t free_bytes(int fd) {
  struct statvfs st {};
  if (::fstatvfs(fd, &st) != 0) return UINT64_MAX;
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

// Which ELF object names which library, written by the baseline's libraries check so that
// the post-checks open only the dependents of what changed, e.g. ".../runs/run-12.needed".
std::string needed_index_path(const std::string& state_dir, std::int64_t run_id) {
  return state_dir + "/runs/run-" + std::to_string(run_id) + ".needed";
}

// Removes the needed-indexes of finished runs (about 100 bytes per ELF object each): only an
// unfinished run's post-checks (or a hook run continued by the same apt) read one again.
// Housekeeping: a file that stays is only disk space.
void prune_needed_indexes(const state::StateStore& store, const std::string& state_dir) {
  const std::string dir = state_dir + "/runs";
  base::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return;
  auto names = base::list_dir(fd.get(), dir);
  if (!names) return;
  for (const std::string& name : *names) {
    constexpr std::string_view prefix = "run-", suffix = ".needed";
    std::string_view n = name;
    if (n.size() <= prefix.size() + suffix.size() || n.substr(0, prefix.size()) != prefix ||
        n.substr(n.size() - suffix.size()) != suffix)
      continue;
    std::string_view digits = n.substr(prefix.size(), n.size() - prefix.size() - suffix.size());
    std::int64_t id = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (ec != std::errc() || end != digits.data() + digits.size()) continue;
    auto run = store.get_run(id);
    if (!run || (*run && !(*run)->finished_unix)) continue;
    if (::unlinkat(fd.get(), name.c_str(), 0) != 0 && errno != ENOENT)
      base::log(base::LogLevel::info, "", "cannot remove " + dir + "/" + name + ", ignoring: it only takes space");
  }
}

std::optional<gate::Enforcement> enforcement(const RunContext& ctx) {
  if (!ctx.live) return std::nullopt;
  return gate::Enforcement{ctx.root, ctx.gate_bus};
}

std::string quoted_command(const std::vector<std::string>& command) { return "`" + base::join(command, " ") + "`"; }

}  // namespace

// ---- the record ---------------------------------------------------------------------------

bool Run::begin(state::RunKind kind, std::int64_t owner_pid) {
  state::RunStart start{ctx_.root_key, s_.command, owner_pid, kind, ctx_.hostname, ctx_.boot_id};
  auto id = ctx_.store.begin_run(start);
  if (!id) return refuse("the run is not started: the state database could not record it (" + id.error().to_string() + ")",
                         kExitEnvironment);
  s_.run_id = *id;
  return true;
}

bool Run::resume(const state::RunRecord& record) {
  s_.run_id = record.id;
  s_.command = record.command;
  s_.snapshot = record.snapshot_id;
  s_.command_status = record.command_status.value_or("interrupted");
  command_started_ = record.phase >= RunPhase::command;
  command_end_ = record.command_status ? command_end(*record.command_status) : CommandEnd::unknown;
  return true;
}

std::string Run::status_file() const {
  return ctx_.paths.state_dir + "/runs/run-" + std::to_string(s_.run_id) + ".status";
}

snapshots::SnapshotBackend* Run::backend() {
  if (backend_tried_) return backend_;
  backend_tried_ = true;
  if (ctx_.policy.snapshot.backend == policies::SnapshotBackendKind::none) return nullptr;
  auto b = ctx_.snapshots.get();
  if (!b) {
    s_.notes.push_back("no snapshot backend (" + b.error().to_string() +
                       "): a failed upgrade can close the gate but not roll back");
    return nullptr;
  }
  backend_ = *b;
  return backend_;
}

// ---- endings ------------------------------------------------------------------------------

namespace {

void log_end(const RunSummary& s) {
  base::log(s.exit_code == kExitOk ? base::LogLevel::info : base::LogLevel::warning, kRunMessageId,
            "run " + std::to_string(s.run_id) + ": " + s.message,
            {{"UG_RUN_ID", std::to_string(s.run_id)}, {"UG_OUTCOME", to_string(s.outcome)}});
}

void ended(RunSummary& s, RunOutcome outcome, int exit_code, const std::string& message) {
  s.outcome = outcome;
  s.exit_code = exit_code;
  s.message = message;
  log_end(s);
}

}  // namespace

bool Run::finish(RunOutcome outcome, int exit_code, const std::string& message) {
  if (auto w = ctx_.store.finish_run(s_.run_id, outcome, exit_code, message); !w) return stop_unrecorded(w.error());
  ended(s_, outcome, exit_code, message);
  return true;
}

bool Run::refuse(const std::string& why, int exit_code) {
  s_.outcome = RunOutcome::refused;
  s_.exit_code = exit_code;
  s_.message = why;
  if (s_.run_id != 0) {
    if (auto w = ctx_.store.finish_run(s_.run_id, RunOutcome::refused, exit_code, why); !w)
      s_.notes.push_back("recording the refusal failed (" + w.error().to_string() +
                         "), ignoring: nothing was changed, and `upgrade-guard recover` marks the run interrupted");
  }
  log_end(s_);
  return false;
}

bool Run::stop_unrecorded(const base::Error& error) {
  const std::string run = "run " + std::to_string(s_.run_id);
  s_.outcome = RunOutcome::failed;
  s_.exit_code = kExitEnvironment;
  if (!command_started_) {
    s_.message = run + " stopped before its command, nothing was changed: the state database failed (" +
                 error.to_string() + ")";
    if (s_.run_id != 0) {
      if (auto w = ctx_.store.finish_run(s_.run_id, RunOutcome::failed, kExitEnvironment, s_.message); !w)
        s_.notes.push_back("recording the stop failed too, ignoring: `upgrade-guard recover` marks the run interrupted");
    }
    log_end(s_);
    return false;
  }
  state::GateState g;
  g.closed = true;
  g.reason = run + " stopped: its state could not be recorded (" + error.to_string() + ")";
  g.run_id = s_.run_id;
  g.changed_by = run;
  gate::GateChange change = gate::change_gate(ctx_.store, ctx_.paths.state_dir, g, enforcement(ctx_));
  s_.notes.push_back(change.summary());
  s_.message = run + " stopped: the state database failed (" + error.to_string() +
               "); the reboot gate is closed. Fix the state database (e.g. free space under " + ctx_.paths.state_dir +
               ") and run `upgrade-guard recover` to finish the run";
  log_end(s_);
  return false;
}

// ---- the steps ----------------------------------------------------------------------------

// The environment problems that make a run pointless or unsafe. In hook mode apt has decided
// to run dpkg and holds its locks: they are warnings, and only a snapshot the policy requires
// stops it.
bool Run::preflight() {
  auto problem = [&]() -> std::optional<std::string> {
    const auto& p = ctx_.policy;
    if (mode_ == Mode::command) {
      // The command's output is appended to run-<id>.log there, as root: a directory others can
      // change could hold a symlink to any file.
      if (auto trusted = base::check_trusted_dir(ctx_.paths.log_dir, "the log directory"); !trusted)
        return trusted.error().to_string();
      auto locks = wait_for_dpkg_locks(ctx_.root, p.preflight.lock_timeout, [&](int pid, const std::string& path) {
        ctx_.say(fmt::format("waiting for the package manager (pid {}) to release {}", pid, path));
      });
      if (!locks) return locks.error().to_string();
    }
    CheckSessionOptions dpkg_only;
    dpkg_only.check_ids = {"dpkg-state"};
    auto dpkg = run_checks({ctx_.root, p, ctx_.runner, ctx_.live}, dpkg_only);
    if (!dpkg) return dpkg.error().to_string();
    if (dpkg->blocking_count() > 0) {
      const auto& f = *std::find_if(dpkg->findings.begin(), dpkg->findings.end(), checks::is_blocking);
      return "dpkg is already interrupted (" + f.message +
             "); snapshotting a broken state is useless: run `dpkg --configure -a` first";
    }
    struct statvfs vfs {};
    if (::fstatvfs(ctx_.root.fd(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
      return "the root filesystem " + ctx_.root.path() + " is read-only";
    if (std::uint64_t f = free_bytes(ctx_.root.fd()); f < p.preflight.min_free_root)
      return "only " + base::human_bytes(f) + " free on the root (policy preflight.min_free_root is " +
             base::human_bytes(p.preflight.min_free_root) + ")";
    if (auto boot = ctx_.root.open("/boot", O_PATH | O_DIRECTORY)) {
      if (std::uint64_t f = free_bytes(boot->get()); f < p.preflight.min_free_boot)
        return "only " + base::human_bytes(f) + " free on /boot (policy preflight.min_free_boot is " +
               base::human_bytes(p.preflight.min_free_boot) + ")";
    }
    if (ctx_.live && p.boot_check.require_counter) {
      if (auto why = boot::boot_counter_impossible(ctx_.root)) return *why;
    }
    if (p.backup.max_age) {
      CheckSessionOptions backup_only;
      backup_only.check_ids = {"backup"};
      auto backup = run_checks({ctx_.root, p, ctx_.runner, ctx_.live}, backup_only);
      if (backup && backup->blocking_count() > 0)
        return "the last backup is older than the policy allows: " + backup->findings.front().message;
    }
    return std::nullopt;
  }();
  if (problem) {
    if (mode_ == Mode::command) return refuse("refused: " + *problem, kExitEnvironment);
    s_.notes.push_back("warning: " + *problem);
  }
  // The snapshot backend: a problem only when the policy requires a snapshot.
  const auto& snap = ctx_.policy.snapshot;
  if (snap.backend == policies::SnapshotBackendKind::none) {
    if (snap.required) return refuse("refused: the policy requires a snapshot but sets snapshot.backend = \"none\"", 4);
    return true;
  }
  if (auto* b = backend(); b != nullptr && ctx_.live) {
    // A rollback prepared for the shutdown replaces this root at the reboot: an upgrade now
    // would be thrown away with it.
    if (auto pending = b->pending_rollbacks(); pending) {
      for (const auto& r : *pending) {
        if (!r.prepared) continue;
        const std::string why = "refused: a rollback to " + r.snapshot_id +
                                " is prepared and replaces this root when the system shuts down: reboot first";
        if (mode_ == Mode::command) return refuse(why, kExitEnvironment);
        s_.notes.push_back("warning: " + why.substr(std::string("refused: ").size()));
      }
    }
  }
  if (backend() == nullptr && snap.required) {
    auto b = ctx_.snapshots.get();
    return refuse("refused: no snapshot backend for " + ctx_.root.path() +
                      " and the policy requires one: " + (b ? std::string("?") : b.error().to_string()),
                  kExitEnvironment);
  }
  return true;
}

bool Run::take_baseline() {
  CheckSessionOptions session;
  session.check_ids = baseline_check_ids(ctx_.policy);
  if (::mkdir((ctx_.paths.state_dir + "/runs").c_str(), 0700) != 0 && errno != EEXIST)
    return refuse(base::Error{"mkdir", ctx_.paths.state_dir + "/runs", errno, "cannot keep the run's files"}.to_string(),
                  kExitEnvironment);
  prune_needed_indexes(ctx_.store, ctx_.paths.state_dir);
  session.needed_index = needed_index_path(ctx_.paths.state_dir, s_.run_id);
  auto report = run_checks({ctx_.root, ctx_.policy, ctx_.runner, ctx_.live}, session);
  if (!report) return refuse("the baseline checks could not run: " + report.error().to_string(), kExitEnvironment);
  if (auto w = ctx_.store.save_report(s_.run_id, state::ReportStage::baseline, *report); !w)
    return stop_unrecorded(w.error());
  baseline_keys_ = finding_keys(*report);
  auto status = ctx_.root.read_file("/var/lib/dpkg/status", base::limits::kDpkgStatusBytes);
  if (!status) return refuse("cannot read the dpkg status: " + status.error().to_string(), kExitEnvironment);
  if (auto w = base::write_file_atomic(status_file(), *status, 0600); !w)
    return refuse("cannot keep the dpkg status from before the command: " + w.error().to_string(), kExitEnvironment);
  status_before_ = std::move(*status);
  return true;
}

bool Run::take_snapshot() {
  snapshots::SnapshotBackend* b = backend();
  if (b == nullptr) return true;  // preflight said why, or refused when the policy requires one
  const std::string run = std::to_string(s_.run_id);
  auto snap = b->create("pre-run" + run, {{"run", run}, {"command", base::join(s_.command, " ")}});
  if (!snap) {
    if (mode_ == Mode::command || ctx_.policy.snapshot.required)
      return refuse("the snapshot was not taken: " + snap.error().to_string(), kExitEnvironment);
    s_.notes.push_back("warning: no snapshot was taken (" + snap.error().to_string() +
                       "): a regression can close the gate but not roll back");
    return true;
  }
  const state::SnapshotRecord rec = snapshot_record(*snap, ctx_.root_key, s_.run_id);
  auto recorded = ctx_.store.transaction([&]() -> base::Result<void> {
    if (auto w = ctx_.store.record_snapshot(rec); !w) return w;
    return ctx_.store.set_run_snapshot(s_.run_id, snap->id);
  });
  if (!recorded) {
    // Nothing knows of it but its metadata: take it away again before stopping.
    if (auto r = b->remove(snap->id); !r)
      s_.notes.push_back("snapshot " + snap->id + " could not be recorded nor removed (" + r.error().to_string() +
                         "): `upgrade-guard recover` records it");
    return stop_unrecorded(recorded.error());
  }
  s_.snapshot = snap->id;
  ctx_.say("snapshot " + snap->id + " taken (" + b->name() + ")");
  return true;
}

bool Run::run_command(const std::vector<std::string>& argv) {
  command_started_ = true;
  if (::mkdir(ctx_.paths.log_dir.c_str(), 0750) != 0 && errno != EEXIST)
    s_.notes.push_back("warning: cannot create " + ctx_.paths.log_dir + ": the command's output is not logged");
  s_.log_file = ctx_.paths.log_dir + "/run-" + std::to_string(s_.run_id) + ".log";
  base::Command cmd;
  cmd.argv = argv;
  cmd.timeout = ctx_.policy.command_timeout;
  cmd.output = base::Output::tee;
  cmd.tee_file = s_.log_file;
  cmd.tee_fd = ctx_.command_output_fd;
  cmd.env["UPGRADE_GUARD_RUN"] = std::to_string(s_.run_id);
  if (!ctx_.root.is_host_root()) {
    cmd.chroot = ctx_.root.host_path("/");
    cmd.bind_system_dirs = true;
  }
  ctx_.say("run " + std::to_string(s_.run_id) + ": " + base::join(argv, " "));
  auto result = ctx_.runner.run(cmd);
  s_.command_status = result ? result->describe() : "could not start: " + result.error().to_string();
  command_end_ = result ? command_end(*result) : CommandEnd::failed;
  if (auto w = ctx_.store.set_command_status(s_.run_id, s_.command_status); !w) return stop_unrecorded(w.error());
  return true;
}

bool Run::record_hook_command(const std::string& status) {
  s_.command_status = status;
  if (auto w = ctx_.store.set_command_status(s_.run_id, status); !w) return stop_unrecorded(w.error());
  return true;
}

// ---- judging what the command did ---------------------------------------------------------

void Run::judge(policies::OnFail on_fail) {
  // What changed: the dpkg status diff, recorded.
  if (!step(RunPhase::changes, [&] { return record_changes(); })) return;
  // The post-checks: scoped to the change plus the always-on checks, against the baseline.
  std::optional<PostChecks> post;
  if (!step(RunPhase::post_checks, [&] { return (post = post_checks()).has_value(); })) return;
  // The verdict, a pure function of what was found (verdict.h), then what it says to do.
  if (!step(RunPhase::verdict, [] { return true; })) return;
  VerdictFacts facts;
  facts.command = command_end_;
  facts.command_text = quoted_command(s_.command) + " (" + s_.command_status + ")";
  facts.regressions = post->report.blocking_count();
  facts.on_fail = on_fail;
  facts.snapshot = s_.snapshot.value_or("");
  facts.can_roll_back = s_.snapshot && backend() != nullptr;
  act(decide_run(facts), facts, post->baseline_keys);
}

bool Run::record_changes() {
  if (status_before_.empty()) {
    auto kept = base::Root::open("/");
    auto bytes = kept ? kept->read_file(status_file(), base::limits::kDpkgStatusBytes) : base::Result<std::string>(base::fail(kept.error()));
    if (bytes) status_before_ = std::move(*bytes);
    else s_.notes.push_back("the dpkg status from before the command is lost (" + bytes.error().to_string() + ")");
  }
  auto after = ctx_.root.read_file("/var/lib/dpkg/status", base::limits::kDpkgStatusBytes);
  if (!status_before_.empty() && after) {
    auto diff = checks::diff_status(status_before_, *after);
    if (diff) {
      s_.changes = std::move(*diff);
      diff_known_ = true;
    } else {
      s_.notes.push_back("the dpkg status could not be compared (" + diff.error().to_string() +
                         "): the post-checks run in full");
    }
  } else if (!after) {
    s_.notes.push_back("the dpkg status cannot be read (" + after.error().to_string() + "): the post-checks run in full");
  }
  std::vector<state::PackageChange> all;
  for (const auto* v : {&s_.changes.installed, &s_.changes.removed, &s_.changes.upgraded, &s_.changes.downgraded,
                        &s_.changes.state_changed}) {
    for (const auto& c : *v) all.push_back(state::PackageChange{c.package, c.before_version, c.after_version});
  }
  if (auto w = ctx_.store.save_package_changes(s_.run_id, all); !w) return stop_unrecorded(w.error());
  return true;
}

std::optional<Run::PostChecks> Run::post_checks() {
  CheckSessionOptions session;
  session.needed_index = needed_index_path(ctx_.paths.state_dir, s_.run_id);
  if (diff_known_) {
    // The changed packages' files before the command, from the snapshot: what a removed or
    // replaced library was called, so that whatever needed it is checked too.
    std::set<std::string> changed = changed_packages(s_.changes);
    std::set<std::string> old_paths;
    std::optional<base::Root> before;
    if (s_.snapshot && backend() != nullptr) {
      if (auto snap = backend()->open(*s_.snapshot)) before.emplace(std::move(*snap));
    }
    if (before) {
      add_package_paths(*before, changed, old_paths);
      session.scope = changed_scope(ctx_.root, s_.changes, old_paths);
    } else if (changed.empty()) {
      session.scope = changed_scope(ctx_.root, s_.changes, old_paths);
    } else {
      s_.notes.push_back("no snapshot to read the old package file lists from: the post-checks ran in full");
    }
  }
  auto report = run_checks({ctx_.root, ctx_.policy, ctx_.runner, ctx_.live}, session);
  if (!report) {
    RunDecision unchecked;
    unchecked.message = "the post-checks could not run (" + report.error().to_string() +
                        "): what the command did is unknown; reboot gate closed";
    close_gate(unchecked, RunOutcome::failed, kExitEnvironment);
    return std::nullopt;
  }
  PostChecks out{std::move(*report), {}};
  if (baseline_keys_) {
    out.baseline_keys = *baseline_keys_;
  } else {
    auto baseline = ctx_.store.load_report(s_.run_id, state::ReportStage::baseline);
    if (!baseline) {
      RunDecision unchecked;
      unchecked.message = "the baseline of run " + std::to_string(s_.run_id) + " cannot be read (" +
                          baseline.error().to_string() + "): nothing can be judged; reboot gate closed";
      close_gate(unchecked, RunOutcome::failed, kExitEnvironment);
      return std::nullopt;
    }
    if (*baseline) out.baseline_keys = finding_keys((*baseline)->report);
    else s_.notes.push_back("run " + std::to_string(s_.run_id) + " has no stored baseline: every finding counts");
  }
  checks::apply_baseline(out.report, out.baseline_keys);
  if (auto w = ctx_.store.save_report(s_.run_id, state::ReportStage::post, out.report); !w) {
    stop_unrecorded(w.error());
    return std::nullopt;
  }
  s_.post = out.report;
  return out;
}

void Run::act(const RunDecision& decision, const VerdictFacts& facts, const std::vector<std::string>& keys) {
  s_.notes.insert(s_.notes.end(), decision.notes.begin(), decision.notes.end());
  switch (decision.action) {
    case RunAction::keep:
      keep(decision);
      return;
    case RunAction::warn:
      finish(decision.outcome, decision.exit_code, decision.message);
      return;
    case RunAction::close_gate:
      close_gate(decision, decision.outcome, decision.exit_code);
      return;
    case RunAction::roll_back:
      roll_back(decision, facts, keys);
      return;
  }
}

void Run::keep(const RunDecision& decision) {
  const bool changed = !s_.changes.empty();
  std::optional<std::int64_t> trial;
  std::string trial_note;
  bool gate_opened = false;
  state::GateState open;
  open.reason = "run " + std::to_string(s_.run_id) + " passed its checks";
  open.run_id = s_.run_id;
  open.changed_by = "run " + std::to_string(s_.run_id);
  // One transaction: how the run ended, and (a passing run only) its snapshot known-good, its
  // findings the accepted baseline, a gate it closed open again; the next boot a trial.
  auto written = ctx_.store.transaction([&]() -> base::Result<void> {
    if (auto w = ctx_.store.finish_run(s_.run_id, decision.outcome, decision.exit_code, decision.message); !w) return w;
    if (decision.known_good) {
      if (s_.snapshot) {
        if (auto w = ctx_.store.set_snapshot_known_good(*s_.snapshot, true); !w) return w;
      }
      if (auto w = ctx_.store.save_baseline(ctx_.root_key, finding_keys(*s_.post), s_.run_id); !w) return w;
      // A gate this run closed (an earlier dpkg invocation of the same apt process, or the run
      // stopping on a state write before recover finished it) opens again once it passes.
      auto closed = gate::closed_by_run(ctx_.store, ctx_.paths.state_dir, s_.run_id);
      if (!closed) return base::fail(closed.error());
      if (*closed) {
        if (auto w = ctx_.store.set_gate(open); !w) return w;
        gate_opened = true;
      }
    }
    if (ctx_.live && s_.snapshot && (decision.known_good || changed)) {
      auto recorded = boot::record_trial(ctx_.store, s_.run_id, *s_.snapshot);
      if (!recorded) return base::fail(recorded.error());
      trial = recorded->id;
      trial_note = recorded->note;
    }
    return {};
  });
  if (!written) {
    stop_unrecorded(written.error());
    return;
  }
  ended(s_, decision.outcome, decision.exit_code, decision.message);
  if (gate_opened) s_.notes.push_back(gate::publish_gate(ctx_.paths.state_dir, open, enforcement(ctx_)).summary());
  if (!trial_note.empty()) s_.notes.push_back(trial_note);
  if (trial && backend() != nullptr) {
    auto info = backend()->info(*s_.snapshot);
    std::string grub = info ? boot::arm_grub(ctx_.root, *trial, *info)
                            : "no boot counter armed: " + info.error().to_string();
    s_.notes.push_back(grub);
    boot::log_trial(base::LogLevel::info, *trial, trial_note + "; " + grub);
  }
  if (!decision.known_good) return;
  prune_snapshots();
  if (s_.snapshot)
    s_.notes.push_back("to undo this upgrade: upgrade-guard rollback --to " + *s_.snapshot +
                       (ctx_.root.is_host_root() ? "" : " --root " + ctx_.root.path()));
}

// Retention after a passing run: the newest snapshot.keep are kept, and never this run's, a
// pinned one, the last known-good, a pending trial's or an unfinished run's.
void Run::prune_snapshots() {
  snapshots::SnapshotBackend* b = backend();
  if (b == nullptr) return;
  auto keep = protected_snapshots(ctx_.store, ctx_.root_key);
  if (!keep) {
    s_.notes.push_back("old snapshots were not pruned (" + keep.error().to_string() + "), ignoring: they only take space");
    return;
  }
  if (s_.snapshot) keep->push_back(*s_.snapshot);
  auto pruned = b->prune(ctx_.policy.snapshot.keep, ctx_.policy.snapshot.keep_broken, *keep);
  if (!pruned) {
    s_.notes.push_back("old snapshots were not pruned (" + pruned.error().to_string() + "), ignoring: they only take space");
    return;
  }
  for (const auto& id : *pruned) {
    if (auto w = ctx_.store.set_snapshot_state(id, state::SnapshotState::deleted); !w && w.error().message.find("not found") == std::string::npos)
      s_.notes.push_back("snapshot " + id + " was pruned but recording it failed (" + w.error().to_string() +
                         "), ignoring: `snapshot list` shows what exists");
  }
  if (!pruned->empty()) s_.notes.push_back("pruned " + std::to_string(pruned->size()) + " old snapshots");
}

void Run::reopen_own_gate(const std::string& why) {
  auto closed = gate::closed_by_run(ctx_.store, ctx_.paths.state_dir, s_.run_id);
  if (!closed || !*closed) return;
  state::GateState open;
  open.reason = why;
  open.run_id = s_.run_id;
  open.changed_by = "run " + std::to_string(s_.run_id);
  s_.notes.push_back(gate::change_gate(ctx_.store, ctx_.paths.state_dir, open, enforcement(ctx_)).summary());
}

void Run::close_gate(const RunDecision& decision, RunOutcome outcome, int exit_code) {
  state::GateState g;
  g.closed = true;
  g.reason = decision.message;
  g.run_id = s_.run_id;
  g.changed_by = "run " + std::to_string(s_.run_id);
  gate::GateChange change = gate::change_gate(ctx_.store, ctx_.paths.state_dir, g, enforcement(ctx_));
  s_.notes.push_back(change.summary());
  if (!change.recorded) {
    std::string problems = base::join(change.problems, "; ");
    stop_unrecorded(base::Error{"state", ctx_.store.path(), 0, "cannot record the closed gate: " + problems});
    return;
  }
  s_.notes.push_back("the reboot gate is closed: `upgrade-guard gate status` exits 1 until the findings are fixed");
  finish(outcome, exit_code, decision.message);
}

void Run::roll_back(const RunDecision& decision, const VerdictFacts& facts, const std::vector<std::string>& keys) {
  if (!step(RunPhase::rollback, [] { return true; })) return;
  auto rolled = guard::roll_back(ctx_, *backend(), s_.run_id, *s_.snapshot);
  if (!rolled && rolled.error().what == kRollbackUnrecorded) {
    stop_unrecorded(rolled.error());
    return;
  }
  if (!rolled) {
    RunDecision gated = rollback_failed(facts, rolled.error().to_string());
    s_.notes.insert(s_.notes.end(), gated.notes.begin(), gated.notes.end());
    close_gate(gated, gated.outcome, gated.exit_code);
    return;
  }
  const snapshots::RollbackResult& r = rolled->result;
  s_.rollback = r;
  s_.notes.insert(s_.notes.end(), r.notes.begin(), r.notes.end());
  s_.notes.insert(s_.notes.end(), rolled->notes.begin(), rolled->notes.end());
  if (r.takes_effect_now || (!ctx_.live && !r.restored_path.empty())) {
    // The restored root is another tree at the same path (or, when the root directory is a
    // mount of the old tree, at its path in the btrfs top level): open it again and check it.
    auto restored_root = base::Root::open(r.takes_effect_now ? ctx_.root.path() : r.restored_path);
    auto restored = restored_root ? run_checks({*restored_root, ctx_.policy, ctx_.runner, ctx_.live}, {})
                                  : base::Result<checks::Report>(base::fail(restored_root.error()));
    if (restored) {
      checks::apply_baseline(*restored, keys);
      if (auto w = ctx_.store.save_report(s_.run_id, state::ReportStage::restored, *restored); !w)
        s_.notes.push_back("the checks of the restored root were not recorded (" + w.error().to_string() +
                           "), ignoring: the root is restored, only that report is lost");
      s_.restored = std::move(*restored);
    } else {
      s_.notes.push_back("the restored root could not be checked: " + restored.error().to_string());
    }
    s_.notes.push_back("the root is restored to snapshot " + *s_.snapshot + "; the broken root is kept as " + r.broken);
  } else if (!ctx_.live) {
    s_.notes.push_back("the root could not be checked: it is restored to snapshot " + *s_.snapshot +
                       "; the broken root is kept as " + r.broken);
  } else {
    s_.notes.push_back("the root will be restored to snapshot " + *s_.snapshot + " at the next boot; the broken root is kept as " +
                       r.broken);
    if (rolled->trial_id)
      s_.notes.push_back("the boot into the restored root is trial " + std::to_string(*rolled->trial_id));
  }
  // The rollback is done: a record that fails now must not close the gate (the reboot is what
  // activates a live rollback). recover finds the rollback done and records the run's end.
  if (auto w = ctx_.store.finish_run(s_.run_id, decision.outcome, decision.exit_code, decision.message); !w)
    s_.notes.push_back("recording the end of run " + std::to_string(s_.run_id) + " failed (" + w.error().to_string() +
                       "): `upgrade-guard recover` records it; the rollback itself is done");
  ended(s_, decision.outcome, decision.exit_code, decision.message);
  reopen_own_gate("run " + std::to_string(s_.run_id) + " was rolled back");
}

}  // namespace guard::run
