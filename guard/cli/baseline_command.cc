// upgrade-guard baseline accept|show: the root's accepted findings, the ones the audit and the
// gate do not block on (AIDE's re-init, without moving databases by hand).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iterator>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "base/strings.h"
#include "guard/cli/cli.h"
#include "guard/cli/invocation.h"
#include "guard/core/check_session.h"
#include "guard/core/locks.h"

namespace guard::cli {
namespace {

// A baseline key (check \x1f path \x1f id-or-message) as a reader sees it:
// "libraries /usr/lib/x/plugin.so: needs libfoo.so.1, which is not found".
std::string describe_key(const std::string& key) {
  auto parts = base::split(key, '\x1f');
  if (parts.size() != 3) return key;
  std::string out(parts[0]);
  if (!parts[1].empty()) out += " " + std::string(parts[1]);
  return out + ": " + std::string(parts[2]);
}

nlohmann::json key_json(const std::string& key) {
  auto parts = base::split(key, '\x1f');
  if (parts.size() != 3) return {{"key", key}};
  return {{"check", std::string(parts[0])}, {"path", std::string(parts[1])}, {"id", std::string(parts[2])}};
}

// Keys in `a` and not in `b`, sorted.
std::vector<std::string> minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

void print_accepted(const GlobalOptions& o, const checks::Report& report, const std::string& key,
                    bool had_previous, const std::set<std::string>& now, const std::vector<std::string>& added,
                    const std::vector<std::string>& dropped) {
  if (o.json) {
    nlohmann::json j{{"schema", 1},          {"root", key},           {"accepted", now.size()},
                     {"newly_accepted", added.size()}, {"dropped", dropped.size()},
                     {"previous_baseline", had_previous}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  std::printf("baseline accepted for %s: %zu findings (%zu newly accepted, %zu dropped since the %s)\n", key.c_str(),
              now.size(), added.size(), dropped.size(),
              had_previous ? "previous baseline" : "start: there was no baseline");
  for (const auto& k : added) std::printf("  + %s\n", describe_key(k).c_str());
  for (const auto& k : dropped) std::printf("  - %s\n", describe_key(k).c_str());
  for (const auto& c : report.checks) {
    if (c.status != checks::CheckStatus::error) continue;
    std::printf("warning: check %s could not run (%s): its findings are not in the baseline; the audit\n"
                "will report them as new once it runs again\n",
                c.id.c_str(), c.note.c_str());
  }
}

int accept_baseline(CliContext& ctx) {
  auto run_ctx = ctx.invocation().context();
  if (!run_ctx) return report_error(run_ctx.error().error, run_ctx.error().exit_code);
  RunContext& rc = **run_ctx;
  auto quiet = wait_for_quiet_root(rc.root, rc.root_key, rc.store, rc.policy.preflight.lock_timeout,
                                   [&](int pid, const std::string& p) {
                                     rc.say("waiting for the package manager (pid " + std::to_string(pid) +
                                            " holds " + p + ")");
                                   });
  if (!quiet) return report_error(quiet.error(), kExitEnvironment);
  auto previous = rc.store.load_baseline(rc.root_key);
  if (!previous) return report_error(previous.error(), kExitEnvironment);

  auto report = run_checks({rc.root, rc.policy, rc.runner, rc.live}, {});
  if (!report) return report_error(report.error(), kExitUsage);
  std::vector<std::string> keys = finding_keys(*report);
  auto saved = rc.store.transaction([&]() -> base::Result<void> {
    if (auto r = rc.store.save_report(std::nullopt, state::ReportStage::check, *report); !r) return base::fail(r.error());
    return rc.store.save_baseline(rc.root_key, keys);
  });
  if (!saved) return report_error(saved.error(), kExitEnvironment);

  std::set<std::string> now(keys.begin(), keys.end());
  std::set<std::string> before;
  if (*previous) before.insert((*previous)->begin(), (*previous)->end());
  print_accepted(ctx.options, *report, rc.root_key, previous->has_value(), now, minus(now, before), minus(before, now));
  return kExitOk;
}

int show_baseline(CliContext& ctx) {
  const GlobalOptions& o = ctx.options;
  Invocation& inv = ctx.invocation();
  auto root = inv.root();
  if (!root) return report_error(root.error().error, root.error().exit_code);
  auto store = inv.store();
  if (!store) return report_error(store.error().error, store.error().exit_code);
  const std::string key = root_key(**root);
  auto keys = (*store)->load_baseline(key);
  if (!keys) return report_error(keys.error(), kExitEnvironment);
  if (o.json) {
    nlohmann::json j{{"schema", 1}, {"root", key}, {"baseline", nullptr}};
    if (*keys) {
      j["baseline"] = nlohmann::json::array();
      for (const auto& k : **keys) j["baseline"].push_back(key_json(k));
    }
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (!*keys) {
    std::printf("no accepted baseline for %s yet: `upgrade-guard baseline accept` accepts the current findings\n",
                key.c_str());
  } else {
    std::printf("accepted baseline for %s: %zu findings\n", key.c_str(), (*keys)->size());
    for (const auto& k : **keys) std::printf("  %s\n", describe_key(k).c_str());
  }
  return kExitOk;
}

}  // namespace

void add_baseline_command(CLI::App& app, CliContext& ctx) {
  auto* baseline = app.add_subcommand(
      "baseline",
      "The root's accepted findings: the audit and `gate open` block only on findings absent\n"
      "from them");
  baseline->require_subcommand(1);
  auto* accept = baseline->add_subcommand(
      "accept",
      "Run every check and accept all current findings as the root's baseline (AIDE's re-init):\n"
      "prints how many are accepted, newly accepted and dropped since the previous baseline.\n"
      "Review `upgrade-guard audit` first: whatever it reports is accepted. Exit 0, or 4 while a\n"
      "guarded run is changing the root.");
  accept->callback([&ctx] { ctx.exit_code = accept_baseline(ctx); });
  auto* show = baseline->add_subcommand("show", "List the accepted findings (check, path and identity)");
  show->callback([&ctx] { ctx.exit_code = show_baseline(ctx); });
}

}  // namespace guard::cli
