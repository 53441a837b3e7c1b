// The report model every check fills in and every output renders (human text and JSON).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/error.h"
#include "policies/policy.h"

namespace guard::checks {

using policies::Severity;

// One thing a check found. e.g. {check="libraries", severity=block, path="/usr/bin/curl",
// message="needs libcurl.so.4, which is not found", package="curl", hint="apt-get install --reinstall libcurl4"}.
struct Finding {
  std::string check;
  Severity severity = Severity::block;
  std::string path;     // root-relative, as the user sees it; may be empty
  std::string message;
  std::string package;  // the dpkg package owning `path`, when known
  std::string hint;     // what would repair it
  std::string id;       // stable identity for baselines when `message` holds volatile detail
  bool known = false;   // present in the baseline: reported, never blocking

  // The identity compared against a baseline: check, path and id (or message).
  [[nodiscard]] std::string key() const;
};

// A finding in one expression. e.g. make_finding("boot", Severity::block,
// "/boot/initrd.img-6.1.0-50-amd64", "the initrd is missing", "update-initramfs -c -k 6.1.0-50-amd64").
[[nodiscard]] Finding make_finding(std::string check, Severity severity, std::string path, std::string message,
                                   std::string hint = {}, std::string id = {});

// The same about a dpkg package's file or state: `package` is the package key, e.g.
// make_package_finding("package-files", Severity::block, "curl", "/usr/bin/curl",
// "/usr/bin/curl of package curl is missing", "apt-get install --reinstall curl", "missing").
[[nodiscard]] Finding make_package_finding(std::string check, Severity severity, std::string package, std::string path,
                                           std::string message, std::string hint = {}, std::string id = {});

enum class CheckStatus { passed, warned, failed, skipped, error };

// How one check went. `note` says why it was skipped or what the error was.
struct CheckSummary {
  std::string id;
  CheckStatus status = CheckStatus::passed;
  std::uint64_t items = 0;  // things examined: files, links, packages...
  std::chrono::milliseconds duration{0};
  std::string note;
};

enum class Verdict { pass, fail };

struct Report {
  std::string root;  // host path of the checked root, e.g. "/"
  std::chrono::system_clock::time_point started;
  std::chrono::milliseconds duration{0};
  std::vector<CheckSummary> checks;
  std::vector<Finding> findings;
  bool baseline_compared = false;
  Verdict verdict = Verdict::pass;

  // Blocking findings that are not in the baseline.
  [[nodiscard]] std::size_t blocking_count() const;
  // True when some check could not run to the end (CheckStatus::error).
  [[nodiscard]] bool has_check_error() const;
  // Recomputes verdict and per-check status from the findings.
  void finalize();
};

// True when `f` blocks: severity block and not in the baseline.
[[nodiscard]] bool is_blocking(const Finding& f);

// Marks findings present in `baseline_keys` (Finding::key() values) as known.
void apply_baseline(Report& report, const std::vector<std::string>& baseline_keys);

// Human output, grouped by check and, within a check, by package: more than a few findings of
// one package are one line with a count and the first paths, unless `verbose`. ANSI colours
// when `color`. e.g. "BLOCK nodejs: 1,163 files: content differs from the package's md5sum".
[[nodiscard]] std::string render_human(const Report& report, bool color, bool verbose = false);
// JSON with "schema": 1.
[[nodiscard]] nlohmann::json to_json(const Report& report);
[[nodiscard]] base::Result<Report> report_from_json(const nlohmann::json& j);

[[nodiscard]] const char* to_string(CheckStatus s);
[[nodiscard]] const char* to_string(Verdict v);
[[nodiscard]] base::Result<Severity> parse_severity(std::string_view s);

}  // namespace guard::checks
