// How a closed reboot gate is enforced on a live systemd system (the gate's state itself,
// status/close/open, lives with the state store):
//   1. runtime drop-ins /run/systemd/system/{reboot,poweroff,halt,kexec,soft-reboot}.target.d/
//      50-upgrade-guard.conf with RefuseManualStart=yes, plus a daemon-reload, so `systemctl
//      reboot`, `reboot` and `poweroff` are refused (systemd 252 and newer);
//   2. a logind block inhibitor for shutdown:sleep, held by `upgrade-guard gate hold` (the
//      upgrade-guard-gate.service unit) while the gate file says closed; logind makes root
//      obey it from systemd 257 on, and it shows in `systemd-inhibit --list` everywhere;
//   3. a molly-guard hook (packaging/molly-guard/run.d/20-upgrade-guard).
// Drop-ins under /run vanish at a reboot; the gate file persists and the gate holder service
// re-establishes the inhibitor at boot.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "guard/gate/gate_bus.h"

namespace guard::gate {

// The targets whose manual start the gate refuses: everything systemctl and logind start to
// end the system (ctrl-alt-del.target is an alias of reboot.target).
[[nodiscard]] const std::vector<std::string>& reboot_block_targets();

// The drop-in file name inside each <target>.d directory, e.g. "50-upgrade-guard.conf".
inline constexpr std::string_view kRebootBlockDropIn = "50-upgrade-guard.conf";

// The drop-in text for `reason` (newlines in it are flattened so it stays one comment):
//   # upgrade-guard: the reboot gate is closed: <reason>
//   ...
//   [Unit]
//   RefuseManualStart=yes
[[nodiscard]] std::string reboot_block_drop_in(std::string_view reason);
// The logind inhibitor's "why": what `reboot`, `shutdown -r` and `systemctl reboot` print when
// the gate refuses them. systemd 252's `reboot` can still exit 0 after printing it (it falls back
// to /run/initctl, whose request the refusing reboot.target then drops), so it says plainly that
// nothing reboots and how scripts must ask.
[[nodiscard]] std::string inhibitor_why(std::string_view reason);

// What an enforcement step did. `enforced` is false for a no-op (no systemd running in that
// root); `note` then says why, e.g. "no systemd is running (/run/systemd/system is missing):
// the reboot block was not installed".
struct EnforcementOutcome {
  bool enforced = false;
  std::string note;
};

// Writes the runtime drop-ins for every reboot_block_targets() entry under `root`'s
// /run/systemd/system (atomically, 0644, directories 0755) and asks systemd to reload
// through `bus`. `root` is the live system ("/") or, in tests, a TempDir; all paths resolve
// inside it. `bus` may be null to skip the reload (a root that is not the running system).
// A root without /run/systemd/system (no systemd running) is a no-op with a note, not an
// error. e.g. apply_reboot_block(Root::open("/"), "run 12: libssl3 broke sshd", bus.get()).
[[nodiscard]] base::Result<EnforcementOutcome> apply_reboot_block(const base::Root& root, std::string_view reason,
                                                                  GateBus* bus);

// Removes the drop-ins apply_reboot_block wrote (and each <target>.d directory when that
// leaves it empty), then reloads through `bus` (skipped when null, or when nothing was
// there). A missing drop-in is fine; no systemd is a no-op with a note.
[[nodiscard]] base::Result<EnforcementOutcome> remove_reboot_block(const base::Root& root, GateBus* bus);

// When hold_inhibitor lets go.
struct HoldUntil {
  // inotify watches this directory; every change in it re-evaluates `released`.
  // e.g. "/var/lib/upgrade-guard". May be missing: then only the periodic recheck runs.
  std::string watch_dir;
  // True when the hold should end, e.g. the gate file says open. Called once after the
  // inhibitor is taken, on every change in watch_dir and at least every `recheck`.
  std::function<bool()> released;
  std::chrono::milliseconds recheck{std::chrono::seconds(30)};
};

enum class HoldEnd {
  released,   // `released` returned true
  signalled,  // SIGTERM, SIGINT or SIGHUP arrived (the service was stopped)
};

// Takes a logind inhibitor through `bus` (what/who/mode from `request`), keeps its fd open
// and blocks until `until.released()` is true or a stop signal arrives, then closes the fd
// (releasing the inhibitor). SIGTERM/SIGINT/SIGHUP are blocked in the calling thread while it
// waits and read through a signalfd; the old signal mask is restored on return.
// e.g. hold_inhibitor(*bus, {.why = "reboot gate closed: run 12"}, {"/var/lib/upgrade-guard", is_open}).
[[nodiscard]] base::Result<HoldEnd> hold_inhibitor(GateBus& bus, const InhibitRequest& request, const HoldUntil& until);

}  // namespace guard::gate
