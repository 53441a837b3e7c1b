// A stand-in for `upgrade-guard check --checks ...` until the CLI lands: runs the named checks
// on a root with the default policy and prints the findings and the time they took.
//   checks_fs_bench ROOT CHECK[,CHECK...] [--quiet]
#include <chrono>
#include <cstdio>
#include <string>

#include "base/strings.h"
#include "checks/check.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s ROOT CHECK[,CHECK...] [--quiet]\n", argv[0]);
    return 2;
  }
  bool quiet = argc > 3 && std::string(argv[3]) == "--quiet";
  auto root = guard::base::Root::open(argv[1]);
  if (!root) {
    std::fprintf(stderr, "%s\n", root.error().to_string().c_str());
    return 2;
  }
  guard::policies::Policy policy;
  std::vector<std::string> ids;
  for (auto id : guard::base::split(argv[2], ',')) ids.emplace_back(id);
  guard::checks::CheckContext ctx{*root, policy, {}, nullptr, root->is_host_root(), {}};
  auto report = guard::checks::run_checks(ctx, ids);
  if (!report) {
    std::fprintf(stderr, "%s\n", report.error().to_string().c_str());
    return 2;
  }
  for (const auto& c : report->checks)
    std::printf("%s: %s, %llu items, %lld ms %s\n", c.id.c_str(), guard::checks::to_string(c.status),
                static_cast<unsigned long long>(c.items), static_cast<long long>(c.duration.count()), c.note.c_str());
  if (!quiet)
    for (const auto& f : report->findings)
      std::printf("[%s] %s %s: %s\n", guard::policies::to_string(f.severity), f.check.c_str(), f.path.c_str(),
                  f.message.c_str());
  std::printf("blocking: %zu\n", report->blocking_count());
  return report->blocking_count() == 0 ? 0 : 1;
}
