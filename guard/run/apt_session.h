// apt hook mode: which apt process a DPkg::Pre-Invoke / Post-Invoke hook runs under, and which
// guarded run that apt process's hooks belong to (<run_dir>/hook-session).
//
// apt runs the hooks through `sh -c` before and after each dpkg invocation. One apt process
// may invoke dpkg several times (unattended-upgrades installs in minimal steps), and every
// invocation of one apt process is one guarded run with one snapshot.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/root.h"

namespace guard::run {

// An apt process, identified across pid reuse by its start time.
// e.g. {pid=4242, start_ticks=918273, command={"apt-get", "install", "./x.deb"}}.
struct AptProcess {
  int pid = 0;
  std::uint64_t start_ticks = 0;  // field 22 of /proc/PID/stat; 0 when unreadable
  std::vector<std::string> command;
};

// The apt process the calling hook runs under: the holder of the root's dpkg lock-frontend
// (apt holds it for its whole run), else of /var/lib/dpkg/lock, else the hook's grandparent
// (apt -> sh -c -> upgrade-guard).
[[nodiscard]] base::Result<AptProcess> find_apt_process(const base::Root& root);
// Reads pid's start time and command line from /proc; an error when the process is gone.
[[nodiscard]] base::Result<AptProcess> describe_process(int pid);
// True when `apt` still runs: the same pid with the same start time.
[[nodiscard]] bool same_process_running(const AptProcess& apt);

// What the pre-invoke hook left for the next hook of the same apt process.
// e.g. {apt={pid=4242, start_ticks=918273}, run_id=12, root="/"}.
struct HookSession {
  AptProcess apt;
  std::int64_t run_id = 0;
  std::string root;
};

// <run_dir>/hook-session when it was left by `apt` (same pid and start time) for the root
// `root_key`; nullopt otherwise, also when it is missing or unreadable (a stale or corrupt
// file only means that no run is continued). The session's apt.command is not stored.
[[nodiscard]] std::optional<HookSession> read_hook_session(const std::string& run_dir, const std::string& root_key,
                                                           const AptProcess& apt);
// Written atomically (0600).
[[nodiscard]] base::Result<void> write_hook_session(const std::string& run_dir, const HookSession& session);

}  // namespace guard::run
