// The `snapshots` table: what the guard knows of the snapshot backend's snapshots.
#include <nlohmann/json.hpp>

#include "guard/state/db.h"

namespace guard::state {

using base::Error;
using base::fail;
using base::Result;

Result<void> StateStore::record_snapshot(const SnapshotRecord& s) {
  std::string context = fmt::format("cannot record snapshot {}", s.id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(
      "INSERT INTO snapshots (id, backend, label, location, root, created_unix, run_id, state, known_good, "
      "pinned_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(s.id).bind(s.backend).bind(s.label).bind(s.location).bind(s.root);
  stmt->bind(s.created_unix != 0 ? s.created_unix : now_unix()).bind(s.run_id).bind(to_string(s.state));
  stmt->bind(std::int64_t{s.known_good}).bind(s.pinned_reason);
  if (auto r = stmt->run(); !r) return r;
  return txn->commit();
}

Result<std::vector<SnapshotRecord>> StateStore::query_snapshots(std::string_view where, const std::string& arg) const {
  auto stmt = prepare(fmt::format("SELECT id, backend, label, location, root, created_unix, run_id, state, known_good, "
                                  "pinned_reason FROM snapshots {} ORDER BY created_unix DESC, rowid DESC",
                                  where),
                      "cannot read snapshots");
  if (!stmt) return fail(stmt.error());
  if (!where.empty()) stmt->bind(arg);
  std::vector<SnapshotRecord> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    SnapshotRecord s;
    s.id = stmt->text(0);
    s.backend = stmt->text(1);
    s.label = stmt->text(2);
    s.location = stmt->text(3);
    s.root = stmt->text(4);
    s.created_unix = stmt->integer(5);
    s.run_id = stmt->opt_integer(6);
    auto state = parse_snapshot_state(stmt->text(7));
    if (!state) return fail(state.error());
    s.state = *state;
    s.known_good = stmt->integer(8) != 0;
    s.pinned_reason = stmt->opt_text(9);
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::optional<SnapshotRecord>> StateStore::get_snapshot(const std::string& id) const {
  auto list = query_snapshots("WHERE id = ?", id);
  if (!list) return fail(list.error());
  if (list->empty()) return std::optional<SnapshotRecord>();
  return std::optional<SnapshotRecord>(std::move(list->front()));
}

Result<std::vector<SnapshotRecord>> StateStore::list_snapshots(const std::string& root) const {
  return root.empty() ? query_snapshots("", {}) : query_snapshots("WHERE root = ?", root);
}

Result<std::optional<SnapshotRecord>> StateStore::last_known_good(const std::string& root) const {
  auto list = query_snapshots("WHERE root = ? AND known_good = 1 AND state = 'present'", root);
  if (!list) return fail(list.error());
  if (list->empty()) return std::optional<SnapshotRecord>();
  return std::optional<SnapshotRecord>(std::move(list->front()));
}

Result<void> StateStore::set_snapshot_state(const std::string& id, SnapshotState state) {
  return update_one("UPDATE snapshots SET state = ? WHERE id = ?",
                    fmt::format("cannot mark snapshot {} {}", id, to_string(state)),
                    [&](Statement& s) { s.bind(to_string(state)).bind(id); });
}

Result<void> StateStore::set_snapshot_known_good(const std::string& id, bool known_good) {
  return update_one("UPDATE snapshots SET known_good = ? WHERE id = ?",
                    fmt::format("cannot mark snapshot {} {}", id, known_good ? "known-good" : "not known-good"),
                    [&](Statement& s) { s.bind(std::int64_t{known_good}).bind(id); });
}

Result<void> StateStore::set_snapshot_pinned(const std::string& id, std::optional<std::string> reason) {
  return update_one("UPDATE snapshots SET pinned_reason = ? WHERE id = ?",
                    fmt::format("cannot {} snapshot {}", reason ? "pin" : "unpin", id),
                    [&](Statement& s) { s.bind(reason).bind(id); });
}

}  // namespace guard::state
