// upgrade-guard check: run the integrity checks on a root and report.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "checks/check.h"
#include "guard/cli.h"
#include "guard/check_session.h"

namespace guard {
namespace {

struct CheckOptions {
  std::vector<std::string> checks;
  std::string baseline;  // "", "save" or "compare"
  std::string scope = "full";
  std::string packages_from;
};

// Prints "checking libraries 1200/5400" on a terminal, at most ten times a second.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  ~Progress() { clear(); }
  void update(std::string_view check, std::uint64_t done, std::uint64_t total) {
    if (!enabled_) return;
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    if (total > 0) {
      std::fprintf(stderr, "\r\x1b[Kchecking %.*s %llu/%llu", static_cast<int>(check.size()), check.data(),
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
    } else {
      std::fprintf(stderr, "\r\x1b[Kchecking %.*s %llu", static_cast<int>(check.size()), check.data(),
                   static_cast<unsigned long long>(done));
    }
    shown_ = true;
  }
  void clear() {
    if (shown_) std::fprintf(stderr, "\r\x1b[K");
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_{};
};

int run_check(CliContext& ctx, const CheckOptions& opts) {
  const GlobalOptions& o = ctx.options;
  auto policy = load_cli_policy(o);
  if (!policy) return report_error(policy.error(), kExitUsage);

  CheckSessionOptions session;
  session.check_ids = opts.checks;
  session.baseline = opts.baseline;
  session.packages_from = opts.packages_from;
  session.scope_changed = opts.scope == "changed";
  Progress progress(::isatty(STDERR_FILENO) != 0 && !o.json);
  session.progress = [&progress](std::string_view c, std::uint64_t d, std::uint64_t t) { progress.update(c, d, t); };

  auto outcome = run_check_session(o, *policy, session);
  progress.clear();
  if (!outcome) return report_error(outcome.error().error, outcome.error().exit_code);
  const checks::Report& report = outcome->report;
  if (o.json) {
    std::printf("%s\n", checks::to_json(report).dump(2).c_str());
  } else {
    std::fputs(checks::render_human(report, ::isatty(STDOUT_FILENO) != 0).c_str(), stdout);
    for (const auto& note : outcome->notes) std::fprintf(stdout, "%s\n", note.c_str());
  }
  return report.verdict == checks::Verdict::pass ? kExitOk : kExitChecksFailed;
}

}  // namespace

void add_check_command(CLI::App& app, CliContext& ctx) {
  auto opts = std::make_shared<CheckOptions>();
  auto* sub = app.add_subcommand(
      "check",
      "Run the integrity checks on the root and report. Exits 0 when nothing blocks, 1 when a\n"
      "blocking finding (a regression, with --baseline compare) was found.");
  std::string ids;
  for (const auto& id : policies::known_check_ids()) ids += (ids.empty() ? "" : ", ") + id;
  sub->add_option("--checks", opts->checks, "Only these checks (comma-separated): " + ids)->delimiter(',');
  sub->add_option("--baseline", opts->baseline,
                  "save: store the findings as this root's baseline; compare: only findings absent from\n"
                  "the baseline block (the others are shown as known)")
      ->check(CLI::IsMember({"save", "compare"}));
  sub->add_option("--scope", opts->scope,
                  "full: every package and file; changed: only packages that differ from --packages-from")
      ->check(CLI::IsMember({"full", "changed"}))
      ->capture_default_str();
  sub->add_option("--packages-from", opts->packages_from,
                  "A dpkg status file from before the change (e.g. a copy of /var/lib/dpkg/status)")
      ->check(CLI::ExistingFile);
  sub->callback([&ctx, opts] {
    if (opts->scope == "changed" && opts->packages_from.empty()) {
      std::fprintf(stderr, "upgrade-guard: --scope changed needs --packages-from FILE\n");
      ctx.exit_code = kExitUsage;
      return;
    }
    ctx.exit_code = run_check(ctx, *opts);
  });
}

}  // namespace guard
