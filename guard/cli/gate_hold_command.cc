// upgrade-guard gate hold: hold a logind block inhibitor while the reboot gate is closed.
// Run by upgrade-guard-gate.service (started by upgrade-guard-gate.path when the gate file
// changes, and at boot); hidden from --help because people use `gate status|close|open`.
// While it holds, it also keeps the runtime reboot-target drop-ins in place (re-creating
// them after a reboot) and removes them when the gate file says open.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "base/root.h"
#include "guard/bus/system_bus.h"
#include "guard/cli/cli.h"
#include "guard/gate/enforcement.h"
#include "guard/gate/gate_file.h"
#include "guard/state/store.h"

namespace guard::cli {

using gate::HoldEnd;
using gate::HoldUntil;
using gate::InhibitRequest;
namespace {

int run_gate_hold(const CliContext& ctx, int recheck_seconds) {
  const GlobalOptions& o = ctx.options;
  if (o.root != "/")
    return report_error(
        base::Error{"gate hold", o.root, 0, "the inhibitor guards the running system; --root is not supported here"},
        kExitUsage);
  const std::string gate_path = gate::gate_file_path(o.state_dir);
  // Unknown counts as closed: a gate file that cannot be read, or a state database that was
  // lost (the gate file may say open from before), keeps the block.
  auto known = [&o, &gate_path]() -> base::Result<gate::GateFile> {
    auto file = gate::read_gate_file(gate_path);
    if (!file) return base::fail(file.error());
    if (auto present = state::StateStore::present(o.state_dir); !present) return base::fail(present.error());
    return file;
  };
  auto file = known();
  if (!file) {
    report_error(file.error(), kExitEnvironment);
    file = gate::GateFile{true, "the gate's state is unknown (" + file.error().to_string() + ")", std::nullopt};
  }
  if (!file->closed) {
    std::printf("the reboot gate is open (%s): no inhibitor to hold\n", gate_path.c_str());
    return kExitOk;
  }

  InhibitRequest request;
  request.why = gate::inhibitor_why(file->reason);

  HoldUntil until;
  until.watch_dir = o.state_dir;
  until.recheck = std::chrono::seconds(recheck_seconds);
  until.released = [&known] {
    auto now = known();
    return now && !now->closed;  // unknown: keep holding
  };

  auto system_bus = bus::make_system_gate_bus();
  // The runtime drop-ins vanish at a reboot while the gate file persists: after a reboot
  // forced past the gate, this (started at boot) puts them back. Idempotent with `gate close`.
  auto root = base::Root::open("/");
  if (!root) return report_error(root.error(), kExitEnvironment);
  if (auto block = gate::apply_reboot_block(*root, file->reason, system_bus.get()); block) {
    std::printf("reboot block: %s\n", block->note.c_str());
  } else {
    report_error(block.error(), kExitEnvironment);  // the inhibitor still counts: keep going
  }
  std::printf("holding a logind %s inhibitor for %s while the reboot gate is closed (%s)\n", request.mode.c_str(),
              request.what.c_str(), gate_path.c_str());
  (void)std::fflush(stdout);  // a notice: failing to show it changes nothing about the hold
  auto ended = gate::hold_inhibitor(*system_bus, request, until);
  if (!ended) return report_error(ended.error(), kExitEnvironment);
  if (*ended == HoldEnd::signalled) {
    // Stopped (e.g. `systemctl stop`, or a shutdown forced past the gate): the gate is still
    // closed, so the drop-ins stay.
    std::printf("stopped by a signal: the inhibitor is released, the reboot block stays\n");
    return kExitOk;
  }
  auto unblock = gate::remove_reboot_block(*root, system_bus.get());
  if (!unblock) return report_error(unblock.error(), kExitEnvironment);
  std::printf("the reboot gate is open: the inhibitor is released; reboot block: %s\n", unblock->note.c_str());
  return kExitOk;
}

}  // namespace

void add_gate_hold_command(CLI::App& gate, CliContext& ctx) {
  auto* hold = gate.add_subcommand(
      "hold",
      "Hold a logind block inhibitor (shutdown:sleep) until the gate opens (run by upgrade-guard-gate.service)");
  hold->group("");  // hidden from --help
  auto recheck = std::make_shared<int>(30);
  hold->add_option("--recheck", *recheck, "Re-read the gate file at least every SECONDS")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  hold->callback([&ctx, recheck] { ctx.exit_code = run_gate_hold(ctx, *recheck); });
}

}  // namespace guard::cli
