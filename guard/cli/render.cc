#include "guard/cli/render.h"

#include <fmt/format.h>

#include <ctime>

#include <nlohmann/json.hpp>

#include "base/strings.h"

namespace guard::cli {

namespace {

std::string format_time(std::int64_t seconds, bool utc) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if ((utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)) == nullptr) return std::to_string(seconds);
  char buf[32];
  if (std::strftime(buf, sizeof(buf), utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm) == 0) {
    return std::to_string(seconds);
  }
  return buf;
}

}  // namespace

std::string local_time(std::int64_t seconds) { return format_time(seconds, false); }
std::string iso_utc(std::int64_t seconds) { return format_time(seconds, true); }

std::string render_run_summary(const run::RunSummary& s, bool color, bool verbose) {
  auto bold = [color](const std::string& t) { return color ? "\x1b[1m" + t + "\x1b[0m" : t; };
  // What came from the root or the command (package names, versions, messages quoting paths)
  // is printed with its control characters escaped.
  auto esc = [](const std::string& t) { return base::escape_control(t); };
  std::string out;
  out += bold(fmt::format("upgrade-guard run {}: {}", s.run_id, state::to_string(s.outcome))) + "\n";
  if (!s.command.empty()) out += "  command:  " + esc(base::join(s.command, " ")) + " (" + esc(s.command_status) + ")\n";
  if (s.snapshot) out += "  snapshot: " + esc(*s.snapshot) + "\n";
  if (!s.log_file.empty()) out += "  log:      " + esc(s.log_file) + "\n";
  const auto& c = s.changes;
  if (!c.empty()) {
    out += fmt::format("  changed:  {} upgraded, {} installed, {} removed, {} downgraded, {} changed state\n",
                       c.upgraded.size(), c.installed.size(), c.removed.size(), c.downgraded.size(),
                       c.state_changed.size());
    auto list = [&](const char* what, const std::vector<checks::PackageChange>& v) {
      std::size_t shown = 0;
      for (const auto& p : v) {
        if (++shown > 20) {
          out += fmt::format("            ... and {} more\n", v.size() - 20);
          break;
        }
        out += fmt::format("            {} {} {}{}\n", what, esc(p.package), esc(p.before_version),
                           p.after_version.empty() ? "" : " -> " + esc(p.after_version));
      }
    };
    list("upgraded  ", c.upgraded);
    list("installed ", c.installed);
    list("removed   ", c.removed);
    list("downgraded", c.downgraded);
  }
  if (s.post) {
    out += "\nPost-upgrade checks (only findings that are new since the baseline block):\n";
    out += checks::render_human(*s.post, color, verbose);
  }
  if (s.restored) {
    out += "\nChecks of the restored root:\n";
    out += checks::render_human(*s.restored, color, verbose);
  }
  out += "\n" + bold(esc(s.message)) + "\n";
  for (const auto& n : s.notes) out += "  - " + esc(n) + "\n";
  return out;
}

