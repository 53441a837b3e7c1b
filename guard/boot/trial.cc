#include "guard/boot/trial.h"

#include <charconv>

#include <algorithm>
#include <fmt/format.h>

#include <unistd.h>

#include <cerrno>

#include "base/atomic_file.h"
#include "base/root.h"
#include "base/string_table.h"
#include "base/strings.h"

namespace guard::boot {
namespace {

constexpr const char* kTrialMessageId = "8d3a51c2e6f74b09a1c5d7e2f3b4a690";

constexpr base::StringTable<TrialAction, 3> kTrialActions{{{
    {TrialAction::bless, "bless"},
    {TrialAction::roll_back, "roll-back"},
    {TrialAction::close_gate, "close-gate"},
}}};

}  // namespace

void log_trial(base::LogLevel level, std::int64_t trial_id, const std::string& message) {
  base::log(level, kTrialMessageId, message, {{"UG_BOOT_TRIAL", std::to_string(trial_id)}});
}

bool cmdline_allows_rollback(std::string_view cmdline) {
  bool allowed = true;
  constexpr std::string_view key = "upgrade-guard.rollback=";
  for (auto word : base::split_ws(base::trim(cmdline))) {
    if (word.substr(0, key.size()) != key) continue;
    auto value = base::trim(word.substr(key.size()));
    allowed = !(value == "0" || value == "no" || value == "false" || value == "off");
  }
  return allowed;
}

std::optional<std::int64_t> fallback_trial_from_cmdline(std::string_view cmdline) {
  std::optional<std::int64_t> trial;
  constexpr std::string_view key = "upgrade-guard.fallback=";
  for (auto word : base::split_ws(base::trim(cmdline))) {
    if (word.substr(0, key.size()) != key) continue;
    auto value = word.substr(key.size());
    trial.reset();
    std::int64_t id = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
    if (ec == std::errc() && end == value.data() + value.size() && id > 0) trial = id;
  }
  return trial;
}

const char* to_string(TrialAction a) { return kTrialActions.name(a); }

TrialDecision decide_trial(const TrialFacts& f) {
  if (f.healthy) return {TrialAction::bless, "the trial boot passed its checks"};
  if (!f.policy_rollback) return {TrialAction::close_gate, "the policy turns the automatic rollback off (boot_check.rollback = false)"};
  if (!f.cmdline_allows_rollback)
    return {TrialAction::close_gate, "the automatic rollback is off (upgrade-guard.rollback=0 on the kernel command line)"};
  if (f.upgrade_already_rolled_back)
    return {TrialAction::close_gate, "this upgrade was rolled back once already: no second rollback, no reboot loop"};
  if (f.attempts > 1)
    return {TrialAction::close_gate, fmt::format("this is boot {} of the trial: an earlier check did not finish, so "
                                                 "no automatic rollback (no reboot loop)",
                                                 f.attempts)};
  if (!f.can_roll_back) return {TrialAction::close_gate, "there is no snapshot this root can be rolled back to"};
  return {TrialAction::roll_back, "the trial boot failed its checks: rolling back to the pre-upgrade snapshot"};
}

bool boot_settled(std::string_view system_state, const std::vector<BootJob>& jobs, std::string_view own_unit) {
  if (system_state != "initializing" && system_state != "starting") return true;
  if (system_state == "initializing") return false;
  return std::all_of(jobs.begin(), jobs.end(),
                     [&](const BootJob& j) { return j.unit == own_unit || j.state == "waiting"; });
}

namespace {
std::string next_kernel_path(const std::string& state_dir) { return state_dir + "/next-kernel"; }
}  // namespace

base::Result<void> record_next_kernel(const std::string& state_dir, const std::string& version) {
  if (version.empty() || version.find_first_of("/\n") != std::string::npos)
    return base::fail("kernel", version, "not a kernel version");
  return base::write_file_atomic(next_kernel_path(state_dir), version + "\n", 0644);
}

std::optional<std::string> next_kernel(const std::string& state_dir) {
  auto host = base::Root::open("/");
  if (!host) return std::nullopt;
  auto text = host->read_file(next_kernel_path(state_dir), 4096);
  if (!text) return std::nullopt;
  std::string v(base::trim(*text));
  if (v.empty()) return std::nullopt;
  return v;
}

void forget_next_kernel(const std::string& state_dir) {
  if (::unlink(next_kernel_path(state_dir).c_str()) != 0 && errno != ENOENT)
    base::log(base::LogLevel::info, "", "cannot remove " + next_kernel_path(state_dir) + ", ignoring: it is only a note");
}

base::Result<TrialRecorded> record_trial(state::StateStore& store, std::int64_t run_id, const std::string& snapshot_id) {
  auto pending = store.pending_boot_trial();
  if (!pending) return base::fail(pending.error());
  if (*pending) {
    const state::BootTrialRecord& t = **pending;
    return TrialRecorded{std::nullopt, fmt::format("the next boot is already trial {}: it covers this upgrade too "
                                                   "and rolls back to {}",
                                                   t.id, t.snapshot_id)};
  }
  auto trial = store.create_boot_trial(run_id, snapshot_id);
  if (!trial) return base::fail(trial.error());
  return TrialRecorded{*trial, fmt::format("the next boot is trial {}: upgrade-guard-boot-check.service blesses it "
                                           "or rolls back to {}",
                                           *trial, snapshot_id)};
}

}  // namespace guard::boot
