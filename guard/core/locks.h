// The locks a guarded run respects: its own (one guard at a time) and dpkg's.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "base/error.h"
#include "base/root.h"
#include "base/unique_fd.h"
#include "guard/state/store.h"

namespace guard {

// One upgrade-guard at a time: an flock on /run/upgrade-guard/lock, held for the object's
// life. e.g. auto lock = GuardLock::acquire("/run/upgrade-guard");
class GuardLock {
 public:
  // Fails at once (what="locked") when another guard holds it, naming its pid.
  [[nodiscard]] static base::Result<GuardLock> acquire(const std::string& run_dir = "/run/upgrade-guard");
  // Retries for up to `timeout` while another guard holds it, calling `waiting(why)` after 2 s
  // and then every 10 s: apt's hooks must not give up because an audit runs for a minute.
  [[nodiscard]] static base::Result<GuardLock> acquire(const std::string& run_dir, std::chrono::seconds timeout,
                                                       const std::function<void(const std::string&)>& waiting);

 private:
  explicit GuardLock(base::UniqueFd fd) : fd_(std::move(fd)) {}
  base::UniqueFd fd_;
};

// The pid holding a POSIX write lock on the root's file `path` (dpkg's lock-frontend or
// lock), 0 when none does. A missing file is not locked.
[[nodiscard]] base::Result<int> dpkg_lock_holder(const base::Root& root, const std::string& path);

// Waits until neither /var/lib/dpkg/lock-frontend nor /var/lib/dpkg/lock of the root is held,
// up to `timeout`, calling `waiting(pid, path)` about every 10 s while it waits. Fails
// (what="locked") at the timeout.
[[nodiscard]] base::Result<void> wait_for_dpkg_locks(const base::Root& root, std::chrono::seconds timeout,
                                                     const std::function<void(int, const std::string&)>& waiting);

// For the commands that read the root as a whole (audit, baseline accept), whose findings in
// the middle of an upgrade would be noise: fails (what="busy") at once while a guarded run of
// the root `key` recorded in `store` is alive, then waits like wait_for_dpkg_locks.
// e.g. wait_for_quiet_root(root, "/", store, 300s, waiting).
[[nodiscard]] base::Result<void> wait_for_quiet_root(const base::Root& root, const std::string& key,
                                                     const state::StateStore& store, std::chrono::seconds timeout,
                                                     const std::function<void(int, const std::string&)>& waiting);

}  // namespace guard
