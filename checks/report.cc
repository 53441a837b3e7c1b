#include "checks/report.h"

#include "base/strings.h"
#include "checks/bounded_findings.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_set>

namespace guard::checks {

std::string Finding::key() const { return check + '\x1f' + path + '\x1f' + (id.empty() ? message : id); }

Finding make_finding(std::string check, Severity severity, std::string path, std::string message, std::string hint,
                     std::string id) {
  Finding f;
  f.check = std::move(check);
  f.severity = severity;
  f.path = std::move(path);
  f.message = std::move(message);
  f.hint = std::move(hint);
  f.id = std::move(id);
  return f;
}

Finding make_package_finding(std::string check, Severity severity, std::string package, std::string path,
                             std::string message, std::string hint, std::string id) {
  Finding f =
      make_finding(std::move(check), severity, std::move(path), std::move(message), std::move(hint), std::move(id));
  f.package = std::move(package);
  return f;
}

bool is_blocking(const Finding& f) { return f.severity == Severity::block && !f.known; }

std::size_t Report::blocking_count() const {
  return static_cast<std::size_t>(std::count_if(findings.begin(), findings.end(), is_blocking));
}

bool Report::has_check_error() const {
  return std::any_of(checks.begin(), checks.end(), [](const CheckSummary& c) { return c.status == CheckStatus::error; });
}

void Report::finalize() {
  std::map<std::string, std::pair<bool, bool>> by_check;  // id -> (blocking, warning)
  for (const auto& f : findings) {
    auto& [block, warn] = by_check[f.check];
    if (is_blocking(f)) block = true;
    else if (f.severity >= Severity::warn && !f.known) warn = true;
  }
  for (auto& c : checks) {
    if (c.status == CheckStatus::skipped || c.status == CheckStatus::error) continue;
    auto it = by_check.find(c.id);
    c.status = it == by_check.end() ? CheckStatus::passed
               : it->second.first   ? CheckStatus::failed
               : it->second.second  ? CheckStatus::warned
                                    : CheckStatus::passed;
  }
  verdict = blocking_count() > 0 || has_check_error() ? Verdict::fail : Verdict::pass;
}

void apply_baseline(Report& report, const std::vector<std::string>& baseline_keys) {
  std::unordered_set<std::string> keys(baseline_keys.begin(), baseline_keys.end());
  // What the findings cap cut was never compared: never known (checks/bounded_findings.h).
  for (auto& f : report.findings) f.known = f.id != kFindingsCutId && keys.count(f.key()) > 0;
  report.baseline_compared = true;
  report.finalize();
}

const char* to_string(CheckStatus s) {
  switch (s) {
    case CheckStatus::passed: return "passed";
    case CheckStatus::warned: return "warned";
    case CheckStatus::failed: return "failed";
    case CheckStatus::skipped: return "skipped";
    case CheckStatus::error: return "error";
  }
  return "?";
}

const char* to_string(Verdict v) { return v == Verdict::pass ? "pass" : "fail"; }

base::Result<Severity> parse_severity(std::string_view s) {
  if (s == "off") return Severity::off;
  if (s == "info") return Severity::info;
  if (s == "warn") return Severity::warn;
  if (s == "block") return Severity::block;
  return base::fail("severity", "", "unknown severity '" + std::string(s) + "' (expected off, info, warn or block)");
}

namespace {

base::Result<CheckStatus> parse_status(std::string_view s) {
  for (auto st : {CheckStatus::passed, CheckStatus::warned, CheckStatus::failed, CheckStatus::skipped,
                  CheckStatus::error}) {
    if (s == to_string(st)) return st;
  }
  return base::fail("report", "", "unknown check status '" + std::string(s) + "'");
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  (void)std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);  // 20 characters: always fits
  return buf;
}

}  // namespace

