// The `reports`, `findings`, `baselines` and `baseline_keys` tables.
#include <nlohmann/json.hpp>

#include "guard/state/db.h"

namespace guard::state {

using base::Error;
using base::fail;
using base::Result;

Result<std::int64_t> StateStore::save_report(std::optional<std::int64_t> run_id, ReportStage stage,
                                             const checks::Report& report) {
  std::string context = run_id ? fmt::format("cannot save the {} report of run {}", to_string(stage), *run_id)
                               : fmt::format("cannot save the {} report", to_string(stage));
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto stmt = prepare(
      "INSERT INTO reports (run_id, stage, root, created_unix, verdict, json) VALUES (?, ?, ?, ?, ?, ?)", context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(run_id).bind(to_string(stage)).bind(report.root).bind(now_unix()).bind(checks::to_string(report.verdict));
  stmt->bind(checks::to_json(report).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (auto r = stmt->run(); !r) return fail(r.error());
  std::int64_t report_id = last_insert_id();
  auto ins = prepare(
      "INSERT INTO findings (report_id, run_id, stage, check_id, severity, path, package, message, hint, "
      "finding_key, known) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      context);
  if (!ins) return fail(ins.error());
  for (const auto& f : report.findings) {
    ins->reset();
    ins->bind(report_id).bind(run_id).bind(to_string(stage)).bind(f.check).bind(policies::to_string(f.severity));
    ins->bind(f.path).bind(f.package).bind(f.message).bind(f.hint).bind(f.key()).bind(std::int64_t{f.known});
    if (auto r = ins->run(); !r) return fail(r.error());
  }
  if (auto r = txn->commit(); !r) return fail(r.error());
  return report_id;
}

Result<std::optional<StoredReport>> StateStore::query_report(std::string_view where, const std::string& text_arg,
                                                             std::int64_t int_arg, ReportStage stage) const {
  auto stmt = prepare(fmt::format("SELECT id, run_id, root, created_unix, json FROM reports WHERE {} AND stage = ? "
                                  "ORDER BY id DESC LIMIT 1",
                                  where),
                      "cannot read a report");
  if (!stmt) return fail(stmt.error());
  if (text_arg.empty())
    stmt->bind(int_arg);
  else
    stmt->bind(text_arg);
  stmt->bind(to_string(stage));
  auto row = stmt->step();
  if (!row) return fail(row.error());
  if (!*row) return std::optional<StoredReport>();
  StoredReport out;
  out.id = stmt->integer(0);
  out.run_id = stmt->opt_integer(1);
  out.stage = stage;
  out.root = stmt->text(2);
  out.created_unix = stmt->integer(3);
  auto json = nlohmann::json::parse(stmt->text(4), nullptr, false);
  if (json.is_discarded()) return fail("state", path_, fmt::format("report {} is not valid JSON", out.id));
  auto report = checks::report_from_json(json);
  if (!report) return fail(Error{"state", path_, 0, fmt::format("report {}: {}", out.id, report.error().message)});
  out.report = std::move(*report);
  return std::optional<StoredReport>(std::move(out));
}

Result<std::optional<StoredReport>> StateStore::load_report(std::int64_t run_id, ReportStage stage) const {
  return query_report("run_id = ?", {}, run_id, stage);
}

Result<std::optional<StoredReport>> StateStore::latest_report(const std::string& root, ReportStage stage) const {
  if (root.empty()) return fail("state", path_, "latest_report needs a root");
  return query_report("root = ?", root, 0, stage);
}

Result<std::vector<FindingRecord>> StateStore::findings_for_run(std::int64_t run_id) const {
  auto stmt = prepare(
      "SELECT report_id, run_id, stage, check_id, severity, path, package, message, hint, finding_key, known "
      "FROM findings WHERE run_id = ? ORDER BY report_id, id",
      "cannot read the findings of a run");
  if (!stmt) return fail(stmt.error());
  stmt->bind(run_id);
  std::vector<FindingRecord> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    FindingRecord f;
    f.report_id = stmt->integer(0);
    f.run_id = stmt->opt_integer(1);
    auto stage = parse_report_stage(stmt->text(2));
    if (!stage)
      return fail(Error{"state", path_, 0, fmt::format("table findings, report {}: {}", f.report_id, stage.error().message)});
    f.stage = *stage;
    f.check = stmt->text(3);
    f.severity = stmt->text(4);
    f.path = stmt->text(5);
    f.package = stmt->text(6);
    f.message = stmt->text(7);
    f.hint = stmt->text(8);
    f.key = stmt->text(9);
    f.known = stmt->integer(10) != 0;
    out.push_back(std::move(f));
  }
  return out;
}

// ---- baselines ----------------------------------------------------------------------------

Result<void> StateStore::save_baseline(const std::string& root, const std::vector<std::string>& keys,
                                       std::optional<std::int64_t> run_id) {
  std::string context = fmt::format("cannot save the baseline of {}", root);
  auto txn = TransactionGuard::begin(*this, context);
  if (!txn) return fail(txn.error());
  auto del = prepare("DELETE FROM baselines WHERE root = ?", context);
  if (!del) return fail(del.error());
  del->bind(root);
  if (auto r = del->run(); !r) return r;
  auto ins = prepare("INSERT INTO baselines (root, created_unix, run_id) VALUES (?, ?, ?)", context);
  if (!ins) return fail(ins.error());
  ins->bind(root).bind(now_unix()).bind(run_id);
  if (auto r = ins->run(); !r) return r;
  auto k = prepare("INSERT OR IGNORE INTO baseline_keys (root, finding_key) VALUES (?, ?)", context);
  if (!k) return fail(k.error());
  for (const auto& key : keys) {
    k->reset();
    k->bind(root).bind(key);
    if (auto r = k->run(); !r) return r;
  }
  return txn->commit();
}

Result<std::optional<std::vector<std::string>>> StateStore::load_baseline(const std::string& root) const {
  const char* context = "cannot read a baseline";
  auto head = prepare("SELECT 1 FROM baselines WHERE root = ?", context);
  if (!head) return fail(head.error());
  head->bind(root);
  auto found = head->step();
  if (!found) return fail(found.error());
  if (!*found) return std::optional<std::vector<std::string>>();
  auto stmt = prepare("SELECT finding_key FROM baseline_keys WHERE root = ? ORDER BY finding_key", context);
  if (!stmt) return fail(stmt.error());
  stmt->bind(root);
  std::vector<std::string> keys;
  for (;;) {
    auto row = stmt->step();
    if (!row) return fail(row.error());
    if (!*row) break;
    keys.push_back(stmt->text(0));
  }
  return std::optional<std::vector<std::string>>(std::move(keys));
}

}  // namespace guard::state
