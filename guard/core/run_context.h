// The one context every engine works in: the root, the state store, the snapshot backend, the
// command runner, the gate's bus, the paths and the policy. The CLI builds it once per process
// with the real parts (guard/cli/invocation.cc); unit tests build it with fakes (a runner that
// edits a fake dpkg status, a backend that records, a store in a temp dir).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/process.h"
#include "base/root.h"
#include "guard/state/store.h"
#include "policies/policy.h"
#include "snapshots/backend.h"

namespace guard::gate {
class GateBus;
}

namespace guard {

// Where upgrade-guard keeps what is not in the root. e.g. the defaults below; tests use temp dirs.
struct GuardPaths {
  std::string state_dir = "/var/lib/upgrade-guard";  // state.db, the gate file, runs/
  std::string log_dir = "/var/log/upgrade-guard";    // run-<id>.log: the output of guarded commands
  std::string run_dir = "/run/upgrade-guard";        // the guard's lock, apt's hook session
};

// A snapshot backend made on first use: making one may mount the btrfs top level, which most
// commands never need. e.g. SnapshotSource([&] { return snapshots::make_backend(layout, policy, dir); }).
class SnapshotSource {
 public:
  using Factory = std::function<base::Result<std::unique_ptr<snapshots::SnapshotBackend>>()>;
  explicit SnapshotSource(Factory factory) : factory_(std::move(factory)) {}

  // The backend, made by the first call; later calls return it, or the same error again.
  [[nodiscard]] base::Result<snapshots::SnapshotBackend*> get() {
    if (!made_) made_.emplace(factory_());
    if (!*made_) return base::fail(made_->error());
    return made_->value().get();
  }

 private:
  Factory factory_;
  std::optional<base::Result<std::unique_ptr<snapshots::SnapshotBackend>>> made_;
};

struct RunContext {
  const policies::Policy& policy;
  const base::Root& root;          // the guarded root, opened once
  std::string root_key;            // "/" for the live system, else the root's host path
  bool live = false;               // the root is the running system: boot trials, gate enforcement
  state::StateStore& store;        // opened once
  base::CommandRunner& runner;     // the guarded command and the checks' commands
  SnapshotSource& snapshots;
  gate::GateBus* gate_bus = nullptr;  // null: the reboot block is not enforced (a root nothing runs)
  GuardPaths paths;
  std::int64_t pid = 0;            // this process: the owner of the runs it begins
  std::string hostname;
  std::string boot_id;
  int command_output_fd = 1;       // where a guarded command's live output goes (stderr when stdout is JSON)
  // Lines for the operator while the work goes on ("snapshot ... taken"); may be empty.
  std::function<void(std::string_view)> progress;

  void say(std::string_view line) const {
    if (progress) progress(line);
  }
};

// The key a root's baseline, runs and snapshots are stored under: "/" for the live system,
// else its host path, e.g. "/srv/chroots/web1".
[[nodiscard]] std::string root_key(const base::Root& root);

}  // namespace guard
