// The `gate` row and its history, `gate_events`.
#include <nlohmann/json.hpp>

#include "guard/state/db.h"

namespace guard::state {

using base::Error;
using base::fail;
using base::Result;

Result<GateState> StateStore::get_gate() const {
  auto stmt = prepare("SELECT closed, reason, run_id, changed_unix, changed_by FROM gate WHERE id = 1",
                      "cannot read the gate state");
  if (!stmt) return fail(stmt.error());
  auto row = stmt->step();
  if (!row) return fail(row.error());
  GateState g;
  if (!*row) return g;
  // Anything but 0 or 1 is a row this program cannot read: never taken as open.
  if (stmt->type(0) != SQLITE_INTEGER || (stmt->integer(0) != 0 && stmt->integer(0) != 1))
    return fail(Error{"state", path_, 0,
                      fmt::format("table gate, row 1: closed is {}, not 0 or 1: the gate's state is unknown",
                                  stmt->is_null(0) ? std::string("NULL") : "'" + stmt->text(0) + "'")});
  g.closed = stmt->integer(0) != 0;
  g.reason = stmt->text(1);
  g.run_id = stmt->opt_integer(2);
  g.changed_unix = stmt->integer(3);
  g.changed_by = stmt->text(4);
  return g;
}

Result<void> StateStore::set_gate(const GateState& gate) {
  std::string context = gate.closed ? "cannot record the closed gate" : "cannot record the open gate";
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  std::int64_t when = gate.changed_unix != 0 ? gate.changed_unix : now_unix();
  auto stmt = prepare(
      "INSERT INTO gate (id, closed, reason, run_id, changed_unix, changed_by) VALUES (1, ?, ?, ?, ?, ?) "
      "ON CONFLICT (id) DO UPDATE SET closed = excluded.closed, reason = excluded.reason, run_id = excluded.run_id, "
      "changed_unix = excluded.changed_unix, changed_by = excluded.changed_by",
      context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(std::int64_t{gate.closed}).bind(gate.reason).bind(gate.run_id).bind(when).bind(gate.changed_by);
  if (auto r = stmt->run(); !r) return r;
  auto ev =
      prepare("INSERT INTO gate_events (closed, reason, run_id, at_unix, changed_by) VALUES (?, ?, ?, ?, ?)", context);
  if (!ev) return fail(ev.error());
  ev->bind(std::int64_t{gate.closed}).bind(gate.reason).bind(gate.run_id).bind(when).bind(gate.changed_by);
  if (auto r = ev->run(); !r) return r;
  return txn->commit();
}

Result<std::vector<GateEvent>> StateStore::gate_events(int limit) const {
  auto stmt =
      prepare("SELECT id, closed, reason, run_id, at_unix, changed_by FROM gate_events ORDER BY id DESC LIMIT ?",
              "cannot read the gate history");
  if (!stmt) return fail(stmt.error());
  stmt->bind(std::int64_t{limit > 0 ? limit : -1});
  std::vector<GateEvent> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    out.push_back(GateEvent{stmt->integer(0), stmt->integer(1) != 0, stmt->text(2), stmt->opt_integer(3),
                            stmt->integer(4), stmt->text(5)});
  }
  return out;
}

}  // namespace guard::state
