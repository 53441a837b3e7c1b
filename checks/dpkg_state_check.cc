#include "checks/dpkg_state_check.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "base/dir.h"
#include "checks/dpkg_db.h"

namespace guard::checks {
namespace {

// An update journal entry is one stanza; a bigger file is not one dpkg wrote.
constexpr std::uint64_t kMaxJournalBytes = 16ULL << 20;

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Finding package_finding(const base::Root& root, const PackageRecord& p) {
  std::string version = p.version.empty() ? "" : " (version " + p.version + ")";
  auto finding = [&](std::string message, const std::string& repair, std::string id) {
    return make_package_finding("dpkg-state", Severity::block, p.key(), "", std::move(message),
                                repair_command(root, repair), std::move(id));
  };
  if (p.flag == DpkgFlag::reinstreq && p.state != DpkgState::half_installed)
    return finding(fmt::format("package {} is marked reinst-required{}: dpkg refuses to touch it until it is "
                               "reinstalled",
                               p.key(), version),
                   "apt-get install --reinstall " + p.key(), "reinst-required " + p.key());
  std::string id = std::string(to_string(p.state)) + " " + p.key();
  switch (p.state) {
    case DpkgState::half_installed:
      return finding(fmt::format("package {} is half-installed{}: its unpacking stopped midway", p.key(), version),
                     "apt-get install --reinstall " + p.key(), id);
    case DpkgState::unpacked:
      return finding(fmt::format("package {} is unpacked but not configured{}", p.key(), version),
                     "dpkg --configure -a", id);
    case DpkgState::half_configured:
      return finding(
          fmt::format("package {} is half-configured{}: its configuration failed or was interrupted", p.key(), version),
          "dpkg --configure -a", id);
    case DpkgState::triggers_awaited:
      return finding(
          fmt::format("package {} is triggers-awaited{}: it waits for another package's triggers", p.key(), version),
          "dpkg --triggers-only -a", id);
    case DpkgState::triggers_pending:
      return finding(fmt::format("package {} is triggers-pending{}: its triggers never ran", p.key(), version),
                     "dpkg --triggers-only -a", id);
    default:
      // needs_attention() lets no other state through
      return make_package_finding("dpkg-state", Severity::block, p.key(), "", "", "", id);
  }
}

bool needs_attention(const PackageRecord& p) {
  if (p.flag == DpkgFlag::reinstreq) return true;
  switch (p.state) {
    case DpkgState::half_installed:
    case DpkgState::unpacked:
    case DpkgState::half_configured:
    case DpkgState::triggers_awaited:
    case DpkgState::triggers_pending:
      return true;
    default:
      return false;
  }
}

// Leftover *.dpkg-new / *.dpkg-tmp files in the directories holding the packages' files.
void find_leftovers(const base::Root& root, const DpkgDb& db, std::vector<Finding>& out) {
  std::set<std::string> dirs;
  for (const auto& p : db.packages()) {
    if (!has_files(p.state) && p.state != DpkgState::half_installed) continue;
    auto paths = db.list(p);
    if (!paths) continue;
    for (const auto& path : *paths) {
      std::string_view dir = base::dirname(path);
      if (dirs.empty() || *dirs.rbegin() != dir) dirs.emplace(dir);
    }
  }
  std::set<std::pair<dev_t, ino_t>> seen;
  std::vector<std::string> leftovers;
  for (const auto& dir : dirs) {
    // Each directory once, however many spellings (/bin, /usr/bin) the lists give it.
    auto fd = root.open(dir, O_PATH | O_DIRECTORY);
    struct stat st {};
    if (!fd || ::fstat(fd->get(), &st) != 0 || !seen.emplace(st.st_dev, st.st_ino).second) continue;
    auto names = base::list_dir(fd->get(), dir);
    if (!names) continue;
    for (const auto& n : *names) {
      if (ends_with(n, ".dpkg-new") || ends_with(n, ".dpkg-tmp")) leftovers.push_back(base::join_path(dir, n));
    }
  }
  if (leftovers.empty()) return;
  PackageOwners owners = PackageOwners::build(db);
  for (const auto& path : leftovers) {
    std::string_view stem = std::string_view(path).substr(0, path.size() - 9);
    std::string package = owners.owner(stem);
    std::string hint =
        package.empty() ? "remove it once dpkg has finished"
                        : repair_command(root, "apt-get install --reinstall " + package) + ", then remove the leftover";
    out.push_back(make_package_finding("dpkg-state", Severity::warn, std::move(package), path,
                                       fmt::format("leftover from an interrupted dpkg run next to {}", stem),
                                       std::move(hint), "leftover"));
  }
}

// The entries of dpkg's update journal: any is an interrupted run; one dpkg cannot parse
// stops dpkg altogether.
base::Result<void> check_journal(const base::Root& root, std::vector<Finding>& out) {
  auto journal = base::list_dir(root, "/var/lib/dpkg/updates");
  if (!journal) return tl::unexpected(journal.error());
  for (const auto& name : *journal) {
    if (!all_digits(name)) continue;
    // dpkg reads every journal entry before it does anything: one it refuses stops dpkg too.
    const std::string path = "/var/lib/dpkg/updates/" + name;
    auto bytes = root.read_file(path, kMaxJournalBytes);
    auto parsed = bytes ? parse_status(*bytes, path, StatusFile::journal)
                        : base::Result<std::vector<PackageRecord>>(tl::unexpected(bytes.error()));
    if (!parsed) {
      out.push_back(make_finding(
          "dpkg-state", Severity::block, path,
          is_dpkg_parse_error(parsed.error()) ? parsed.error().message + "; dpkg refuses to start until it is repaired"
                                              : "cannot read dpkg's update journal: " + parsed.error().to_string(),
          "move the damaged entry away (dpkg then loses that one change), then " +
              repair_command(root, "dpkg --configure -a"),
          "corrupt-journal"));
      continue;
    }
    out.push_back(
        make_finding("dpkg-state", Severity::block, "/var/lib/dpkg/updates/" + name,
                     "dpkg's update journal is not empty: a dpkg run was interrupted before it recorded its changes",
                     repair_command(root, "dpkg --configure -a"), "journal"));
  }
  return {};
}

}  // namespace

base::Result<CheckOutput> DpkgStateCheck::run(const CheckContext& ctx) const {
  CheckOutput out;
  auto exists = ctx.root.exists("/var/lib/dpkg/status");
  if (exists && !*exists) {
    out.skipped = "no dpkg database (/var/lib/dpkg/status)";
    return out;
  }
  if (auto j = check_journal(ctx.root, out.findings); !j) return tl::unexpected(j.error());
  auto db = DpkgDb::load(ctx.root);
  if (!db) {
    const base::Error& e = db.error();
    if (!is_dpkg_parse_error(e)) return tl::unexpected(e);  // not a parse error: cannot run
    out.findings.push_back(make_finding(
        "dpkg-state", Severity::block, e.path, e.message + "; the rest of the database is not trusted",
        e.path == "/var/lib/dpkg/status"
            ? "compare with /var/lib/dpkg/status-old and /var/backups/dpkg.status.0, restore the last good one"
            : "repair the file by hand; dpkg cannot work until it parses",
        "corrupt"));
    return out;
  }
  out.items = db->packages().size();
  for (const auto& p : db->packages()) {
    if (needs_attention(p)) out.findings.push_back(package_finding(ctx.root, p));
  }

  find_leftovers(ctx.root, *db, out.findings);
  return out;
}

}  // namespace guard::checks
