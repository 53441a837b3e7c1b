// upgrade-guard check: run the integrity checks on a root and report.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "base/input_limits.h"
#include "base/root.h"
#include "checks/check.h"
#include "checks/dpkg_diff.h"
#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "guard/core/check_session.h"

namespace guard::cli {
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
  // The live system read by another user: the 0700 and 0600 files it cannot read (the state,
  // /etc/shadow, root's files) would be thousands of findings that say nothing of the system.
  // An unknown answer is never "all well" nor "broken": refuse. A --root tree (a copy, a test
  // fixture) is readable as whoever owns it.
  if (o.root == "/" && ::geteuid() != 0) {
    std::fprintf(stderr, "upgrade-guard: check of the live system must run as root (as another user most of it "
                         "cannot be read); --root DIR checks a tree this user can read\n");
    return kExitEnvironment;
  }
  Invocation& inv = ctx.invocation();
  auto policy = inv.policy();
  if (!policy) return report_error(policy.error().error, policy.error().exit_code);
  auto root = inv.root();
  if (!root) return report_error(root.error().error, root.error().exit_code);

  CheckSessionOptions session;
  session.check_ids = opts.checks;
  std::vector<std::string> notes;
  if (opts.scope == "changed") {
    // The packages that differ from a dpkg status of before the change, and their files.
    auto host = base::Root::open("/");
    auto before = host ? host->read_file(opts.packages_from, base::limits::kDpkgStatusBytes) : base::Result<std::string>(base::fail(host.error()));
    if (!before) return report_error(before.error(), kExitUsage);
    auto after = (*root)->read_file("/var/lib/dpkg/status", base::limits::kDpkgStatusBytes);
    if (!after) return report_error(after.error(), kExitEnvironment);
    auto diff = checks::diff_status(*before, *after);
    if (!diff) return report_error(diff.error(), kExitUsage);
    session.scope = changed_scope(**root, *diff, {});
    notes.push_back("scope: " + std::to_string(session.scope.packages.size()) + " changed packages since " +
                    opts.packages_from);
  }
  Progress progress(::isatty(STDERR_FILENO) != 0 && !o.json);
  session.progress = [&progress](std::string_view c, std::uint64_t d, std::uint64_t t) { progress.update(c, d, t); };

  auto report = run_checks({**root, **policy, inv.runner(), (*root)->is_host_root()}, session);
  progress.clear();
  if (!report) return report_error(report.error(), kExitUsage);
  if (!opts.baseline.empty()) {
    auto store = inv.store();
    if (!store) return report_error(store.error().error, store.error().exit_code);
    const std::string key = root_key(**root);
    if (opts.baseline == "compare") {
      auto found = compare_with_baseline(**store, key, *report);
      if (!found) return report_error(found.error(), kExitEnvironment);
      if (!*found) notes.push_back("no baseline saved for " + key + " yet: every finding counts (save one with --baseline save)");
    }
    auto saved = (*store)->transaction([&]() -> base::Result<void> {
      if (auto r = (*store)->save_report(std::nullopt, state::ReportStage::check, *report); !r) return base::fail(r.error());
      if (opts.baseline == "save") return (*store)->save_baseline(key, finding_keys(*report));
      return {};
    });
    if (!saved) return report_error(saved.error(), kExitEnvironment);
    if (opts.baseline == "save")
      notes.push_back("baseline saved for " + key + " (" + std::to_string(report->findings.size()) + " findings accepted)");
  }
  if (o.json) {
    std::printf("%s\n", checks::to_json(*report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputs(checks::render_human(*report, ::isatty(STDOUT_FILENO) != 0, ctx.options.verbose).c_str(), stdout);
    for (const auto& note : notes) std::fprintf(stdout, "%s\n", note.c_str());
  }
  return report->verdict == checks::Verdict::pass ? kExitOk : kExitChecksFailed;
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

}  // namespace guard::cli
