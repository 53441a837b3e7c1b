#include <algorithm>
#include <chrono>
#include <thread>
#include <fmt/format.h>

#include "checks/bounded_findings.h"
#include "checks/check.h"

namespace guard::checks {

Report run_check_set(const CheckContext& ctx, const std::vector<const Check*>& checks) {
  Report report;
  report.root = ctx.root.path();
  report.started = std::chrono::system_clock::now();
  auto t0 = std::chrono::steady_clock::now();

  struct Slot {
    CheckSummary summary;
    std::vector<Finding> findings;
  };
  std::vector<Slot> slots(checks.size());
  std::vector<std::size_t> order(checks.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;

  // One plain thread per check; the heavy checks parallelize inside with TBB. (An outer TBB
  // loop nested around their inner parallel loops doubled the CPU time of the package checks:
  // TBB's workers spun waiting for each other.)
  auto run_one = [&](std::size_t i) {
    const Check& check = *checks[i];
    Slot& slot = slots[i];
    slot.summary.id = std::string(check.id());
    const auto& cp = ctx.policy.check(slot.summary.id);
    auto start = std::chrono::steady_clock::now();
    base::Result<CheckOutput> out = [&]() -> base::Result<CheckOutput> {
      try {
        return check.run(ctx);
      } catch (const std::exception& e) {
        return base::fail("check " + slot.summary.id, "", std::string("internal error: ") + e.what());
      }
    }();
    slot.summary.duration =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    if (!out) {
      slot.summary.status = CheckStatus::error;
      slot.summary.note = out.error().to_string();
      return;
    }
    slot.summary.items = out->items;
    if (!out->skipped.empty()) {
      slot.summary.status = CheckStatus::skipped;
      slot.summary.note = out->skipped;
    } else {
      slot.summary.note = out->note;
    }
    // At most kMaxFindingsPerCheck findings, the blocking ones first: a root with millions of
    // missing files must not make millions of findings (and gigabytes of report). What a check
    // cut itself (its own findings-cut finding) is kept as it is.
    BoundedFindings kept;
    for (auto& f : out->findings) {
      if (f.check.empty()) f.check = slot.summary.id;
      f.severity = std::min(f.severity, cp.severity);  // a check set to warn never blocks
      if (f.severity == Severity::off) continue;
      bool ignored = std::any_of(cp.ignore.begin(), cp.ignore.end(), [&](const std::string& pattern) {
        return f.path == pattern || (pattern.size() > 1 && pattern.back() == '/' && f.path.rfind(pattern, 0) == 0);
      });
      if (ignored) continue;
      if (f.id == kFindingsCutId) {
        slot.findings.push_back(std::move(f));
      } else {
        kept.add(std::move(f));
      }
    }
    out->findings.clear();
    auto self_cut = std::move(slot.findings);
    slot.findings = kept.take(slot.summary.id);
    for (auto& f : self_cut) slot.findings.push_back(std::move(f));
  };
  std::vector<std::thread> threads;
  threads.reserve(order.size());
  for (std::size_t i : order) threads.emplace_back(run_one, i);
  for (auto& t : threads) t.join();

  for (auto& slot : slots) {
    report.checks.push_back(std::move(slot.summary));
    for (auto& f : slot.findings) report.findings.push_back(std::move(f));
  }
  report.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  report.finalize();
  return report;
}

base::Result<Report> run_checks(const CheckContext& ctx, const std::vector<std::string>& ids) {
  static const std::vector<std::unique_ptr<Check>> all = make_all_checks();
  std::vector<const Check*> chosen;
  for (const auto& id : ids) {
    bool found = std::any_of(all.begin(), all.end(), [&](const auto& c) { return c->id() == id; });
    if (!found) {
      std::string known;
      for (const auto& c : all) known += (known.empty() ? "" : ", ") + std::string(c->id());
      return base::fail("checks", "", fmt::format("unknown check '{}' (known: {})", id, known));
    }
  }
  for (const auto& c : all) {
    std::string id(c->id());
    bool wanted = ids.empty() || std::find(ids.begin(), ids.end(), id) != ids.end();
    if (wanted && ctx.policy.check(id).severity != Severity::off) chosen.push_back(c.get());
  }
  return run_check_set(ctx, chosen);
}

}  // namespace guard::checks
