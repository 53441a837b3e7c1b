// upgrade-guard snapshot list|create|delete|prune, and upgrade-guard rollback.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "guard/cli.h"
#include "guard/state.h"
#include "snapshots/backend.h"
#include "snapshots/layout.h"

namespace guard {
namespace {

struct Backend {
  snapshots::Layout layout;
  std::unique_ptr<snapshots::SnapshotBackend> backend;
};

// Root, policy and backend for a snapshot subcommand; prints the error and sets the exit
// code when something is missing.
std::optional<Backend> open_backend(CliContext& ctx) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "upgrade-guard: snapshots need root\n");
    ctx.exit_code = kExitEnvironment;
    return std::nullopt;
  }
  auto policy = load_cli_policy(ctx.options);
  if (!policy) {
    ctx.exit_code = report_error(policy.error(), kExitUsage);
    return std::nullopt;
  }
  auto layout = snapshots::detect_layout(ctx.options.root);
  if (!layout) {
    ctx.exit_code = report_error(layout.error(), kExitEnvironment);
    return std::nullopt;
  }
  auto backend = snapshots::make_backend(*layout, *policy, ctx.options.state_dir);
  if (!backend) {
    ctx.exit_code = report_error(backend.error(), kExitEnvironment);
    return std::nullopt;
  }
  return Backend{std::move(*layout), std::move(*backend)};
}

std::string root_key_of(const std::string& root) {
  auto r = base::Root::open(root);
  if (!r) return root;
  return r->is_host_root() ? std::string("/") : r->host_path("/");
}

std::string when(std::int64_t unix_time) {
  std::time_t t = static_cast<std::time_t>(unix_time);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

SnapshotRecord make_record(std::string id, std::string backend, std::string label, std::string location,
                           std::string root, std::int64_t created) {
  SnapshotRecord rec;
  rec.id = std::move(id);
  rec.backend = std::move(backend);
  rec.label = std::move(label);
  rec.location = std::move(location);
  rec.root = std::move(root);
  rec.created_unix = created;
  return rec;
}

nlohmann::json info_json(const snapshots::SnapshotInfo& s) {
  return {{"id", s.id},           {"backend", s.backend},           {"label", s.label},
          {"location", s.location}, {"created_unix", s.created_unix}, {"boot_captured", s.boot_captured}};
}

// Snapshots the state store protects from pruning: pinned, last known-good, pending trials.
std::vector<std::string> protected_ids(StateStore& store, const std::string& root) {
  std::vector<std::string> ids;
  if (auto good = store.last_known_good(root); good && *good) ids.push_back((*good)->id);
  if (auto all = store.list_snapshots(root)) {
    for (const auto& s : *all) {
      if (s.pinned_reason) ids.push_back(s.id);
    }
  }
  if (auto trial = store.pending_boot_trial(); trial && *trial) ids.push_back((*trial)->snapshot_id);
  return ids;
}

}  // namespace

