// Running other programs: argv only (never a shell), always with a timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace guard::base {

enum class Output {
  capture,  // stdout and stderr are collected into ProcessResult
  inherit,  // the child writes to our stdout/stderr (and reads our stdin)
  tee,      // stdin inherited; stdout+stderr go to our stdout and are appended to tee_file
};

// Containment for running a checked root's own code (its configuration validators, e.g.
// `sshd -t`), with Command::chroot the root's host path ("/" for the live system). The child
// gets private mount, network, IPC and UTS namespaces (no network but its own loopback, down);
// the root bound recursively read-only; a new /proc; a /dev tmpfs with null, zero, full,
// random and urandom only; empty tmpfs on /run (with `runtime_dirs` made) and /tmp; an
// environment of its own (PATH, LC_ALL=C); stdin from /dev/null. Every mount lives in the
// child's namespace: the host's mount table never sees one, and they vanish with the child.
// Its stdout and stderr go, interleaved, into ProcessResult::out, at most kSandboxOutputMax
// bytes (writes beyond fail with EPERM instead of growing memory).
struct Sandbox {
  std::vector<std::string> runtime_dirs;  // absolute, under /run, e.g. "/run/sshd"
};
inline constexpr std::size_t kSandboxOutputMax = 64UL * 1024;
// Its address space (RLIMIT_AS): a validator fed a hostile configuration (an /etc/passwd that is
// /dev/zero) allocates until this limit instead of until the host runs out of memory. sshd -t,
// nginx -t, apache2ctl -t, named-checkconf, visudo -c and haproxy -c need a small part of it.
inline constexpr std::uint64_t kSandboxAddressSpaceMax = 4ULL * 1024 * 1024 * 1024;

// e.g. Command{{"/usr/bin/apt-get", "-y", "dist-upgrade"}, std::chrono::hours(6)}.
struct Command {
  std::vector<std::string> argv;                // argv[0] is looked up in PATH when it has no '/'
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  Output output = Output::capture;
  std::optional<std::string> chroot;            // host dir to chroot into before exec
  // With chroot: a private mount namespace for the child with /proc and /sys bound into the
  // chroot and a private /dev (tmpfs with null, zero, full, random, urandom, tty, devpts,
  // shm), as package maintainer scripts expect. Gone when the child's namespace ends.
  bool bind_system_dirs = false;
  std::string tee_file;                         // Output::tee: host path, opened O_APPEND
  int tee_fd = 1;                               // Output::tee: where the live copy goes (stdout)
  std::string cwd;                              // working dir (inside the chroot), "" = "/" with chroot
  std::map<std::string, std::string> env;       // added to (or replacing in) our environment
  std::string input;                            // written to stdin with Output::capture
  std::optional<Sandbox> sandbox;               // with chroot: run contained (see Sandbox); output ignored
};

// How a command ended. exit_code is -1 when it died by a signal or timed out.
struct ProcessResult {
  int exit_code = -1;
  int signal = 0;          // the signal that killed it, 0 if it exited
  bool timed_out = false;  // killed by us (SIGKILL to its process group) at the timeout
  std::string out;  // with Output::tee: the last 64 KiB of the combined output
  std::string err;
  std::chrono::milliseconds duration{0};

  [[nodiscard]] bool ok() const { return exit_code == 0 && signal == 0 && !timed_out; }
  // "exited with status 100", "killed by signal 9 (Killed)", "timed out after 30s"
  [[nodiscard]] std::string describe() const;
};

// The seam where upgrade-guard touches other programs; tests use a recording fake.
class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  // Fails only when the command could not be started; a non-zero exit is a ProcessResult.
  [[nodiscard]] virtual Result<ProcessResult> run(const Command& command) = 0;
};

// Runs commands with Boost.Process, each in its own process group so a timeout kills the
// whole tree.
class SystemCommandRunner final : public CommandRunner {
 public:
  [[nodiscard]] Result<ProcessResult> run(const Command& command) override;
};

}  // namespace guard::base
