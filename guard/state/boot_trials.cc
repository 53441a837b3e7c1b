// The `boot_trials` table.
#include <nlohmann/json.hpp>

#include "guard/state/db.h"

namespace guard::state {

using base::Error;
using base::fail;
using base::Result;

Result<std::int64_t> StateStore::create_boot_trial(std::optional<std::int64_t> run_id, const std::string& snapshot_id) {
  const char* context = "cannot record the boot trial";
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(
      "INSERT INTO boot_trials (run_id, snapshot_id, created_unix, updated_unix, attempts, state) "
      "VALUES (?, ?, ?, ?, 0, 'pending')",
      context);
  if (!stmt) return fail(stmt.error());
  std::int64_t now = now_unix();
  stmt->bind(run_id).bind(snapshot_id).bind(now).bind(now);
  if (auto r = stmt->run(); !r) return fail(r.error());
  std::int64_t id = last_insert_id();
  if (auto r = txn->commit(); !r) return fail(r.error());
  return id;
}

Result<std::vector<BootTrialRecord>> StateStore::query_boot_trials(std::string_view where,
                                                                    std::optional<std::int64_t> arg,
                                                                    int limit) const {
  auto stmt = prepare(fmt::format("SELECT id, run_id, snapshot_id, created_unix, updated_unix, attempts, state, "
                                  "message FROM boot_trials {} ORDER BY id DESC LIMIT {}",
                                  where, limit),
                      "cannot read a boot trial");
  if (!stmt) return fail(stmt.error());
  if (arg) stmt->bind(*arg);
  std::vector<BootTrialRecord> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    BootTrialRecord t;
    t.id = stmt->integer(0);
    t.run_id = stmt->opt_integer(1);
    t.snapshot_id = stmt->text(2);
    t.created_unix = stmt->integer(3);
    t.updated_unix = stmt->integer(4);
    t.attempts = static_cast<int>(stmt->integer(5));
    auto state = parse_boot_trial_state(stmt->text(6));
    if (!state) return fail(state.error());
    t.state = *state;
    t.message = stmt->text(7);
    out.push_back(std::move(t));
  }
  return out;
}

Result<std::optional<BootTrialRecord>> StateStore::query_boot_trial(std::string_view where,
                                                                    std::optional<std::int64_t> arg) const {
  auto trials = query_boot_trials(where, arg, 1);
  if (!trials) return fail(trials.error());
  if (trials->empty()) return std::optional<BootTrialRecord>();
  return std::optional<BootTrialRecord>(std::move(trials->front()));
}

Result<std::vector<BootTrialRecord>> StateStore::boot_trials_of_run(std::int64_t run_id) const {
  return query_boot_trials("WHERE run_id = ?", run_id, -1);
}

Result<std::optional<BootTrialRecord>> StateStore::get_boot_trial(std::int64_t id) const {
  return query_boot_trial("WHERE id = ?", id);
}

Result<std::optional<BootTrialRecord>> StateStore::pending_boot_trial() const {
  return query_boot_trial("WHERE state = 'pending'", std::nullopt);
}

Result<std::optional<BootTrialRecord>> StateStore::latest_boot_trial() const {
  return query_boot_trial("", std::nullopt);
}

Result<int> StateStore::record_boot_attempt(std::int64_t id) {
  std::string context = fmt::format("cannot count a boot attempt of trial {}", id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(
      "UPDATE boot_trials SET attempts = attempts + 1, updated_unix = ? WHERE id = ? RETURNING attempts", context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(now_unix()).bind(id);
  auto row = stmt->step();
  if (!row) return fail(row.error());
  if (!*row) return fail("state", path_, fmt::format("{}: no such trial", context));
  int attempts = static_cast<int>(stmt->integer(0));
  stmt->close();
  if (auto r = txn->commit(); !r) return fail(r.error());
  return attempts;
}

Result<void> StateStore::set_boot_trial_state(std::int64_t id, BootTrialState state, const std::string& message) {
  return update_one("UPDATE boot_trials SET state = ?, message = ?, updated_unix = ? WHERE id = ?",
                    fmt::format("cannot mark boot trial {} {}", id, to_string(state)),
                    [&](Statement& s) { s.bind(to_string(state)).bind(message).bind(now_unix()).bind(id); });
}

}  // namespace guard::state
