// A small driver for tests/bench/checks_dpkg.sh until the CLI's `check` command is merged:
//   bench_checks_dpkg [--root DIR] [--checks id,id] [--packages pkg,pkg] [--list]
// Runs the checks through run_checks with the default policy and prints one summary line
// per check and the blocking/warning counts; --list prints every finding.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "base/root.h"
#include "base/strings.h"
#include "checks/check.h"

int main(int argc, char** argv) {
  using namespace guard;
  std::string root_dir = "/";
  std::vector<std::string> ids;
  checks::Scope scope;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--root") {
      root_dir = value();
    } else if (a == "--checks") {
      std::string v = value();
      for (auto id : base::split(v, ',')) ids.emplace_back(id);
    } else if (a == "--packages") {
      scope.full = false;
      std::string v = value();
      for (auto p : base::split(v, ',')) scope.packages.emplace(p);
    } else if (a == "--list") {
      list = true;
    } else {
      std::fprintf(stderr, "usage: %s [--root DIR] [--checks ids] [--packages pkgs] [--list]\n", argv[0]);
      return 2;
    }
  }
  auto root = base::Root::open(root_dir);
  if (!root) {
    std::fprintf(stderr, "%s\n", root.error().to_string().c_str());
    return 2;
  }
  policies::Policy policy;
  checks::CheckContext ctx{*root, policy, scope, nullptr, root->is_host_root(), {}};
  auto report = checks::run_checks(ctx, ids);
  if (!report) {
    std::fprintf(stderr, "%s\n", report.error().to_string().c_str());
    return 2;
  }
  std::size_t warn = 0;
  for (const auto& f : report->findings) {
    if (f.severity == policies::Severity::warn) ++warn;
    if (list)
      std::printf("%s %s %s [%s] %s\n", policies::to_string(f.severity), f.check.c_str(), f.path.c_str(),
                  f.package.c_str(), f.message.c_str());
  }
  for (const auto& c : report->checks)
    std::printf("check %s %s items=%llu ms=%lld %s\n", c.id.c_str(), checks::to_string(c.status),
                static_cast<unsigned long long>(c.items), static_cast<long long>(c.duration.count()),
                c.note.c_str());
  std::printf("blocking=%zu warnings=%zu ms=%lld\n", report->blocking_count(), warn,
              static_cast<long long>(report->duration.count()));
  return report->blocking_count() > 0 ? 1 : 0;
}
