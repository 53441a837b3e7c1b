// The policy model: what to check, how seriously, and what to do when a check fails.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace guard::policies {

// Finding severities and per-check policy levels share one scale. A policy sets a check to
// off|warn|block; a finding is info|warn|block; a finding's effective severity is the lower
// of the two (a check set to warn never blocks).
enum class Severity { off = 0, info = 1, warn = 2, block = 3 };

// What the guard does when post-upgrade checks find a blocking regression.
enum class OnFail { rollback, block_reboot, warn };

enum class SnapshotBackendKind { automatic, btrfs, copy, none };

// Settings of one check, e.g. [checks.symlinks] in policy.toml.
struct CheckPolicy {
  Severity severity = Severity::block;
  // Scan paths (root-relative) for symlinks/libraries; for `critical`, the must-work files.
  std::vector<std::string> paths;
  std::vector<std::string> ignore; // root-relative paths or globs whose findings are dropped
};

// An administrator's own check, e.g. [[custom]] name = "nginx-config" command = ["/usr/sbin/nginx", "-t"].
struct CustomCheck {
  std::string name;
  std::vector<std::string> command;
  std::chrono::seconds timeout{60};
  Severity severity = Severity::block;
};

// A configuration validator of the root, e.g. [[validator]] name = "sshd" program = "/usr/sbin/sshd"
// argv = ["/usr/sbin/sshd", "-t"]: run by the `validators` check, sandboxed in the checked root,
// only when `program` is installed there. Built-in ones (default_validators()) are entries like
// the administrator's; a later entry with the same name changes only the fields it sets.
struct Validator {
  std::string name;
  std::string program;            // root path whose presence enables it, e.g. "/usr/sbin/sshd"
  std::vector<std::string> argv;  // run chrooted in the root, no shell
  std::chrono::seconds timeout{30};
  std::vector<std::string> runtime_dirs;  // created on the sandbox's fresh /run, e.g. "/run/sshd"
  // A failure whose output contains one of these is a warning: what a booted system provides
  // and a root that never booted may lack, e.g. "no hostkeys available".
  std::vector<std::string> warn_output;
  Severity severity = Severity::block;
  bool enabled = true;
};

// The validators shipped: sshd, nginx, apache2, named, sudo (visudo), haproxy.
[[nodiscard]] const std::vector<Validator>& default_validators();

struct SnapshotPolicy {
  SnapshotBackendKind backend = SnapshotBackendKind::automatic;
  bool required = false;                     // refuse to run an upgrade without a snapshot
  std::uint64_t min_free_bytes = 1ULL << 30; // refuse to snapshot below this free space
  int keep = 5;                              // retention: guard snapshots kept
  int keep_broken = 2;                       // retention: roots replaced by rollbacks kept
};

struct PreflightPolicy {
  std::chrono::seconds lock_timeout{300};      // wait for apt/dpkg locks this long
  std::uint64_t min_free_root = 1ULL << 30;    // bytes free on / before an upgrade
  std::uint64_t min_free_boot = 100ULL << 20;  // bytes free on /boot before an upgrade
};

struct BackupPolicy {
  std::optional<std::chrono::seconds> max_age;  // unset = the backup check is not configured
  std::string marker;                           // a file whose mtime is the last backup time
  std::vector<std::string> command;             // or a command that exits 0 when fresh
};

struct BootCheckPolicy {
  std::chrono::seconds settle_timeout{300};  // how long the post-boot check waits for the system
  bool rollback = true;                      // roll back and reboot once when the trial boot fails
  // Refuse a guarded run of the live root where GRUB cannot count boots (its environment
  // block on btrfs): a trial boot that dies before userspace would loop there.
  bool require_counter = true;
};

// apt hook mode (a plain `apt upgrade` guarded by DPkg::Pre-Invoke/Post-Invoke).
struct HookPolicy {
  // What a regression found after apt's dpkg run does. Not the top-level on_fail: rolling
  // back underneath a running apt (or unattended-upgrades) surprises more than it helps, so
  // by default the gate is closed and the admin decides; "rollback" is there for who wants it.
  OnFail on_fail = OnFail::block_reboot;
  // false: apt's hooks do nothing (hook mode off without removing the conffile; so does
  // UPGRADE_GUARD_HOOK=off in apt's environment).
  bool enabled = true;
};

// The scheduled audit (upgrade-guard audit, run daily by upgrade-guard-audit.timer).
struct AuditPolicy {
  // Close the reboot gate when the audit finds a blocking finding absent from the accepted
  // baseline, e.g. a library deleted by hand since the last upgrade.
  bool close_gate = true;
  // The package-hashes check trusts its verified-hash cache (a file whose identity has not
  // changed keeps its verified md5) until the last deep audit, which rehashes every file, is
  // older than this. 0 = every audit is deep (the cache is never trusted).
  std::chrono::seconds deep_every{7 * 24 * 3600};
};

// Where each setting came from, for `policy show`: key -> "file:line:column" or "built-in".
using Origins = std::map<std::string, std::string>;

// The whole policy after layering built-in defaults < policy.toml < policy.d/*.toml.
struct Policy {
  OnFail on_fail = OnFail::rollback;
  std::map<std::string, CheckPolicy> checks;  // by check id, e.g. "symlinks"; every known id present
  Severity conffiles = Severity::warn;        // package-hashes: edited conffiles
  std::vector<std::string> preserve;          // carried into a rolled-back root
  std::vector<std::string> required_services; // units that must be active after boot
  std::vector<CustomCheck> custom;
  std::vector<Validator> validators = default_validators();
  SnapshotPolicy snapshot;
  PreflightPolicy preflight;
  BackupPolicy backup;
  BootCheckPolicy boot_check;
  HookPolicy hook;
  AuditPolicy audit;
  std::chrono::seconds command_timeout{6 * 3600};  // the guarded command's time limit
  Origins origins;

  // The settings of check `id`; a default CheckPolicy for an unknown id.
  [[nodiscard]] const CheckPolicy& check(const std::string& id) const;
};

// The ids of every check a policy may name, in the order reports list them; the registry
// (checks::make_all_checks) and `policy show` follow it.
[[nodiscard]] const std::vector<std::string>& known_check_ids();

// The built-in `paths` of check `id`: where it scans, or for `critical` the files that must
// work; empty for checks without paths and for unknown ids. Checks fall back to these when a
// policy lists none, e.g. default_check_paths("symlinks") -> {"/usr/bin", "/usr/sbin", ...}.
[[nodiscard]] const std::vector<std::string>& default_check_paths(std::string_view id);

[[nodiscard]] const char* to_string(Severity s);
[[nodiscard]] const char* to_string(OnFail f);
[[nodiscard]] const char* to_string(SnapshotBackendKind k);

}  // namespace guard::policies
