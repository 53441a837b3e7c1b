// upgrade-guard snapshot list|create|delete|prune, and upgrade-guard rollback.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "guard/cli/render.h"
#include "guard/core/locks.h"
#include "guard/core/retention.h"
#include "guard/run/pipeline.h"
#include "snapshots/backend.h"
#include "guard/boot/grub_counter.h"
#include "snapshots/layout.h"

namespace guard::cli {
namespace {

nlohmann::json info_json(const snapshots::SnapshotInfo& s) {
  return {{"id", s.id},
          {"backend", s.backend},
          {"label", s.label},
          {"location", s.location},
          {"created_unix", s.created_unix},
          {"kind", s.kind},
          {"complete", s.complete},
          {"boot_captured", s.boot_captured}};
}

// "incomplete", "broken", "pinned", "known-good", "" for what a snapshot is beyond a snapshot.
std::string state_of(const snapshots::SnapshotInfo& s, const std::vector<state::SnapshotRecord>& recorded) {
  if (!s.complete) return "incomplete";
  if (s.kind == "broken") return "broken";
  auto rec = std::find_if(recorded.begin(), recorded.end(), [&](const auto& r) { return r.id == s.id; });
  if (rec == recorded.end()) return "";
  if (rec->known_good) return "known-good";
  if (rec->pinned_reason) return "pinned";
  return "";
}

// Records that snapshot `id` is gone; one the store never knew of is fine.
void record_deleted(state::StateStore& store, const std::string& id) {
  auto w = store.set_snapshot_state(id, state::SnapshotState::deleted);
  if (!w && w.error().message.find("not found") == std::string::npos)
    print_problem("warning: snapshot " + id + " is deleted but that is not recorded: " + w.error().to_string());
}

// The parts a snapshot subcommand needs (root only), with the guard's lock when it changes
// snapshots (a run's rollback target must not go away under it), or the exit code set.
struct SnapshotParts {
  RunContext* ctx = nullptr;
  snapshots::SnapshotBackend* backend = nullptr;
  std::optional<GuardLock> lock;
};
// `reading`: the command only reads the state store (opened read-only).
std::optional<SnapshotParts> parts(CliContext& ctx, const char* what, bool changes = true, bool reading = false) {
  if ((ctx.exit_code = require_root(what)) != kExitOk) return std::nullopt;
  auto run_ctx = ctx.invocation().context(reading);
  if (!run_ctx) {
    ctx.exit_code = report_error(run_ctx.error().error, run_ctx.error().exit_code);
    return std::nullopt;
  }
  auto backend = (*run_ctx)->snapshots.get();
  if (!backend) {
    ctx.exit_code = report_error(backend.error(), kExitEnvironment);
    return std::nullopt;
  }
  SnapshotParts out{*run_ctx, *backend, std::nullopt};
  if (changes) {
    auto held = GuardLock::acquire((*run_ctx)->paths.run_dir);
    if (!held) {
      ctx.exit_code = report_error(held.error(), kExitEnvironment);
      return std::nullopt;
    }
    out.lock.emplace(std::move(*held));
  }
  return out;
}

void list(CliContext& ctx) {
  auto p = parts(ctx, "snapshot list", /*changes=*/false, /*reading=*/true);
  if (!p) return;
  auto all = p->backend->list();
  if (!all) {
    ctx.exit_code = report_error(all.error(), kExitEnvironment);
    return;
  }
  auto recorded = p->ctx->store.list_snapshots(p->ctx->root_key);
  if (!recorded) {
    ctx.exit_code = report_error(recorded.error(), kExitEnvironment);
    return;
  }
  auto open = p->ctx->store.open_rollbacks(p->ctx->root_key);
  if (!open) {
    ctx.exit_code = report_error(open.error(), kExitEnvironment);
    return;
  }
  auto layout = snapshots::detect_layout(ctx.options.root);
  if (ctx.options.json) {
    nlohmann::json j{{"schema", 1}};
    if (layout) j["layout"] = nlohmann::json::parse(snapshots::render_layout_json(*layout));
    auto counter = boot::boot_counter_impossible(p->ctx->root);
    j["boot_counter"] = counter ? nlohmann::json(*counter) : nlohmann::json("possible");
    auto& arr = j["snapshots"] = nlohmann::json::array();
    for (const auto& s : *all) {
      auto sj = info_json(s);
      sj["state"] = state_of(s, *recorded);
      arr.push_back(sj);
    }
    auto& rj = j["unfinished_rollbacks"] = nlohmann::json::array();
    for (const auto& r : *open)
      rj.push_back({{"id", r.id}, {"snapshot", r.snapshot_id}, {"state", state::to_string(r.state)}, {"message", r.message}});
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    if (layout) std::fputs(snapshots::render_layout_text(*layout).c_str(), stdout);
    if (auto counter = boot::boot_counter_impossible(p->ctx->root))
      std::printf("boot counter: %s\n", counter->c_str());
    else if (auto env = boot::counter_env_path(p->ctx->root); env && p->ctx->root.open("/boot/grub/grub.cfg", O_PATH))
      std::printf("boot counter: GRUB's environment block %s\n", env->c_str());
    std::printf("\n%-40s %-8s %-20s %-11s %s\n", "ID", "BACKEND", "CREATED", "STATE", "LABEL");
    for (const auto& s : *all)
      std::printf("%-40s %-8s %-20s %-11s %s\n", s.id.c_str(), s.backend.c_str(), local_time(s.created_unix).c_str(),
                  state_of(s, *recorded).c_str(), s.label.c_str());
    if (all->empty()) std::printf("(no snapshots yet)\n");
    for (const auto& r : *open)
      std::printf("unfinished rollback %lld to %s (%s)%s%s: `upgrade-guard recover` finishes it\n",
                  static_cast<long long>(r.id), r.snapshot_id.c_str(), state::to_string(r.state),
                  r.message.empty() ? "" : ": ", r.message.c_str());
  }
  ctx.exit_code = kExitOk;
}

void create(CliContext& ctx, const std::string& label) {
  auto p = parts(ctx, "snapshot create");
  if (!p) return;
  auto s = p->backend->create(label, {{"by", "snapshot create"}});
  if (!s) {
    ctx.exit_code = report_error(s.error(), kExitEnvironment);
    return;
  }
  if (auto w = p->ctx->store.record_snapshot(snapshot_record(*s, p->ctx->root_key, std::nullopt)); !w)
    print_problem("warning: snapshot " + s->id + " is taken but not recorded (" + w.error().to_string() +
                  "): `snapshot list` shows it");
  if (ctx.options.json) {
    std::printf("%s\n", info_json(*s).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("snapshot %s created (%s)\n", s->id.c_str(), s->location.c_str());
  }
  ctx.exit_code = kExitOk;
}

void remove(CliContext& ctx, const std::string& id, bool force) {
  auto p = parts(ctx, "snapshot delete");
  if (!p) return;
  auto prot = protected_snapshots(p->ctx->store, p->ctx->root_key, /*pinned=*/!force);
  if (!prot) {
    ctx.exit_code = report_error(prot.error(), kExitEnvironment);
    return;
  }
  if (std::find(prot->begin(), prot->end(), id) != prot->end()) {
    std::fprintf(stderr,
                 "upgrade-guard: snapshot %s is protected: %sthe last known-good, a pending boot trial's, an "
                 "unfinished run's or an unfinished rollback's; not deleted\n",
                 id.c_str(), force ? "" : "pinned (--force deletes it), ");
    ctx.exit_code = kExitEnvironment;
    return;
  }
  if (auto r = p->backend->remove(id); !r) {
    ctx.exit_code = report_error(r.error(), kExitEnvironment);
    return;
  }
  record_deleted(p->ctx->store, id);
  std::printf("snapshot %s deleted\n", id.c_str());
  ctx.exit_code = kExitOk;
}

void prune(CliContext& ctx) {
  auto p = parts(ctx, "snapshot prune");
  if (!p) return;
  auto prot = protected_snapshots(p->ctx->store, p->ctx->root_key);
  if (!prot) {
    ctx.exit_code = report_error(prot.error(), kExitEnvironment);
    return;
  }
  auto removed = p->backend->prune(p->ctx->policy.snapshot.keep, p->ctx->policy.snapshot.keep_broken, *prot);
  if (!removed) {
    ctx.exit_code = report_error(removed.error(), kExitEnvironment);
    return;
  }
  for (const auto& r : *removed) {
    record_deleted(p->ctx->store, r);
    std::printf("deleted %s\n", r.c_str());
  }
  std::printf("%zu snapshots deleted\n", removed->size());
  ctx.exit_code = kExitOk;
}

void rollback(CliContext& ctx, const std::string& to) {
  auto p = parts(ctx, "rollback", /*changes=*/false);  // the pipeline takes the lock
  if (!p) return;
  std::string target = to;
  if (target.empty()) {
    auto good = p->ctx->store.last_known_good(p->ctx->root_key);
    if (!good) {
      ctx.exit_code = report_error(good.error(), kExitEnvironment);
      return;
    }
    if (*good) target = (*good)->id;
  }
  if (target.empty()) {
    std::fprintf(stderr, "upgrade-guard: no known-good snapshot recorded: name one with --to ID "
                         "(see `upgrade-guard snapshot list`)\n");
    ctx.exit_code = kExitUsage;
    return;
  }
  run::RunSummary s = run::RunPipeline(*p->ctx).roll_back_to(target);
  if (!s.rollback) {
    print_problem(s.message);
    for (const auto& n : s.notes) print_problem(n, /*indent=*/true);
    ctx.exit_code = s.exit_code;
    return;
  }
  const snapshots::RollbackResult& r = *s.rollback;
  if (ctx.options.json) {
    nlohmann::json j{{"schema", 1},          {"run", s.run_id},          {"snapshot", r.snapshot_id},
                     {"method", r.method},   {"takes_effect_now", r.takes_effect_now},
                     {"broken", r.broken},   {"preserved", r.preserved}, {"nested", r.nested},
                     {"notes", s.notes}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("rolled back to %s (%s); the previous root is kept as %s\n", r.snapshot_id.c_str(), r.method.c_str(),
                r.broken.c_str());
    std::printf(r.takes_effect_now ? "the root shows the restored tree now\n"
                                   : "the restored root is used from the next boot on\n");
    for (const auto& n : s.notes) std::printf("  - %s\n", n.c_str());
  }
  ctx.exit_code = s.exit_code;
}

}  // namespace

void add_snapshot_commands(CLI::App& app, CliContext& ctx) {
  auto* snap = app.add_subcommand("snapshot", "List, create, delete or prune snapshots of the root");
  snap->require_subcommand(1);

  auto* list_cmd = snap->add_subcommand(
      "list",
      "Show the root's layout (what a snapshot covers and what it does not), its snapshots (STATE:\n"
      "known-good, pinned, broken: a root a rollback replaced and kept, incomplete: taking it was\n"
      "interrupted) and unfinished rollbacks");
  list_cmd->callback([&ctx] { list(ctx); });

  auto label = std::make_shared<std::string>("manual");
  auto* create_cmd =
      snap->add_subcommand("create", "Take a snapshot now (refused, exit 4, when free space is short)");
  create_cmd->add_option("--label", *label, "A label, part of the id")->capture_default_str();
  create_cmd->callback([&ctx, label] { create(ctx, *label); });

  auto id = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto* del = snap->add_subcommand(
      "delete",
      "Delete a snapshot (refused, exit 4, for the last known-good one, a pending boot trial's, an\n"
      "unfinished run's or rollback's, the running system's root, a pinned one without --force, and\n"
      "while another upgrade-guard runs)");
  del->add_option("id", *id, "The snapshot id")->required();
  del->add_flag("--force", *force, "Delete a pinned snapshot too");
  del->callback([&ctx, id, force] { remove(ctx, *id, *force); });

  auto* prune_cmd = snap->add_subcommand(
      "prune",
      "Delete incomplete snapshots, then keep the newest snapshot.keep snapshots and the newest\n"
      "snapshot.keep_broken broken roots (policy) and every protected one, and delete the rest");
  prune_cmd->callback([&ctx] { prune(ctx); });

  auto to = std::make_shared<std::string>();
  auto* rollback_cmd = app.add_subcommand(
      "rollback",
      "Roll the root back to a snapshot (default: the newest known-good one): the policy's preserve\n"
      "paths and nested subvolumes are carried over, /boot restored, the current root kept as a\n"
      "snapshot. With --root DIR it takes effect at once; for the live root at the next boot. It is\n"
      "recorded like a run: if it is interrupted, new runs are refused and `recover` completes it.\n"
      "The root rolled back is the subvolume fstab, the kernel command line and grub.cfg pin (subvol=),\n"
      "also when running from a snapshot (the GRUB fallback boot); pins that disagree are refused.");
  rollback_cmd->add_option("--to", *to, "The snapshot id");
  rollback_cmd->callback([&ctx, to] { rollback(ctx, *to); });
}

}  // namespace guard::cli
