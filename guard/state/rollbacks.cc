// The `rollbacks` table: every rollback is recorded before the snapshot backend starts it.
#include "guard/state/db.h"

namespace guard::state {

using base::Error;
using base::fail;
using base::Result;

Result<std::int64_t> StateStore::begin_rollback(std::optional<std::int64_t> run_id, const std::string& root,
                                                const std::string& snapshot_id, std::int64_t pid,
                                                const std::string& boot_id) {
  const std::string context = fmt::format("cannot record the rollback to {}", snapshot_id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(
      "INSERT INTO rollbacks (run_id, root, snapshot_id, started_unix, updated_unix, state, pid, boot_id) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      context);
  if (!stmt) return fail(stmt.error());
  std::int64_t now = now_unix();
  stmt->bind(run_id).bind(root).bind(snapshot_id).bind(now).bind(now).bind(to_string(RollbackState::running));
  stmt->bind(pid).bind(boot_id);
  if (auto r = stmt->run(); !r) return fail(r.error());
  std::int64_t id = last_insert_id();
  if (auto r = txn->commit(); !r) return fail(r.error());
  return id;
}

Result<void> StateStore::set_rollback_state(std::int64_t id, RollbackState state, const std::string& journal,
                                            const std::string& broken, const std::string& message) {
  return update_one(
      "UPDATE rollbacks SET state = ?, journal = CASE WHEN ? = '' THEN journal ELSE ? END, "
      "broken = CASE WHEN ? = '' THEN broken ELSE ? END, message = ?, updated_unix = ? WHERE id = ?",
      fmt::format("cannot record rollback {} as {}", id, to_string(state)), [&](Statement& s) {
        s.bind(to_string(state)).bind(journal).bind(journal).bind(broken).bind(broken).bind(message);
        s.bind(now_unix()).bind(id);
      });
}

Result<std::vector<RollbackRecord>> StateStore::query_rollbacks(std::string_view where, const std::string& text_arg,
                                                                std::optional<std::int64_t> int_arg) const {
  auto stmt = prepare(fmt::format("SELECT id, run_id, root, snapshot_id, started_unix, updated_unix, state, journal, "
                                  "broken, message, pid, boot_id FROM rollbacks {}",
                                  where),
                      "cannot read rollbacks");
  if (!stmt) return fail(stmt.error());
  if (int_arg) stmt->bind(*int_arg);
  if (!text_arg.empty()) stmt->bind(text_arg);
  std::vector<RollbackRecord> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    RollbackRecord r;
    r.id = stmt->integer(0);
    r.run_id = stmt->opt_integer(1);
    r.root = stmt->text(2);
    r.snapshot_id = stmt->text(3);
    r.started_unix = stmt->integer(4);
    r.updated_unix = stmt->integer(5);
    auto state = parse_rollback_state(stmt->text(6));
    if (!state) return fail(Error{"state", path_, 0, fmt::format("rollback {}: {}", r.id, state.error().message)});
    r.state = *state;
    r.journal = stmt->text(7);
    r.broken = stmt->text(8);
    r.message = stmt->text(9);
    r.pid = stmt->integer(10);
    r.boot_id = stmt->text(11);
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::optional<RollbackRecord>> StateStore::get_rollback(std::int64_t id) const {
  auto list = query_rollbacks("WHERE id = ?", {}, id);
  if (!list) return fail(list.error());
  if (list->empty()) return std::optional<RollbackRecord>();
  return std::optional<RollbackRecord>(std::move(list->front()));
}

Result<std::vector<RollbackRecord>> StateStore::open_rollbacks(const std::string& root) const {
  return root.empty() ? query_rollbacks("WHERE state IN ('running', 'failed') ORDER BY id", {}, std::nullopt)
                      : query_rollbacks("WHERE state IN ('running', 'failed') AND root = ? ORDER BY id", root,
                                        std::nullopt);
}

Result<std::vector<RollbackRecord>> StateStore::rollbacks_of_run(std::int64_t run_id) const {
  return query_rollbacks("WHERE run_id = ? ORDER BY id DESC", {}, run_id);
}

}  // namespace guard::state