void add_snapshot_commands(CLI::App& app, CliContext& ctx) {
  auto* snap = app.add_subcommand("snapshot", "List, create, delete or prune snapshots of the root");
  snap->require_subcommand(1);

  auto* list = snap->add_subcommand(
      "list", "Show the root's layout (what a snapshot covers and what it does not) and its snapshots");
  list->callback([&ctx] {
    auto b = open_backend(ctx);
    if (!b) return;
    auto all = b->backend->list();
    if (!all) {
      ctx.exit_code = report_error(all.error(), kExitEnvironment);
      return;
    }
    if (ctx.options.json) {
      nlohmann::json j{{"schema", 1}, {"layout", nlohmann::json::parse(snapshots::render_layout_json(b->layout))}};
      auto& arr = j["snapshots"] = nlohmann::json::array();
      for (const auto& s : *all) arr.push_back(info_json(s));
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::fputs(snapshots::render_layout_text(b->layout).c_str(), stdout);
      std::printf("\n%-40s %-8s %-20s %s\n", "ID", "BACKEND", "CREATED", "LABEL");
      for (const auto& s : *all)
        std::printf("%-40s %-8s %-20s %s\n", s.id.c_str(), s.backend.c_str(), when(s.created_unix).c_str(),
                    s.label.c_str());
      if (all->empty()) std::printf("(no snapshots yet)\n");
    }
    ctx.exit_code = kExitOk;
  });

  auto label = std::make_shared<std::string>("manual");
  auto* create = snap->add_subcommand("create", "Take a snapshot now (refused, exit 4, when free space is short)");
  create->add_option("--label", *label, "A label, part of the id")->capture_default_str();
  create->callback([&ctx, label] {
    auto b = open_backend(ctx);
    if (!b) return;
    auto s = b->backend->create(*label, {{"by", "snapshot create"}});
    if (!s) {
      ctx.exit_code = report_error(s.error(), kExitEnvironment);
      return;
    }
    if (auto store = StateStore::open(ctx.options.state_dir)) {
      (void)store->record_snapshot(
          make_record(s->id, s->backend, s->label, s->location, root_key_of(ctx.options.root), s->created_unix));
    }
    if (ctx.options.json) {
      std::printf("%s\n", info_json(*s).dump(2).c_str());
    } else {
      std::printf("snapshot %s created (%s)\n", s->id.c_str(), s->location.c_str());
    }
    ctx.exit_code = kExitOk;
  });

  auto id = std::make_shared<std::string>();
  auto* del = snap->add_subcommand("delete", "Delete a snapshot (refused for a pinned or last known-good one)");
  del->add_option("id", *id, "The snapshot id")->required();
  del->callback([&ctx, id] {
    auto b = open_backend(ctx);
    if (!b) return;
    auto store = StateStore::open(ctx.options.state_dir);
    if (store) {
      auto prot = protected_ids(*store, root_key_of(ctx.options.root));
      if (std::find(prot.begin(), prot.end(), *id) != prot.end()) {
        std::fprintf(stderr,
                     "upgrade-guard: snapshot %s is protected (pinned, last known-good or a pending boot "
                     "trial's); not deleted\n",
                     id->c_str());
        ctx.exit_code = kExitEnvironment;
        return;
      }
    }
    if (auto r = b->backend->remove(*id); !r) {
      ctx.exit_code = report_error(r.error(), kExitEnvironment);
      return;
    }
    if (store) (void)store->set_snapshot_state(*id, SnapshotState::deleted);
    std::printf("snapshot %s deleted\n", id->c_str());
    ctx.exit_code = kExitOk;
  });

  auto* prune = snap->add_subcommand(
      "prune", "Keep the newest snapshot.keep snapshots (policy) and every protected one; delete the rest");
  prune->callback([&ctx] {
    auto b = open_backend(ctx);
    if (!b) return;
    auto policy = load_cli_policy(ctx.options);
    std::vector<std::string> prot;
    auto store = StateStore::open(ctx.options.state_dir);
    if (store) prot = protected_ids(*store, root_key_of(ctx.options.root));
    auto removed = b->backend->prune(policy->snapshot.keep, prot);
    if (!removed) {
      ctx.exit_code = report_error(removed.error(), kExitEnvironment);
      return;
    }
    for (const auto& r : *removed) {
      if (store) (void)store->set_snapshot_state(r, SnapshotState::deleted);
      std::printf("deleted %s\n", r.c_str());
    }
    std::printf("%zu snapshots deleted\n", removed->size());
    ctx.exit_code = kExitOk;
  });

  auto to = std::make_shared<std::string>();
  auto* rollback = app.add_subcommand(
      "rollback",
      "Roll the root back to a snapshot (default: the newest known-good one): the policy's preserve\n"
      "paths and nested subvolumes are carried over, /boot restored, the current root kept as a\n"
      "snapshot. With --root DIR it takes effect at once; for the live root at the next boot.");
  rollback->add_option("--to", *to, "The snapshot id");
  rollback->callback([&ctx, to] {
    auto b = open_backend(ctx);
    if (!b) return;
    auto store = StateStore::open(ctx.options.state_dir);
    std::string target = *to;
    if (target.empty() && store) {
      if (auto good = store->last_known_good(root_key_of(ctx.options.root)); good && *good) target = (*good)->id;
    }
    if (target.empty()) {
      std::fprintf(stderr, "upgrade-guard: no known-good snapshot recorded: name one with --to ID "
                           "(see `upgrade-guard snapshot list`)\n");
      ctx.exit_code = kExitUsage;
      return;
    }
    auto r = b->backend->rollback(target, {});
    if (!r) {
      ctx.exit_code = report_error(r.error(), snapshots::is_refusal(r.error()) ? kExitEnvironment : kExitChecksFailed);
      return;
    }
    if (store && !r->broken.empty()) {
      SnapshotRecord broken = make_record(r->broken, b->backend->name(), "root before manual rollback", r->broken,
                                          root_key_of(ctx.options.root),
                                          std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
      broken.pinned_reason = "root replaced by rollback to " + target;
      (void)store->record_snapshot(broken);
    }
    if (ctx.options.json) {
      nlohmann::json j{{"schema", 1},          {"snapshot", r->snapshot_id}, {"method", r->method},
                       {"takes_effect_now", r->takes_effect_now}, {"broken", r->broken},
                       {"preserved", r->preserved}, {"nested", r->nested}, {"notes", r->notes}};
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("rolled back to %s (%s); the previous root is kept as %s\n", r->snapshot_id.c_str(),
                  r->method.c_str(), r->broken.c_str());
      std::printf(r->takes_effect_now ? "the root shows the restored tree now\n"
                                      : "the restored root is used from the next boot on\n");
      for (const auto& n : r->notes) std::printf("  - %s\n", n.c_str());
    }
    ctx.exit_code = kExitOk;
  });
}

}  // namespace guard
