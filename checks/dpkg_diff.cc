#include "checks/dpkg_diff.h"

#include <map>

#include "base/input_limits.h"
#include "checks/dpkg_version.h"

namespace guard::checks {
namespace {

bool present(const PackageRecord& p) { return has_files(p.state) || p.state == DpkgState::half_installed; }

std::map<std::string, const PackageRecord*> by_key(const std::vector<PackageRecord>& pkgs) {
  std::map<std::string, const PackageRecord*> out;
  for (const auto& p : pkgs) out[p.key()] = &p;
  return out;
}

}  // namespace

StatusDiff diff_status(const std::vector<PackageRecord>& before, const std::vector<PackageRecord>& after) {
  StatusDiff diff;
  auto b = by_key(before), a = by_key(after);
  auto change = [](const std::string& key, const PackageRecord* old_p, const PackageRecord* new_p) {
    PackageChange c;
    c.package = key;
    if (old_p != nullptr && present(*old_p)) {
      c.before_version = old_p->version;
      c.before_state = old_p->state;
    }
    if (new_p != nullptr && present(*new_p)) {
      c.after_version = new_p->version;
      c.after_state = new_p->state;
    }
    return c;
  };
  for (const auto& [key, old_p] : b) {
    auto it = a.find(key);
    const PackageRecord* new_p = it == a.end() ? nullptr : it->second;
    bool was = present(*old_p), is = new_p != nullptr && present(*new_p);
    if (was && !is) diff.removed.push_back(change(key, old_p, new_p));
    if (!was || !is) continue;
    int cmp = compare_versions(old_p->version, new_p->version);
    if (cmp < 0) {
      diff.upgraded.push_back(change(key, old_p, new_p));
    } else if (cmp > 0) {
      diff.downgraded.push_back(change(key, old_p, new_p));
    } else if (old_p->version != new_p->version || old_p->state != new_p->state || old_p->flag != new_p->flag) {
      diff.state_changed.push_back(change(key, old_p, new_p));
    }
  }
  for (const auto& [key, new_p] : a) {
    auto it = b.find(key);
    bool was = it != b.end() && present(*it->second);
    if (!was && present(*new_p)) diff.installed.push_back(change(key, it == b.end() ? nullptr : it->second, new_p));
  }
  return diff;
}

base::Result<StatusDiff> diff_status(std::string_view before_bytes, std::string_view after_bytes) {
  auto before = parse_status(before_bytes, "before");
  if (!before) return tl::unexpected(before.error());
  auto after = parse_status(after_bytes, "after");
  if (!after) return tl::unexpected(after.error());
  return diff_status(*before, *after);
}

base::Result<StatusDiff> diff_roots(const base::Root& before, const base::Root& after) {
  auto b = before.read_file("/var/lib/dpkg/status", base::limits::kDpkgStatusBytes);
  if (!b) return tl::unexpected(b.error());
  auto a = after.read_file("/var/lib/dpkg/status", base::limits::kDpkgStatusBytes);
  if (!a) return tl::unexpected(a.error());
  auto before_pkgs = parse_status(*b, before.host_path("/var/lib/dpkg/status"));
  if (!before_pkgs) return tl::unexpected(before_pkgs.error());
  auto after_pkgs = parse_status(*a, after.host_path("/var/lib/dpkg/status"));
  if (!after_pkgs) return tl::unexpected(after_pkgs.error());
  return diff_status(*before_pkgs, *after_pkgs);
}

Scope scope_from_diff(const StatusDiff& diff) {
  Scope scope;
  scope.full = false;
  for (const auto* list : {&diff.installed, &diff.upgraded, &diff.downgraded, &diff.state_changed}) {
    for (const auto& c : *list) scope.packages.insert(c.package);
  }
  return scope;
}

}  // namespace guard::checks