nlohmann::json to_json(const Report& report) {
  nlohmann::json j;
  j["schema"] = 1;
  j["root"] = report.root;
  j["started"] = iso_time(report.started);
  j["started_unix"] = std::chrono::duration_cast<std::chrono::seconds>(report.started.time_since_epoch()).count();
  j["duration_ms"] = report.duration.count();
  j["verdict"] = to_string(report.verdict);
  j["baseline_compared"] = report.baseline_compared;
  j["blocking"] = report.blocking_count();
  auto& checks = j["checks"] = nlohmann::json::array();
  for (const auto& c : report.checks) {
    nlohmann::json cj{{"id", c.id}, {"status", to_string(c.status)}, {"items", c.items},
                      {"duration_ms", c.duration.count()}};
    if (!c.note.empty()) cj["note"] = c.note;
    checks.push_back(std::move(cj));
  }
  auto& findings = j["findings"] = nlohmann::json::array();
  for (const auto& f : report.findings) {
    nlohmann::json fj{{"check", f.check}, {"severity", policies::to_string(f.severity)}, {"path", f.path},
                      {"message", f.message}, {"known", f.known}, {"blocking", is_blocking(f)}};
    if (!f.package.empty()) fj["package"] = f.package;
    if (!f.hint.empty()) fj["hint"] = f.hint;
    if (!f.id.empty()) fj["id"] = f.id;
    findings.push_back(std::move(fj));
  }
  return j;
}

base::Result<Report> report_from_json(const nlohmann::json& j) {
  try {
    if (j.value("schema", 0) != 1) return base::fail("report", "", "unsupported report schema");
    Report r;
    r.root = j.at("root").get<std::string>();
    r.started = std::chrono::system_clock::time_point(std::chrono::seconds(j.at("started_unix").get<long long>()));
    r.duration = std::chrono::milliseconds(j.at("duration_ms").get<long long>());
    r.baseline_compared = j.value("baseline_compared", false);
    for (const auto& cj : j.at("checks")) {
      auto status = parse_status(cj.at("status").get<std::string>());
      if (!status) return base::fail(status.error());
      r.checks.push_back(CheckSummary{cj.at("id").get<std::string>(), *status, cj.value("items", std::uint64_t{0}),
                                      std::chrono::milliseconds(cj.value("duration_ms", 0LL)),
                                      cj.value("note", std::string())});
    }
    for (const auto& fj : j.at("findings")) {
      auto sev = parse_severity(fj.at("severity").get<std::string>());
      if (!sev) return base::fail(sev.error());
      Finding f = make_package_finding(fj.at("check").get<std::string>(), *sev, fj.value("package", std::string()),
                                       fj.value("path", std::string()), fj.value("message", std::string()),
                                       fj.value("hint", std::string()), fj.value("id", std::string()));
      f.known = fj.value("known", false);
      r.findings.push_back(std::move(f));
    }
    r.verdict = j.at("verdict").get<std::string>() == "pass" ? Verdict::pass : Verdict::fail;
    return r;
  } catch (const nlohmann::json::exception& e) {
    return base::fail("report", "", std::string("malformed report JSON: ") + e.what());
  }
}

