// The real parts one upgrade-guard process works with, each made once and only when a command
// needs it: the policy, the root, the state store, the command runner, the snapshot backend
// (on first use: it may mount the btrfs top level), the systemd/logind bus (live root only),
// and the RunContext that hands them to the engines.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "base/process.h"
#include "base/root.h"
#include "guard/cli/cli.h"
#include "guard/core/run_context.h"
#include "guard/gate/gate.h"
#include "guard/gate/gate_bus.h"
#include "guard/state/store.h"
#include "policies/policy.h"

namespace guard::cli {

// An error with the exit code the CLI uses for it (2 usage or policy, 4 environment).
struct CliError {
  base::Error error;
  int exit_code = kExitEnvironment;
};

template <typename T>
using CliResult = tl::expected<T, CliError>;

class Invocation {
 public:
  explicit Invocation(const GlobalOptions& options) : options_(options) {}

  // The policy the options name (layered from config_dir, or --policy FILE); exit code 2.
  [[nodiscard]] CliResult<const policies::Policy*> policy();
  // The root the options name, opened once.
  [[nodiscard]] CliResult<const base::Root*> root();
  // The state store, opened (created when missing) once. The first open prints, on stderr,
  // the work a dead guard left unfinished (unless quiet_notices()). On a read-only filesystem
  // (a boot from a read-only snapshot) it is opened read-only: reads work, writes fail
  // saying so.
  [[nodiscard]] CliResult<state::StateStore*> store();
  // For reading commands (history, gate status, snapshot list, completion): the state store
  // when its database exists (never created); nullptr when there is legitimately none
  // (StateStore::present: a fresh install); an error when it was lost or cannot be read. As root on a writable
  // filesystem that is store() (one connection for the whole invocation); otherwise (not
  // root, a read-only filesystem) StateStore::open_read_only: migrated only where a writer
  // could, nothing written.
  [[nodiscard]] CliResult<state::StateStore*> existing_store();
  // Everything an engine needs, built once. `reading`: the first caller only reads (snapshot
  // list), so the store is existing_store()'s, read-only (store() when there is none yet).
  [[nodiscard]] CliResult<RunContext*> context(bool reading = false);
  base::CommandRunner& runner() { return runner_; }
  // Where a gate change is enforced at once: the running system (`root` is the host's "/")
  // with its systemd bus; nullopt for any other root.
  [[nodiscard]] std::optional<gate::Enforcement> enforcement(const base::Root& root);

  // recover and boot-check report unfinished work themselves.
  void quiet_notices() { notices_ = false; }

 private:
  void print_notices(const state::StateStore& store);

  const GlobalOptions& options_;
  std::optional<policies::Policy> policy_;
  std::optional<base::Root> root_;
  std::optional<state::StateStore> store_;
  std::optional<state::StateStore> read_store_;  // existing_store()'s, when store_ is not open
  base::SystemCommandRunner runner_;
  std::unique_ptr<SnapshotSource> snapshots_;
  std::unique_ptr<gate::GateBus> gate_bus_;
  std::unique_ptr<RunContext> context_;
  bool notices_ = true;
};

}  // namespace guard::cli
