// The guarded upgrade. run() reads top to bottom as the steps of issue #6; every phase is
// committed to the state store before the step runs, so a guard killed anywhere leaves a
// run that recover() can finish.
#include "guard/run.h"

#include <dirent.h>
#include <fcntl.h>
#include <cinttypes>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <set>
#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/strings.h"
#include "base/log.h"
#include "checks/check.h"
#include "checks/dpkg_diff.h"
#include "guard/apt_session.h"
#include "guard/boot_trial.h"
#include "guard/check_session.h"
#include "guard/gate.h"
#include "guard/locks.h"
#include "snapshots/layout.h"

namespace guard {

struct RunPipeline::Context {
  explicit Context(const GlobalOptions& o) : options(o) {}

  GlobalOptions options;  // the CLI's, with root set to the run's root
  std::optional<base::Root> root;
  std::optional<StateStore> state;
  std::unique_ptr<snapshots::SnapshotBackend> backend;
  std::string root_key;
  std::string status_file;  // dpkg status from before the command
  std::vector<std::string> baseline_keys;
  RunSummary summary;
};

namespace {

constexpr const char* kRunMessageId = "5b1f0e2a7c9d4e8f9a3b6c1d2e4f7a80";

// The checks taken before the command. package-hashes is left to the post-checks: they
// hash only the packages the command changed, whose files dpkg has just written, so a
// mismatch there is new by construction.
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
void prune_needed_indexes(const StateStore& db, const std::string& state_dir) {
  std::string dir = state_dir + "/runs";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (struct dirent* e = ::readdir(d)) {
    std::int64_t id = 0;
    char tail[16] = {};
    if (std::sscanf(e->d_name, "run-%" SCNd64 ".%15s", &id, tail) != 2 || std::string(tail) != "needed") continue;
    auto run = db.get_run(id);
    if (run && (!*run || (*run)->finished_unix)) stale.push_back(dir + "/" + e->d_name);
  }
  ::closedir(d);
  for (const auto& f : stale) ::unlink(f.c_str());
}

void say(const GlobalOptions& o, const std::string& line) {
  if (!o.json) std::fprintf(stderr, "upgrade-guard: %s\n", line.c_str());
}

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

RunPipeline::RunPipeline(const GlobalOptions& options, policies::Policy policy, RunPaths paths,
                         base::CommandRunner& runner)
    : options_(options), policy_(std::move(policy)), paths_(std::move(paths)), runner_(runner) {}

RunSummary RunPipeline::run(const std::vector<std::string>& argv) {
  Context ctx{options_};
  RunSummary& s = ctx.summary;
  s.command = argv;

  // 1. Lock: one guard at a time.
  auto lock = GuardLock::acquire(paths_.run_dir);
  if (!lock) return refuse(ctx, lock.error().to_string());
  // 2-4. Preflight, baseline, snapshot.
  if (!begin(ctx, ::getpid(), Mode::command)) return s;

  // 5. The command: SIGHUP ignored (an SSH drop must not leave the upgrade unchecked),
  // output to the terminal and to the run's log.
  StateStore& db = *ctx.state;
  (void)db.set_phase(s.run_id, RunPhase::command);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  ::mkdir(paths_.log_dir.c_str(), 0750);
  s.log_file = paths_.log_dir + "/run-" + std::to_string(s.run_id) + ".log";
  base::Command cmd;
  cmd.argv = argv;
  cmd.timeout = policy_.command_timeout;
  cmd.output = base::Output::tee;
  cmd.tee_file = s.log_file;
  cmd.tee_fd = options_.json ? STDERR_FILENO : STDOUT_FILENO;  // stdout carries the JSON
  cmd.env["UPGRADE_GUARD_RUN"] = std::to_string(s.run_id);
  if (!ctx.root->is_host_root()) {
    cmd.chroot = ctx.root->host_path("/");
    cmd.bind_system_dirs = true;
  }
  say(options_, "run " + std::to_string(s.run_id) + ": " + join(argv));
  auto result = runner_.run(cmd);
  s.command_status = result ? result->describe() : "could not start: " + result.error().to_string();
  (void)db.set_command_status(s.run_id, s.command_status);

  return finish_after_command(ctx, policy_.on_fail);
}

namespace {

// The command status of a run taken by apt's hooks; recover() applies hook.on_fail to them.
constexpr std::string_view kHookStatus = "hook: ";

std::string apt_name(const AptProcess& apt) {
  return apt.command.empty() ? "apt (pid " + std::to_string(apt.pid) + ")"
                             : fmt::format("`{}` (pid {})", join(apt.command), apt.pid);
}

}  // namespace

RunSummary RunPipeline::hook_pre() {
  Context ctx{options_};
  RunSummary& s = ctx.summary;
  s.exit_code = kExitOk;
  // Without a snapshot the policy requires, apt must not go on; any other trouble of the
  // guard's own only costs this apt run its guard.
  auto unguarded = [&](const std::string& why) -> RunSummary& {
    s.outcome = RunOutcome::refused;
    s.exit_code = policy_.snapshot.required ? kExitChecksFailed : kExitOk;
    s.message = (policy_.snapshot.required ? "refusing to let dpkg run: " : "this apt run is NOT guarded: ") + why;
    return s;
  };
  auto lock = GuardLock::acquire(paths_.run_dir, policy_.preflight.lock_timeout,
                                 [&](const std::string& why) { say(options_, "waiting: " + why); });
  if (!lock) return unguarded(lock.error().to_string());
  auto root = base::Root::open(options_.root);
  if (!root) return unguarded(root.error().to_string());
  auto apt = find_apt_process(*root);
  if (!apt) return unguarded(apt.error().to_string());
  std::string key = root_key(*root);

  // A later dpkg invocation of the same apt process continues its run.
  if (auto session = read_hook_session(paths_.run_dir, key, *apt)) {
    auto state = StateStore::open(paths_.state_dir);
    if (!state) return unguarded(state.error().to_string());
    auto run = state->get_run(session->run_id);
    if (run && *run) {
      const RunRecord& r = **run;
      s.run_id = r.id;
      s.outcome = RunOutcome::passed;
      if (!r.finished_unix) {
        s.message = fmt::format("run {} continues", r.id);
        return s;
      }
      if (r.outcome == RunOutcome::passed || r.outcome == RunOutcome::gated || r.outcome == RunOutcome::warned) {
        if (auto reopened = state->reopen_run(r.id, apt->pid); !reopened) return unguarded(reopened.error().to_string());
        s.message = fmt::format("run {} continues: {} runs dpkg again", r.id, apt_name(*apt));
        return s;
      }
      s.run_id = 0;  // rolled back, refused...: this dpkg invocation gets a run of its own
    }
  }

  s.command = apt->command.empty() ? std::vector<std::string>{"apt"} : apt->command;
  if (!begin(ctx, apt->pid, Mode::hook)) return unguarded(s.message);
  std::string status = std::string(kHookStatus) + "dpkg running under apt pid " + std::to_string(apt->pid);
  (void)ctx.state->set_phase(s.run_id, RunPhase::command);
  (void)ctx.state->set_command_status(s.run_id, status);
  HookSession session{*apt, s.run_id, ctx.root_key};
  if (auto w = write_hook_session(paths_.run_dir, session); !w) s.notes.push_back("warning: " + w.error().to_string());
  s.outcome = RunOutcome::passed;
  s.message = fmt::format("run {}: {}; dpkg's changes are checked when it finishes",
                          s.run_id, s.snapshot ? "snapshot " + *s.snapshot + " taken" : "no snapshot");
  return s;
}

RunSummary RunPipeline::hook_post() {
  Context ctx{options_};
  RunSummary& s = ctx.summary;
  s.exit_code = kExitOk;
  // The guard's own trouble never fails apt: the run stays unfinished, and once apt is gone
  // every invocation reports it until `upgrade-guard recover` checks it.
  auto unchecked = [&](const std::string& why) -> RunSummary& {
    s.outcome = RunOutcome::failed;
    s.exit_code = kExitOk;
    s.message = "dpkg's changes were NOT checked: " + why;
    return s;
  };
  auto lock = GuardLock::acquire(paths_.run_dir, policy_.preflight.lock_timeout,
                                 [&](const std::string& why) { say(options_, "waiting: " + why); });
  if (!lock) return unchecked(lock.error().to_string() + "; run `upgrade-guard recover` once apt has finished");
  auto root = base::Root::open(options_.root);
  if (!root) return unchecked(root.error().to_string());
  auto apt = find_apt_process(*root);
  if (!apt) return unchecked(apt.error().to_string());
  auto session = read_hook_session(paths_.run_dir, root_key(*root), *apt);
  if (!session)
    return unchecked("no guarded run for " + apt_name(*apt) + " (the pre-invoke hook took none)");
  auto state = StateStore::open(paths_.state_dir);
  if (!state) return unchecked(state.error().to_string());
  auto run = state->get_run(session->run_id);
  if (!run || !*run) return unchecked("run " + std::to_string(session->run_id) + " is not in the state database");
  const RunRecord r = **run;
  s.run_id = r.id;
  s.command = r.command;
  s.snapshot = r.snapshot_id;
  if (r.finished_unix) {
    s.message = fmt::format("run {} was already checked ({})", r.id, r.message);
    return s;
  }
  ctx.state.emplace(std::move(*state));
  ctx.root.emplace(std::move(*root));
  ctx.root_key = r.root;
  ctx.status_file = paths_.state_dir + "/runs/run-" + std::to_string(r.id) + ".status";
  if (r.snapshot_id) {
    if (auto layout = snapshots::detect_layout(options_.root)) {
      if (auto backend = snapshots::make_backend(*layout, policy_, paths_.state_dir)) ctx.backend = std::move(*backend);
    }
  }
  s.command_status = std::string(kHookStatus) + "dpkg finished under apt pid " + std::to_string(apt->pid);
  (void)ctx.state->set_command_status(r.id, s.command_status);
  finish_after_command(ctx, policy_.hook.on_fail);
  if (s.outcome == RunOutcome::failed) s.exit_code = kExitOk;  // the guard's trouble, not dpkg's
  else if (s.exit_code != kExitOk) s.exit_code = kExitChecksFailed;
  return s;
}

RunSummary& RunPipeline::refuse(Context& ctx, const std::string& why, int code) {
  RunSummary& s = ctx.summary;
  s.outcome = RunOutcome::refused;
  s.exit_code = code;
  s.message = why;
  if (ctx.state && s.run_id != 0) (void)ctx.state->finish_run(s.run_id, RunOutcome::refused, code, why);
  return s;
}

// Steps 2-4, with the guard's lock held: the run recorded (owned by `owner_pid`: the guard,
// or apt in hook mode), preflight, baseline, snapshot. False when the run was refused; the
// summary says why. In hook mode apt holds dpkg's locks and has already decided to run
// dpkg, so only a snapshot the policy requires can stop it; other preflight problems are
// reported as warnings.
bool RunPipeline::begin(Context& ctx, std::int64_t owner_pid, Mode mode) {
  RunSummary& s = ctx.summary;
  const bool hook = mode == Mode::hook;
  auto stop = [&](const std::string& why, int code = kExitEnvironment) {
    refuse(ctx, why, code);
    return false;
  };
  auto root = base::Root::open(options_.root);
  if (!root) return stop(root.error().to_string(), kExitUsage);
  ctx.root.emplace(std::move(*root));
  ctx.root_key = root_key(*ctx.root);
  auto state = StateStore::open(paths_.state_dir);
  if (!state) return stop(state.error().to_string());
  ctx.state.emplace(std::move(*state));
  if (auto pending = interrupted_run_notices(paths_.state_dir); !pending.empty()) {
    if (!hook) return stop(pending.front() + "; a new run is refused until then");
    s.notes.push_back("warning: " + pending.front());
  }

  auto id = ctx.state->begin_run(ctx.root_key, s.command, owner_pid);
  if (!id) return stop(id.error().to_string());
  s.run_id = *id;
  StateStore& db = *ctx.state;

  // 2. Preflight: refuse to start what cannot be guarded.
  if (auto problem = preflight(ctx, mode)) {
    if (!hook) return stop("refused: " + *problem);
    s.notes.push_back("warning: " + *problem);
  }
  if (auto problem = prepare_backend(ctx)) return stop("refused: " + *problem);

  // 3. Baseline: the checks on the root as it is now.
  (void)db.set_phase(s.run_id, RunPhase::baseline);
  CheckSessionOptions baseline;
  baseline.check_ids = baseline_check_ids(policy_);
  ::mkdir((paths_.state_dir + "/runs").c_str(), 0700);
  prune_needed_indexes(db, paths_.state_dir);
  baseline.needed_index = needed_index_path(paths_.state_dir, s.run_id);
  auto before = run_check_session(options_, policy_, baseline);
  if (!before) return stop("the baseline checks could not run: " + before.error().error.to_string());
  (void)db.save_report(s.run_id, ReportStage::baseline, before->report);
  auto status_before = ctx.root->read_file("/var/lib/dpkg/status");
  if (!status_before) return stop("cannot read the dpkg status: " + status_before.error().to_string());
  ctx.status_file = paths_.state_dir + "/runs/run-" + std::to_string(s.run_id) + ".status";
  if (auto w = base::write_file_atomic(ctx.status_file, *status_before, 0600); !w)
    return stop(w.error().to_string());

  // 4. Snapshot, recorded before the command starts.
  (void)db.set_phase(s.run_id, RunPhase::snapshot);
  if (!ctx.backend) return true;
  auto snap = ctx.backend->create("pre-run" + std::to_string(s.run_id),
                                  {{"run", std::to_string(s.run_id)}, {"command", join(s.command)}});
  if (!snap) {
    if (!hook || policy_.snapshot.required)
      return stop("the snapshot was not taken: " + snap.error().to_string());
    s.notes.push_back("warning: no snapshot was taken (" + snap.error().to_string() +
                      "): a regression can close the gate but not roll back");
    return true;
  }
  SnapshotRecord rec;
  rec.id = snap->id;
  rec.backend = snap->backend;
  rec.label = snap->label;
  rec.location = snap->location;
  rec.root = ctx.root_key;
  rec.created_unix = snap->created_unix;
  rec.run_id = s.run_id;
  (void)db.record_snapshot(rec);
  (void)db.set_run_snapshot(s.run_id, snap->id);
  s.snapshot = snap->id;
  say(options_, "snapshot " + snap->id + " taken (" + ctx.backend->name() + ")");
  return true;
}

// The environment problems that make a run pointless or unsafe; nullopt when there is none.
std::optional<std::string> RunPipeline::preflight(Context& ctx, Mode mode) {
  if (mode == Mode::command) {
    auto locks = wait_for_dpkg_locks(*ctx.root, policy_.preflight.lock_timeout, [&](int pid, const std::string& p) {
      say(options_, fmt::format("waiting for the package manager (pid {}) to release {}", pid, p));
    });
    if (!locks) return locks.error().to_string();
  }
  CheckSessionOptions dpkg_only;
  dpkg_only.check_ids = {"dpkg-state"};
  auto dpkg = run_check_session(options_, policy_, dpkg_only);
  if (!dpkg) return dpkg.error().error.to_string();
  if (dpkg->report.blocking_count() > 0) {
    const auto& f = *std::find_if(dpkg->report.findings.begin(), dpkg->report.findings.end(), checks::is_blocking);
    return "dpkg is already interrupted (" + f.message +
           "); snapshotting a broken state is useless: run `dpkg --configure -a` first";
  }
  struct statvfs vfs {};
  if (::fstatvfs(ctx.root->fd(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
    return "the root filesystem " + ctx.root->path() + " is read-only";
  if (std::uint64_t f = free_bytes(ctx.root->fd()); f < policy_.preflight.min_free_root)
    return "only " + base::human_bytes(f) + " free on the root (policy preflight.min_free_root is " +
           base::human_bytes(policy_.preflight.min_free_root) + ")";
  if (auto boot = ctx.root->open("/boot", O_PATH | O_DIRECTORY)) {
    if (std::uint64_t f = free_bytes(boot->get()); f < policy_.preflight.min_free_boot)
      return "only " + base::human_bytes(f) + " free on /boot (policy preflight.min_free_boot is " +
             base::human_bytes(policy_.preflight.min_free_boot) + ")";
  }
  if (policy_.backup.max_age) {
    CheckSessionOptions backup_only;
    backup_only.check_ids = {"backup"};
    auto backup = run_check_session(options_, policy_, backup_only);
    if (backup && backup->report.blocking_count() > 0)
      return "the last backup is older than the policy allows: " + backup->report.findings.front().message;
  }
  return std::nullopt;
}

// Finds the snapshot backend for the root; a problem only when the policy requires a
// snapshot and there is none.
std::optional<std::string> RunPipeline::prepare_backend(Context& ctx) {
  if (policy_.snapshot.backend == policies::SnapshotBackendKind::none) {
    if (policy_.snapshot.required) return "the policy requires a snapshot but sets snapshot.backend = \"none\"";
    return std::nullopt;
  }
  auto layout = snapshots::detect_layout(options_.root);
  base::Result<std::unique_ptr<snapshots::SnapshotBackend>> backend =
      layout ? snapshots::make_backend(*layout, policy_, paths_.state_dir)
             : base::Result<std::unique_ptr<snapshots::SnapshotBackend>>(tl::unexpected(layout.error()));
  if (backend) {
    ctx.backend = std::move(*backend);
    return std::nullopt;
  }
  if (policy_.snapshot.required)
    return "no snapshot backend for " + options_.root + " and the policy requires one: " + backend.error().to_string();
  ctx.summary.notes.push_back("no snapshot was taken (" + backend.error().to_string() +
                              "): a failed upgrade can close the gate but not roll back");
  return std::nullopt;
}

// Steps 6-8, shared with recover(): what changed, post-checks, verdict and action.
RunSummary RunPipeline::finish_after_command(Context& ctx, policies::OnFail on_fail) {
  RunSummary& s = ctx.summary;
  StateStore& db = *ctx.state;
  auto phase = [&](RunPhase p) { (void)db.set_phase(s.run_id, p); };
  auto finish = [&](RunOutcome outcome, int code, const std::string& message) {
    s.outcome = outcome;
    s.exit_code = code;
    s.message = message;
    (void)db.finish_run(s.run_id, outcome, code, message);
    base::log(code == kExitOk ? base::LogLevel::info : base::LogLevel::warning, kRunMessageId,
              "run " + std::to_string(s.run_id) + ": " + message,
              {{"UG_RUN_ID", std::to_string(s.run_id)}, {"UG_OUTCOME", to_string(outcome)}});
    return s;
  };

  // 6. What changed: the dpkg status diff.
  phase(RunPhase::changes);
  base::Root host = *base::Root::open("/");
  auto before = host.read_file(ctx.status_file);
  auto after = ctx.root->read_file("/var/lib/dpkg/status");
  if (before && after) {
    if (auto diff = checks::diff_status(*before, *after)) s.changes = std::move(*diff);
  }
  std::vector<PackageChange> all_changes;
  for (const auto* v : {&s.changes.installed, &s.changes.removed, &s.changes.upgraded, &s.changes.downgraded,
                        &s.changes.state_changed}) {
    for (const auto& c : *v) all_changes.push_back(PackageChange{c.package, c.before_version, c.after_version});
  }
  (void)db.save_package_changes(s.run_id, all_changes);

  // 7. Post-checks: scoped to the change plus the always-on checks, against the baseline.
  phase(RunPhase::post_checks);
  CheckSessionOptions post;
  post.scope_changed = true;
  post.packages_from = ctx.status_file;
  post.needed_index = needed_index_path(paths_.state_dir, s.run_id);
  // The changed packages' files before the command, from the snapshot: what a removed or
  // replaced library was called, so that whatever needed it is checked too.
  std::set<std::string> changed;
  for (const auto* v : {&s.changes.installed, &s.changes.removed, &s.changes.upgraded, &s.changes.downgraded,
                        &s.changes.state_changed}) {
    for (const auto& c : *v) changed.insert(c.package);
  }
  std::optional<base::Root> before_root;
  if (ctx.backend && s.snapshot) {
    if (auto snap = ctx.backend->open(*s.snapshot)) before_root.emplace(std::move(*snap));
  }
  if (before_root) {
    add_package_paths(*before_root, changed, post.extra_paths);
  } else if (!changed.empty()) {
    post.scope_changed = false;  // without the old file lists only a full check is sure
    s.notes.push_back("no snapshot to read the old package file lists from: the post-checks ran in full");
  }
  auto checked = run_check_session(ctx.options, policy_, post);
  if (!checked) {
    return finish(RunOutcome::failed, kExitEnvironment,
                  "the post-checks could not run: " + checked.error().error.to_string());
  }
  checks::Report report = std::move(checked->report);
  auto baseline = db.load_report(s.run_id, ReportStage::baseline);
  std::vector<std::string> keys;
  if (baseline && *baseline) {
    for (const auto& f : (*baseline)->report.findings) keys.push_back(f.key());
  }
  checks::apply_baseline(report, keys);
  (void)db.save_report(s.run_id, ReportStage::post, report);
  s.post = report;

  // 8. Verdict and action.
  phase(RunPhase::verdict);
  if (report.verdict == checks::Verdict::pass) {
    if (s.snapshot) (void)db.set_snapshot_known_good(*s.snapshot, true);
    std::vector<std::string> accepted;
    for (const auto& f : report.findings) accepted.push_back(f.key());
    (void)db.save_baseline(ctx.root_key, accepted, s.run_id);
    if (ctx.backend) {
      // Retention: keep the newest snapshot.keep, never the last known-good or a pinned one.
      std::vector<std::string> keep_ids;
      if (s.snapshot) keep_ids.push_back(*s.snapshot);
      if (auto all = db.list_snapshots(ctx.root_key)) {
        for (const auto& rec : *all) {
          if (rec.pinned_reason) keep_ids.push_back(rec.id);
        }
      }
      if (auto pruned = ctx.backend->prune(policy_.snapshot.keep, keep_ids)) {
        for (const auto& id : *pruned) (void)db.set_snapshot_state(id, SnapshotState::deleted);
        if (!pruned->empty()) s.notes.push_back("pruned " + std::to_string(pruned->size()) + " old snapshots");
      }
    }
    // A gate this run closed (an earlier dpkg invocation of the same apt process) opens
    // again once the run as a whole passes.
    if (auto gate = db.get_gate(); gate && gate->closed && gate->run_id == s.run_id) {
      GateState open;
      open.reason = "run " + std::to_string(s.run_id) + " passed its checks";
      open.run_id = s.run_id;
      open.changed_by = "run " + std::to_string(s.run_id);
      if (auto g = change_gate(db, paths_.state_dir, open, ctx.root->is_host_root())) s.notes.push_back(*g);
    }
    if (s.snapshot)
      s.notes.push_back("to undo this upgrade: upgrade-guard rollback --to " + *s.snapshot +
                        (ctx.root->is_host_root() ? "" : " --root " + ctx.root->path()));
    if (s.snapshot) {
      if (auto note = arm_boot_trial(db, *ctx.root, s.run_id, *s.snapshot, ctx.backend.get()); !note.empty())
        s.notes.push_back(note);
    }
    return finish(RunOutcome::passed, kExitOk, "the upgrade passed its checks");
  }

  std::size_t regressions = report.blocking_count();
  std::string broke = fmt::format("{} new blocking finding{} after `{}` ({})", regressions,
                                  regressions == 1 ? "" : "s", join(s.command), s.command_status);
  policies::OnFail action = on_fail;
  if (action == policies::OnFail::rollback && (!ctx.backend || !s.snapshot)) {
    s.notes.push_back("the policy says rollback, but no snapshot was taken: closing the gate instead");
    action = policies::OnFail::block_reboot;
  }
  if (action == policies::OnFail::rollback) {
    phase(RunPhase::rollback);
    auto rolled = rollback_with_trial(db, *ctx.root, *ctx.backend, policy_, paths_.state_dir, s.run_id, *s.snapshot);
    if (!rolled) {
      s.notes.push_back("the rollback failed: " + rolled.error().to_string());
      action = policies::OnFail::block_reboot;
    } else {
      s.rollback = *rolled;
      for (const auto& n : rolled->notes) s.notes.push_back(n);
      if (!rolled->broken.empty()) {
        SnapshotRecord broken;
        broken.id = rolled->broken;
        broken.backend = ctx.backend->name();
        broken.label = "broken root of run " + std::to_string(s.run_id);
        broken.location = rolled->broken;
        broken.root = ctx.root_key;
        broken.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch()).count();
        broken.run_id = s.run_id;
        broken.pinned_reason = "broken root of run " + std::to_string(s.run_id);
        (void)db.record_snapshot(broken);
      }
      if (rolled->takes_effect_now) {
        // Check the restored root: the same checks, on what the path now shows.
        CheckSessionOptions again;
        auto restored = run_check_session(ctx.options, policy_, again);
        if (restored) {
          checks::apply_baseline(restored->report, keys);
          (void)db.save_report(s.run_id, ReportStage::restored, restored->report);
          s.restored = restored->report;
        }
        s.notes.push_back("the root is restored to snapshot " + *s.snapshot + "; the broken root is kept as " +
                          rolled->broken);
      } else {
        s.notes.push_back("the root will be restored to snapshot " + *s.snapshot +
                          " at the next boot; the broken root is kept as " + rolled->broken);
      }
      return finish(RunOutcome::rolled_back, kExitRolledBack, broke + "; rolled back to " + *s.snapshot);
    }
  }
  if (action == policies::OnFail::block_reboot) {
    GateState gate;
    gate.closed = true;
    gate.reason = broke;
    gate.run_id = s.run_id;
    gate.changed_by = "run " + std::to_string(s.run_id);
    auto g = change_gate(db, paths_.state_dir, gate, ctx.root->is_host_root());
    if (!g) s.notes.push_back("closing the gate failed: " + g.error().to_string());
    else s.notes.push_back(*g);
    s.notes.push_back("the reboot gate is closed: `upgrade-guard gate status` exits 1 until the findings are fixed");
    return finish(RunOutcome::gated, kExitChecksFailed, broke + "; reboot gate closed");
  }
  return finish(RunOutcome::warned, kExitChecksFailed, broke + " (policy on_fail = warn: nothing was done)");
}

std::vector<RunSummary> RunPipeline::recover() {
  std::vector<RunSummary> out;
  auto lock = GuardLock::acquire(paths_.run_dir);
  if (!lock) {
    RunSummary s;
    s.message = lock.error().to_string();
    s.exit_code = kExitEnvironment;
    out.push_back(s);
    return out;
  }
  auto state = StateStore::open(paths_.state_dir);
  if (!state) {
    RunSummary s;
    s.message = state.error().to_string();
    s.exit_code = kExitEnvironment;
    out.push_back(s);
    return out;
  }
  auto runs = state->unfinished_runs();
  if (!runs) return out;
  // A rollback started by hand (`upgrade-guard rollback`) and interrupted: complete it.
  if (auto layout = snapshots::detect_layout(options_.root)) {
    if (auto backend = snapshots::make_backend(*layout, policy_, paths_.state_dir)) {
      if (auto pending = (*backend)->pending_rollbacks()) {
        for (const auto& p : *pending) {
          bool run_owned = std::any_of(runs->begin(), runs->end(), [](const RunRecord& r) {
            return r.phase == RunPhase::rollback && !run_process_alive(r);
          });
          if (run_owned) break;  // finished with its run below
          RunSummary s;
          s.snapshot = p.snapshot_id;
          auto done = (*backend)->resume_rollback(p.journal, snapshots::ResumeMode::complete);
          if (done) {
            s.rollback = *done;
            s.outcome = RunOutcome::rolled_back;
            s.exit_code = kExitOk;
            s.message = "the interrupted rollback to " + p.snapshot_id + " was completed (" + done->method + ")";
          } else {
            s.outcome = RunOutcome::failed;
            s.exit_code = kExitEnvironment;
            s.message = "the interrupted rollback to " + p.snapshot_id + " could not be completed: " +
                        done.error().to_string();
          }
          out.push_back(s);
        }
      }
    }
  }
  for (const auto& run : *runs) {
    if (run_process_alive(run)) continue;
    Context ctx{options_};
    ctx.options.root = run.root;
    ctx.state.emplace(std::move(*state));
    RunSummary& s = ctx.summary;
    s.run_id = run.id;
    s.command = run.command;
    s.snapshot = run.snapshot_id;
    s.command_status = run.command_status.value_or("interrupted");
    s.notes.push_back(std::string("run ") + std::to_string(run.id) + " was interrupted during " +
                      to_string(run.phase));
    auto root = base::Root::open(run.root);
    if (run.phase < RunPhase::command || !root) {
      (void)ctx.state->mark_interrupted(run.id);
      s.outcome = RunOutcome::interrupted;
      s.exit_code = kExitOk;
      s.message = run.phase < RunPhase::command ? "the command never started: nothing to finish"
                                                : "its root " + run.root + " is gone: " + root.error().to_string();
    } else {
      ctx.root.emplace(std::move(*root));
      ctx.root_key = run.root;
      ctx.status_file = paths_.state_dir + "/runs/run-" + std::to_string(run.id) + ".status";
      if (run.snapshot_id) {
        auto layout = snapshots::detect_layout(run.root);
        if (layout) {
          if (auto backend = snapshots::make_backend(*layout, policy_, paths_.state_dir)) ctx.backend = std::move(*backend);
        }
      }
      if (run.phase == RunPhase::rollback && ctx.backend) {
        auto pending = ctx.backend->pending_rollbacks();
        if (pending && !pending->empty()) {
          auto done = ctx.backend->resume_rollback(pending->front().journal, snapshots::ResumeMode::complete);
          if (done) {
            s.rollback = *done;
            (void)ctx.state->finish_run(run.id, RunOutcome::rolled_back, kExitRolledBack,
                                        "rollback completed by recover");
            s.outcome = RunOutcome::rolled_back;
            s.exit_code = kExitRolledBack;
            s.message = "the interrupted rollback was completed";
            state.emplace(std::move(*ctx.state));
            out.push_back(s);
            continue;
          }
        }
      }
      // Wait for a package manager the dead guard left running before judging its work.
      (void)wait_for_dpkg_locks(*ctx.root, policy_.preflight.lock_timeout, {});
      bool hook_run = run.command_status && run.command_status->rfind(kHookStatus, 0) == 0;
      finish_after_command(ctx, hook_run ? policy_.hook.on_fail : policy_.on_fail);
    }
    state.emplace(std::move(*ctx.state));
    out.push_back(s);
  }
  return out;
}

std::vector<std::string> interrupted_run_notices(const std::string& state_dir) {
  std::vector<std::string> out;
  struct stat st {};
  if (::stat(StateStore::database_path(state_dir).c_str(), &st) != 0) return out;
  auto state = StateStore::open(state_dir);
  if (!state) return out;
  auto runs = state->unfinished_runs();
  if (!runs) return out;
  for (const auto& run : *runs) {
    if (run_process_alive(run)) continue;
    out.push_back(fmt::format("run {} was interrupted during the {} phase: run `upgrade-guard recover`", run.id,
                              to_string(run.phase)));
  }
  return out;
}

std::string render_run_summary(const RunSummary& s, bool color) {
  auto bold = [color](const std::string& t) { return color ? "\x1b[1m" + t + "\x1b[0m" : t; };
  std::string out;
  out += bold(fmt::format("upgrade-guard run {}: {}", s.run_id, to_string(s.outcome))) + "\n";
  if (!s.command.empty()) out += "  command:  " + join(s.command) + " (" + s.command_status + ")\n";
  if (s.snapshot) out += "  snapshot: " + *s.snapshot + "\n";
  if (!s.log_file.empty()) out += "  log:      " + s.log_file + "\n";
  const auto& c = s.changes;
  if (!c.empty()) {
    out += fmt::format("  changed:  {} upgraded, {} installed, {} removed, {} downgraded, {} changed state\n",
                       c.upgraded.size(), c.installed.size(), c.removed.size(), c.downgraded.size(),
                       c.state_changed.size());
    auto list = [&](const char* what, const std::vector<checks::PackageChange>& v) {
      std::size_t shown = 0;
      for (const auto& p : v) {
        if (++shown > 20) {
          out += fmt::format("            ... and {} more\n", v.size() - 20);
          break;
        }
        out += fmt::format("            {} {} {}{}\n", what, p.package, p.before_version,
                           p.after_version.empty() ? "" : " -> " + p.after_version);
      }
    };
    list("upgraded  ", c.upgraded);
    list("installed ", c.installed);
    list("removed   ", c.removed);
    list("downgraded", c.downgraded);
  }
  if (s.post) {
    out += "\nPost-upgrade checks (only findings that are new since the baseline block):\n";
    out += checks::render_human(*s.post, color);
  }
  if (s.restored) {
    out += "\nChecks of the restored root:\n";
    out += checks::render_human(*s.restored, color);
  }
  out += "\n" + bold(s.message) + "\n";
  for (const auto& n : s.notes) out += "  - " + n + "\n";
  return out;
}

std::string render_run_json(const RunSummary& s) {
  nlohmann::json j;
  j["schema"] = 1;
  j["run"] = s.run_id;
  j["outcome"] = to_string(s.outcome);
  j["exit_code"] = s.exit_code;
  j["command"] = s.command;
  j["command_status"] = s.command_status;
  j["snapshot"] = s.snapshot ? nlohmann::json(*s.snapshot) : nlohmann::json(nullptr);
  j["log"] = s.log_file;
  j["message"] = s.message;
  j["notes"] = s.notes;
  auto changes = [](const std::vector<checks::PackageChange>& v) {
    auto a = nlohmann::json::array();
    for (const auto& p : v) a.push_back({{"package", p.package}, {"before", p.before_version}, {"after", p.after_version}});
    return a;
  };
  j["changes"] = {{"upgraded", changes(s.changes.upgraded)},
                  {"installed", changes(s.changes.installed)},
                  {"removed", changes(s.changes.removed)},
                  {"downgraded", changes(s.changes.downgraded)},
                  {"state_changed", changes(s.changes.state_changed)}};
  if (s.post) j["post"] = checks::to_json(*s.post);
  if (s.restored) j["restored"] = checks::to_json(*s.restored);
  if (s.rollback) {
    j["rollback"] = {{"snapshot", s.rollback->snapshot_id}, {"method", s.rollback->method},
                     {"takes_effect_now", s.rollback->takes_effect_now}, {"broken", s.rollback->broken},
                     {"preserved", s.rollback->preserved}, {"nested", s.rollback->nested}};
  }
  return j.dump(2);
}

}  // namespace guard