namespace {

// A group of one package's findings is listed one by one up to this many, else summarised
// with its first kGroupShown paths.
constexpr std::size_t kGroupAbove = 5;
constexpr std::size_t kGroupShown = 3;

// 1163 -> "1,163".
std::string group_count(std::size_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

std::string render_human(const Report& report, bool color, bool verbose) {
  // Every string from the root (paths, link targets, package names, messages quoting its
  // files) is printed with its control characters escaped: no escape sequence reaches the terminal.
  auto esc = [](const std::string& text) { return base::escape_control(text); };
  auto paint = [color](const char* code, const std::string& text) {
    return color ? fmt::format("\x1b[{}m{}\x1b[0m", code, text) : text;
  };
  auto sev_label = [&](const Finding& f) {
    if (f.known) return paint("2", "known");
    switch (f.severity) {
      case Severity::block: return paint("1;31", "BLOCK");
      case Severity::warn: return paint("33", "warn ");
      default: return paint("36", "info ");
    }
  };
  std::string out = fmt::format("upgrade-guard check of {}\n", esc(report.root));
  for (const auto& c : report.checks) {
    std::string status = to_string(c.status);
    const char* code = c.status == CheckStatus::passed    ? "32"
                       : c.status == CheckStatus::warned  ? "33"
                       : c.status == CheckStatus::skipped ? "2"
                                                          : "1;31";
    out += fmt::format("  {:<15} {:<18} {:>8} items {:>7.2f}s", c.id, paint(code, status), c.items,
                       static_cast<double>(c.duration.count()) / 1000.0);
    if (!c.note.empty()) out += "  (" + esc(c.note) + ")";
    out += '\n';
    std::size_t known = 0;
    // Findings of one package at one severity, in report order: listed one by one up to a few,
    // else as one line with a count and the first paths, as an administrator reads a host
    // where another tool rewrote a package's files (npm over Debian's nodejs: 1,163 of them).
    std::vector<std::pair<std::string, std::vector<const Finding*>>> groups;
    for (const auto& f : report.findings) {
      if (f.check != c.id) continue;
      if (f.known) {  // accepted in the baseline: counted, not listed (--json lists them)
        ++known;
        continue;
      }
      std::string key = f.package + '\x1f' + to_string(f.severity);
      auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.first == key; });
      if (g == groups.end()) {
        groups.push_back({key, {}});
        g = groups.end() - 1;
      }
      g->second.push_back(&f);
    }
    for (const auto& [key, fs] : groups) {
      if (verbose || fs.size() <= kGroupAbove || fs.front()->package.empty()) {
        for (const Finding* f : fs) {
          out += fmt::format("      {} {}{}{}\n", sev_label(*f), f->path.empty() ? "" : esc(f->path) + ": ", esc(f->message),
                             f->package.empty() ? "" : " [" + esc(f->package) + "]");
          if (!f->hint.empty()) out += fmt::format("            hint: {}\n", esc(f->hint));
        }
        continue;
      }
      const Finding& first = *fs.front();
      // "nodejs: 1,163 files changed" when they share what happened to them (the finding id:
      // "missing", "changed"), else the count and each path with its own message.
      const bool same_message =
          std::all_of(fs.begin(), fs.end(), [&](const Finding* f) { return f->message == first.message; });
      const bool same_id = !first.id.empty() && std::all_of(fs.begin(), fs.end(), [&](const Finding* f) {
        return f->id == first.id;
      });
      out += fmt::format("      {} {}: {} files{}\n", sev_label(first), esc(first.package), group_count(fs.size()),
                         same_message ? ": " + esc(first.message)
                         : same_id    ? " " + esc(first.id)
                                      : "");
      for (std::size_t i = 0; i < kGroupShown; ++i) {
        out += fmt::format("            {}{}\n", esc(fs[i]->path), same_message || same_id ? "" : ": " + esc(fs[i]->message));
      }
      out += fmt::format("            ... and {} more (--verbose or --json lists every one)\n",
                         group_count(fs.size() - kGroupShown));
      if (!first.hint.empty()) out += fmt::format("            hint: {}\n", esc(first.hint));
    }
    if (known > 0) out += fmt::format("      {} {} findings already in the baseline (listed by --json)\n", paint("2", "known"), known);
  }
  std::size_t blocking = report.blocking_count();
  std::size_t warnings = static_cast<std::size_t>(std::count_if(
      report.findings.begin(), report.findings.end(),
      [](const Finding& f) { return !f.known && f.severity == Severity::warn; }));
  std::size_t known = static_cast<std::size_t>(
      std::count_if(report.findings.begin(), report.findings.end(), [](const Finding& f) { return f.known; }));
  std::string verdict = report.verdict == Verdict::pass ? paint("1;32", "PASS") : paint("1;31", "FAIL");
  out += fmt::format("{}: {} blocking, {} warnings", verdict, blocking, warnings);
  if (report.baseline_compared) out += fmt::format(", {} already in the baseline", known);
  out += fmt::format(" ({:.2f}s)\n", static_cast<double>(report.duration.count()) / 1000.0);
  return out;
}

}  // namespace guard::checks
