// The `runs`, `run_phases` and `run_packages` tables.
#include <nlohmann/json.hpp>

#include "guard/state/db.h"

namespace guard::state {

using base::Error;
using base::fail;
using base::Result;

namespace {
constexpr const char* kRunColumns =
    "SELECT id, started_unix, finished_unix, root, command, phase, phase_changed_unix, outcome, exit_code, "
    "command_status, snapshot_id, pid, hostname, boot_id, message, kind FROM runs ";
}  // namespace

Result<void> StateStore::log_phase(std::int64_t run_id, RunPhase phase, const std::string& context,
                                  std::optional<std::int64_t> at_unix_ms) {
  auto log = prepare("INSERT INTO run_phases (run_id, phase, at_unix_ms) VALUES (?, ?, ?)", context);
  if (!log) return fail(log.error());
  log->bind(run_id).bind(to_string(phase)).bind(at_unix_ms.value_or(now_unix_ms()));
  return log->run();
}

Result<std::int64_t> StateStore::begin_run(const RunStart& start) {
  const std::string context = "cannot record the start of the run";
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  std::int64_t now = now_unix();
  auto stmt = prepare(
      "INSERT INTO runs (started_unix, root, command, phase, phase_changed_unix, pid, hostname, boot_id, kind) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(now).bind(start.root).bind(nlohmann::json(start.command).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).bind(to_string(RunPhase::preflight));
  stmt->bind(now).bind(start.pid).bind(start.hostname).bind(start.boot_id).bind(to_string(start.kind));
  if (auto r = stmt->run(); !r) return fail(r.error());
  std::int64_t id = last_insert_id();
  if (auto r = log_phase(id, RunPhase::preflight, context); !r) return fail(r.error());
  if (auto r = txn->commit(); !r) return fail(r.error());
  return id;
}

Result<void> StateStore::set_phase(std::int64_t run_id, RunPhase phase) {
  std::string context = fmt::format("cannot record phase {} of run {}", to_string(phase), run_id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt =
      prepare("UPDATE runs SET phase = ?, phase_changed_unix = ? WHERE id = ? AND finished_unix IS NULL", context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(to_string(phase)).bind(now_unix()).bind(run_id);
  if (auto r = stmt->run(); !r) return r;
  if (changes() != 1) return fail("state", path_, fmt::format("{}: no unfinished run {}", context, run_id));
  if (auto r = log_phase(run_id, phase, context); !r) return r;
  return txn->commit();
}

Result<void> StateStore::set_run_snapshot(std::int64_t run_id, const std::string& snapshot_id) {
  return update_one("UPDATE runs SET snapshot_id = ? WHERE id = ?",
                    fmt::format("cannot record the snapshot of run {}", run_id),
                    [&](Statement& s) { s.bind(snapshot_id).bind(run_id); });
}

Result<void> StateStore::set_command_status(std::int64_t run_id, const std::string& status) {
  return update_one("UPDATE runs SET command_status = ? WHERE id = ?",
                    fmt::format("cannot record the command status of run {}", run_id),
                    [&](Statement& s) { s.bind(status).bind(run_id); });
}

Result<void> StateStore::set_run_message(std::int64_t run_id, const std::string& message) {
  return update_one("UPDATE runs SET message = ? WHERE id = ?",
                    fmt::format("cannot record the message of run {}", run_id),
                    [&](Statement& s) { s.bind(message).bind(run_id); });
}

Result<void> StateStore::finish_run(std::int64_t run_id, RunOutcome outcome, int exit_code,
                                    const std::string& message, std::optional<std::int64_t> ended_unix_ms) {
  return finish_impl(run_id, outcome, exit_code, message, ended_unix_ms);
}

Result<void> StateStore::finish_impl(std::int64_t run_id, RunOutcome outcome, std::optional<int> exit_code,
                                     const std::string& message, std::optional<std::int64_t> ended_unix_ms) {
  std::string context = fmt::format("cannot record the end of run {}", run_id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  // An interrupted run keeps the phase it died in; every other outcome ends in "done".
  bool keep_phase = outcome == RunOutcome::interrupted;
  auto stmt = prepare(
      "UPDATE runs SET outcome = ?, exit_code = ?, message = ?, finished_unix = ?, "
      "phase = CASE WHEN ? THEN phase ELSE 'done' END, "
      "phase_changed_unix = CASE WHEN ? THEN phase_changed_unix ELSE ? END "
      "WHERE id = ? AND finished_unix IS NULL",
      context);
  if (!stmt) return fail(stmt.error());
  std::int64_t now = ended_unix_ms ? *ended_unix_ms / 1000 : now_unix();
  stmt->bind(to_string(outcome))
      .bind(exit_code ? std::optional<std::int64_t>(*exit_code) : std::nullopt)
      .bind(message)
      .bind(now);
  stmt->bind(std::int64_t{keep_phase}).bind(std::int64_t{keep_phase}).bind(now).bind(run_id);
  if (auto r = stmt->run(); !r) return r;
  if (changes() != 1) return fail("state", path_, fmt::format("{}: no unfinished run {}", context, run_id));
  if (!keep_phase) {
    if (auto r = log_phase(run_id, RunPhase::done, context, ended_unix_ms); !r) return r;
  }
  return txn->commit();
}

Result<void> StateStore::amend_run(std::int64_t run_id, RunOutcome outcome, int exit_code, const std::string& message) {
  return update_one("UPDATE runs SET outcome = ?, exit_code = ?, message = ? WHERE id = ? AND finished_unix IS NOT NULL",
                    fmt::format("cannot amend the outcome of finished run {}", run_id), [&](Statement& s) {
                      s.bind(to_string(outcome)).bind(std::int64_t{exit_code}).bind(message).bind(run_id);
                    });
}

Result<void> StateStore::reopen_run(std::int64_t run_id, std::int64_t pid) {
  std::string context = fmt::format("cannot reopen run {}", run_id);
  return transaction([&]() -> Result<void> {
    auto r = update_one(
        "UPDATE runs SET finished_unix = NULL, outcome = NULL, exit_code = NULL, phase = 'command', "
        "phase_changed_unix = ?, pid = ? WHERE id = ? AND finished_unix IS NOT NULL",
        context, [&](Statement& s) { s.bind(now_unix()).bind(pid).bind(run_id); });
    if (!r) return r;
    return log_phase(run_id, RunPhase::command, context);
  });
}

Result<void> StateStore::mark_interrupted(std::int64_t run_id, const std::string& why) {
  std::string context = fmt::format("cannot mark run {} interrupted", run_id);
  return transaction([&]() -> Result<void> {
    auto run = get_run(run_id);
    if (!run) return fail(run.error());
    if (!*run) return fail("state", path_, context + ": no such run");
    std::string message = fmt::format("interrupted during {}", to_string((*run)->phase));
    if (!why.empty()) message += ": " + why;
    return finish_impl(run_id, RunOutcome::interrupted, std::nullopt, message);
  });
}

Result<std::vector<RunRecord>> StateStore::query_runs(std::string_view where_and_order,
                                                      std::optional<std::int64_t> arg) const {
  const char* context = "cannot read runs";
  auto stmt = prepare(std::string(kRunColumns) + std::string(where_and_order), context);
  if (!stmt) return fail(stmt.error());
  if (arg) stmt->bind(*arg);
  std::vector<RunRecord> runs;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    RunRecord r;
    r.id = stmt->integer(0);
    auto unreadable = [&](const Error& e) {
      return fail(Error{"state", path_, 0, fmt::format("run {}: {}", r.id, e.message)});
    };
    r.started_unix = stmt->integer(1);
    r.finished_unix = stmt->opt_integer(2);
    r.root = stmt->text(3);
    auto cmd = nlohmann::json::parse(stmt->text(4), nullptr, false);
    if (!cmd.is_array()) return unreadable(Error{"", "", 0, "its command is not a JSON array"});
    for (const auto& a : cmd) {
      if (a.is_string()) r.command.push_back(a.get<std::string>());
    }
    auto phase = parse_run_phase(stmt->text(5));
    if (!phase) return unreadable(phase.error());
    r.phase = *phase;
    r.phase_changed_unix = stmt->integer(6);
    if (auto o = stmt->opt_text(7)) {
      auto outcome = parse_run_outcome(*o);
      if (!outcome) return unreadable(outcome.error());
      r.outcome = *outcome;
    }
    if (auto e = stmt->opt_integer(8)) r.exit_code = static_cast<int>(*e);
    r.command_status = stmt->opt_text(9);
    r.snapshot_id = stmt->opt_text(10);
    r.pid = stmt->integer(11);
    r.hostname = stmt->text(12);
    r.boot_id = stmt->text(13);
    r.message = stmt->text(14);
    auto kind = parse_run_kind(stmt->text(15));
    if (!kind) return unreadable(kind.error());
    r.kind = *kind;
    runs.push_back(std::move(r));
  }
  return runs;
}

Result<std::optional<RunRecord>> StateStore::get_run(std::int64_t run_id) const {
  auto runs = query_runs("WHERE id = ?", run_id);
  if (!runs) return fail(runs.error());
  if (runs->empty()) return std::optional<RunRecord>();
  return std::optional<RunRecord>(std::move(runs->front()));
}

Result<std::vector<RunRecord>> StateStore::list_runs(int limit) const {
  return query_runs("ORDER BY id DESC LIMIT ?", std::int64_t{limit > 0 ? limit : -1});
}

Result<std::vector<RunRecord>> StateStore::unfinished_runs() const {
  return query_runs("WHERE finished_unix IS NULL ORDER BY id", std::nullopt);
}

Result<void> StateStore::save_package_changes(std::int64_t run_id, const std::vector<PackageChange>& changes) {
  std::string context = fmt::format("cannot record the package changes of run {}", run_id);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto del = prepare("DELETE FROM run_packages WHERE run_id = ?", context);
  if (!del) return fail(del.error());
  del->bind(run_id);
  if (auto r = del->run(); !r) return r;
  auto ins = prepare(
      "INSERT OR REPLACE INTO run_packages (run_id, package, old_version, new_version) VALUES (?, ?, ?, ?)", context);
  if (!ins) return fail(ins.error());
  for (const auto& c : changes) {
    ins->reset();
    ins->bind(run_id).bind(c.package).bind(c.old_version).bind(c.new_version);
    if (auto r = ins->run(); !r) return r;
  }
  return txn->commit();
}

Result<std::vector<PackageChange>> StateStore::package_changes(std::int64_t run_id) const {
  auto stmt = prepare("SELECT package, old_version, new_version FROM run_packages WHERE run_id = ? ORDER BY package",
                      "cannot read the package changes of a run");
  if (!stmt) return fail(stmt.error());
  stmt->bind(run_id);
  std::vector<PackageChange> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    out.push_back(PackageChange{stmt->text(0), stmt->text(1), stmt->text(2)});
  }
  return out;
}

Result<std::vector<PhaseRecord>> StateStore::run_phases(std::int64_t run_id) const {
  auto stmt = prepare("SELECT phase, at_unix_ms FROM run_phases WHERE run_id = ? ORDER BY rowid",
                      "cannot read the phases of a run");
  if (!stmt) return fail(stmt.error());
  stmt->bind(run_id);
  std::vector<PhaseRecord> phases;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    auto phase = parse_run_phase(stmt->text(0));
    if (!phase)
      return fail(Error{"state", path_, 0, fmt::format("table run_phases, run {}: {}", run_id, phase.error().message)});
    phases.push_back(PhaseRecord{*phase, stmt->integer(1)});
  }
  return phases;
}

}  // namespace guard::state
