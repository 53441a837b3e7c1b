#include "checks/bounded_findings.h"

#include <fmt/format.h>

#include <algorithm>

namespace guard::checks {
namespace {

// "a drops before b": less severe, or as severe and later.
template <class K>
bool drops_first(const K& a, const K& b) {
  return a.finding.severity != b.finding.severity ? a.finding.severity < b.finding.severity : a.order > b.order;
}

// 1234567 -> "1,234,567"
std::string thousands(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

void BoundedFindings::count_cut(const Finding& f) {
  ++cut_;
  if (f.severity == Severity::block) ++cut_blocking_;
  cut_severity_ = std::max(cut_severity_, f.severity);
}

void BoundedFindings::add(Finding f, std::uint64_t order) {
  // std heaps put the greatest on top: order them so that the first to drop is the greatest.
  auto heap_less = [](const Kept& a, const Kept& b) { return drops_first(b, a); };
  Kept k{order, std::move(f)};
  if (heap_.size() < limit_) {
    heap_.push_back(std::move(k));
    std::push_heap(heap_.begin(), heap_.end(), heap_less);
    return;
  }
  if (heap_.empty() || !drops_first(heap_.front(), k)) {
    count_cut(k.finding);
    return;
  }
  std::pop_heap(heap_.begin(), heap_.end(), heap_less);
  count_cut(heap_.back().finding);
  heap_.back() = std::move(k);
  std::push_heap(heap_.begin(), heap_.end(), heap_less);
}

std::vector<Finding> BoundedFindings::take(const std::string& check) {
  std::sort(heap_.begin(), heap_.end(), [](const Kept& a, const Kept& b) { return a.order < b.order; });
  std::vector<Finding> out;
  out.reserve(heap_.size() + 1);
  for (auto& k : heap_) out.push_back(std::move(k.finding));
  heap_.clear();
  if (cut_ > 0) {
    out.push_back(make_finding(
        check, cut_severity_, "",
        fmt::format("{} more findings not kept (at most {} a check), {} of them blocking{}", thousands(cut_),
                    thousands(limit_), thousands(cut_blocking_),
                    cut_blocking_ > 0 ? ": they block, as they cannot be compared with the baseline" : ""),
        "fix the first ones and run the check again", std::string(kFindingsCutId)));
  }
  return out;
}

}  // namespace guard::checks
