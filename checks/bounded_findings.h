// The findings cap: at most kMaxFindingsPerCheck findings of one check are kept, the most severe
// first, and what was cut is one more finding that says how many (and how many would block).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "checks/report.h"

namespace guard::checks {

// Above the largest real case seen (npm rewriting Debian's nodejs: 1,163 files) and small in
// memory (about 1 MB a check), where a root with two million missing files made two million
// findings: 5 GB and two minutes for `check`.
inline constexpr std::size_t kMaxFindingsPerCheck = 2000;

// The id of the finding that counts what a check cut. It is never matched with a baseline
// (apply_baseline leaves it unknown): when blocking findings were cut it blocks, so the cap
// never turns a failing verdict into a passing one.
inline constexpr std::string_view kFindingsCutId = "findings-cut";

// Keeps at most `limit` findings: the most severe, and among equals those of the lowest `order`
// (the order a check produces them in; parallel workers pass it explicitly so that what is kept
// does not depend on the threads' timing). Counts what it drops.
class BoundedFindings {
 public:
  explicit BoundedFindings(std::size_t limit = kMaxFindingsPerCheck) : limit_(limit) {}
  void add(Finding f, std::uint64_t order);
  void add(Finding f) { add(std::move(f), next_order_++); }
  [[nodiscard]] std::uint64_t cut() const { return cut_; }
  [[nodiscard]] std::uint64_t cut_blocking() const { return cut_blocking_; }
  // The kept findings by `order`, then, when some were cut, a finding of `check` with id
  // kFindingsCutId, as severe as the most severe cut, e.g. "598,001 more findings not kept (at
  // most 2,000 a check), 0 of them blocking". Leaves this empty.
  [[nodiscard]] std::vector<Finding> take(const std::string& check);

 private:
  struct Kept {
    std::uint64_t order;
    Finding finding;
  };
  void count_cut(const Finding& f);
  std::size_t limit_;
  std::vector<Kept> heap_;  // the first to drop on top: the least severe, then the latest
  std::uint64_t next_order_ = 0;
  std::uint64_t cut_ = 0;
  std::uint64_t cut_blocking_ = 0;
  Severity cut_severity_ = Severity::off;
};

}  // namespace guard::checks
