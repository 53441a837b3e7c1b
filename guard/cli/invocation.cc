#include "guard/cli/invocation.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/strings.h"
#include "guard/bus/system_bus.h"
#include "guard/core/liveness.h"
#include "guard/run/pipeline.h"
#include "policies/loader.h"
#include "snapshots/layout.h"

namespace guard::cli {

CliResult<const policies::Policy*> Invocation::policy() {
  if (!policy_) {
    policies::LoadOptions load;
    load.policy_file = options_.policy_file;
    load.config_dir = options_.config_dir;
    auto loaded = policies::load_policy(load);
    if (!loaded) return tl::unexpected(CliError{loaded.error(), kExitUsage});
    policy_.emplace(std::move(*loaded));
  }
  return &*policy_;
}

CliResult<const base::Root*> Invocation::root() {
  if (!root_) {
    auto opened = base::Root::open(options_.root);
    if (!opened) return tl::unexpected(CliError{opened.error(), kExitEnvironment});
    root_.emplace(std::move(*opened));
  }
  return &*root_;
}

CliResult<state::StateStore*> Invocation::store() {
  if (!store_) {
    // Writing needs a writable filesystem; on a read-only one (booted from a read-only
    // snapshot) reading is still possible, and every write says why it failed.
    auto opened = state::StateStore::on_read_only_filesystem(options_.state_dir) ? state::StateStore::open_read_only(options_.state_dir)
                                                       : state::StateStore::open(options_.state_dir);
    if (!opened) return tl::unexpected(CliError{opened.error(), kExitEnvironment});
    store_.emplace(std::move(*opened));
    print_notices(*store_);
  }
  return &*store_;
}

CliResult<state::StateStore*> Invocation::existing_store() {
  if (store_) return &*store_;
  if (read_store_) return &*read_store_;
  // None on a fresh install; a lost, unreadable or foreign one is an error, never "no state".
  auto present = state::StateStore::present(options_.state_dir);
  if (!present) return tl::unexpected(CliError{present.error(), kExitEnvironment});
  if (!*present) return nullptr;
  // As root on a writable filesystem, the one store every later step uses (a second, read-only
  // connection beside it would see another view); read-only where writing is impossible (a
  // boot from a read-only snapshot) or not allowed (not root).
  if (::geteuid() == 0 && !state::StateStore::on_read_only_filesystem(options_.state_dir)) return store();
  auto opened = state::StateStore::open_read_only(options_.state_dir);
  if (!opened) return tl::unexpected(CliError{opened.error(), kExitEnvironment});
  read_store_.emplace(std::move(*opened));
  print_notices(*read_store_);
  return &*read_store_;
}

void Invocation::print_notices(const state::StateStore& store) {
  if (!notices_) return;
  notices_ = false;
  for (const auto& work : run::open_work(store))
    std::fprintf(stderr, "upgrade-guard: warning: %s\n", base::escape_control(work.text).c_str());
}

std::optional<gate::Enforcement> Invocation::enforcement(const base::Root& root) {
  if (!root.is_host_root()) return std::nullopt;
  if (!gate_bus_) gate_bus_ = bus::make_system_gate_bus();
  return gate::Enforcement{root, gate_bus_.get()};
}

CliResult<RunContext*> Invocation::context(bool reading) {
  if (context_) return context_.get();
  auto p = policy();
  if (!p) return tl::unexpected(p.error());
  auto r = root();
  if (!r) return tl::unexpected(r.error());
  auto s = reading ? existing_store() : store();
  if (s && *s == nullptr) s = store();
  if (!s) return tl::unexpected(s.error());
  const policies::Policy& policy = **p;
  const base::Root& root = **r;
  const std::string state_dir = options_.state_dir;
  const std::string root_dir = options_.root;
  snapshots_ = std::make_unique<SnapshotSource>(
      [&policy, state_dir, root_dir]() -> base::Result<std::unique_ptr<snapshots::SnapshotBackend>> {
        auto layout = snapshots::detect_layout(root_dir);
        if (!layout) return base::fail(layout.error());
        return snapshots::make_backend(*layout, policy, state_dir);
      });
  const bool live = root.is_host_root();
  if (live && !gate_bus_) gate_bus_ = bus::make_system_gate_bus();
  GuardPaths paths;
  paths.state_dir = options_.state_dir;
  paths.log_dir = options_.log_dir;
  paths.run_dir = options_.run_dir;
  context_ = std::unique_ptr<RunContext>(new RunContext{.policy = policy,
                                                        .root = root,
                                                        .root_key = root_key(root),
                                                        .live = live,
                                                        .store = **s,
                                                        .runner = runner_,
                                                        .snapshots = *snapshots_,
                                                        .gate_bus = gate_bus_.get(),
                                                        .paths = paths,
                                                        .pid = ::getpid(),
                                                        .hostname = host_name(),
                                                        .boot_id = current_boot_id(),
                                                        .progress = {}});
  context_->command_output_fd = options_.json ? STDERR_FILENO : STDOUT_FILENO;
  const bool json = options_.json;
  context_->progress = [json](std::string_view line) {
    if (!json) std::fprintf(stderr, "upgrade-guard: %s\n", base::escape_control(line).c_str());
  };
  return context_.get();
}

}  // namespace guard::cli