std::string render_run_json(const run::RunSummary& s) {
  nlohmann::json j;
  j["schema"] = 1;
  j["run"] = s.run_id;
  j["outcome"] = state::to_string(s.outcome);
  j["exit_code"] = s.exit_code;
  j["command"] = s.command;
  j["command_status"] = s.command_status;
  j["snapshot"] = s.snapshot ? nlohmann::json(*s.snapshot) : nlohmann::json(nullptr);
  j["log"] = s.log_file;
  j["message"] = s.message;
  j["notes"] = s.notes;
  auto changes = [](const std::vector<checks::PackageChange>& v) {
    auto a = nlohmann::json::array();
    for (const auto& p : v) a.push_back({{"package", p.package}, {"before", p.before_version}, {"after", p.after_version}});
    return a;
  };
  j["changes"] = {{"upgraded", changes(s.changes.upgraded)},
                  {"installed", changes(s.changes.installed)},
                  {"removed", changes(s.changes.removed)},
                  {"downgraded", changes(s.changes.downgraded)},
                  {"state_changed", changes(s.changes.state_changed)}};
  if (s.post) j["post"] = checks::to_json(*s.post);
  if (s.restored) j["restored"] = checks::to_json(*s.restored);
  if (s.rollback) {
    j["rollback"] = {{"snapshot", s.rollback->snapshot_id}, {"method", s.rollback->method},
                     {"takes_effect_now", s.rollback->takes_effect_now}, {"broken", s.rollback->broken},
                     {"preserved", s.rollback->preserved}, {"nested", s.rollback->nested}};
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string render_boot_check(const boot::BootCheckSummary& s) {
  std::string out = "upgrade-guard boot-check: " + s.message + "\n";
  if (!s.trial) return out;
  out += fmt::format("  trial {} (run {}, snapshot {}), boot {} of it\n", s.trial->id,
                     s.trial->run_id ? std::to_string(*s.trial->run_id) : "-", s.trial->snapshot_id,
                     s.trial->attempts);
  out += fmt::format("  settled after {:.1f} s, checked in {:.1f} s\n", s.settle_time.count() / 1000.0,
                     s.check_time.count() / 1000.0);
  for (const auto& p : s.problems) out += "  problem: " + p + "\n";
  for (const auto& n : s.notes) out += "  - " + n + "\n";
  return out;
}

std::string render_boot_check_json(const boot::BootCheckSummary& s) {
  nlohmann::json j{{"schema", 1},
                   {"message", s.message},
                   {"exit_code", s.exit_code},
                   {"problems", s.problems},
                   {"notes", s.notes},
                   {"settle_ms", s.settle_time.count()},
                   {"check_ms", s.check_time.count()}};
  j["action"] = s.action ? nlohmann::json(boot::to_string(*s.action)) : nlohmann::json(nullptr);
  if (s.trial) {
    j["trial"] = {{"id", s.trial->id},
                  {"run", s.trial->run_id ? nlohmann::json(*s.trial->run_id) : nlohmann::json(nullptr)},
                  {"snapshot", s.trial->snapshot_id},
                  {"attempts", s.trial->attempts}};
  } else {
    j["trial"] = nullptr;
  }
  if (s.report) j["report"] = checks::to_json(*s.report);
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

int boot_status_exit_code(const BootStatusView& v) {
  return v.report ? boot::exit_code(v.report->state) : static_cast<int>(kExitEnvironment);
}

std::string render_boot_status(const BootStatusView& v) {
  auto esc = [](const std::string& t) { return base::escape_control(t); };
  if (!v.report) return "trial boot: unknown (" + esc(v.error) + ")\n";
  std::string out = fmt::format("trial boot: {}", boot::to_string(v.report->state));
  const auto& r = v.records;
  if (r.trial && v.report->state != boot::TrialStatus::none) {
    out += fmt::format(" (trial {}", r.trial->id);
    if (r.trial->run_id) out += fmt::format(", run {}", *r.trial->run_id);
    if (r.packages > 0) out += fmt::format(", upgrade of {} package{}", r.packages, r.packages == 1 ? "" : "s");
    out += ")";
  }
  return out + ": " + esc(v.report->why) + "\n";
}

std::string render_boot_status_json(const BootStatusView& v) {
  nlohmann::json j{{"schema", 1},
                   {"state", v.report ? boot::to_string(v.report->state) : "unknown"},
                   {"settled", v.report && boot::settled(v.report->state)},
                   {"exit_code", boot_status_exit_code(v)},
                   {"why", v.report ? v.report->why : v.error},
                   {"waited_ms", v.waited_ms}};
  const auto& r = v.records;
  if (v.report && r.trial && v.report->state != boot::TrialStatus::none) {
    j["trial"] = {{"id", r.trial->id},
                  {"state", state::to_string(r.trial->state)},
                  {"snapshot", r.trial->snapshot_id},
                  {"attempts", r.trial->attempts},
                  {"created_unix", r.trial->created_unix},
                  {"updated_unix", r.trial->updated_unix},
                  {"message", r.trial->message}};
    j["run"] = r.trial->run_id ? nlohmann::json(*r.trial->run_id) : nlohmann::json(nullptr);
    j["packages"] = r.packages;
  } else {
    j["trial"] = nullptr;
    j["run"] = nullptr;
    j["packages"] = 0;
  }
  if (v.boot) {
    j["boot"] = {{"id", v.boot->boot_id},
                 {"started_unix", v.boot->started_unix},
                 {"fallback_trial", v.boot->fallback_trial ? nlohmann::json(*v.boot->fallback_trial)
                                                           : nlohmann::json(nullptr)}};
  } else {
    j["boot"] = nullptr;
  }
  if (!v.report) j["error"] = v.error;
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace guard::cli
