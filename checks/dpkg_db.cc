#include "checks/dpkg_db.h"

#include <algorithm>
#include <array>

#include "base/dir.h"
#include "base/input_limits.h"
#include "base/strings.h"

namespace guard::checks {
namespace {

constexpr std::array<std::string_view, 6> kAliased = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};

// The aliased top dir `path` starts with ("bin" for "/bin/ls" or "/bin"), or empty.
std::string_view aliased_top(std::string_view path) {
  if (path.size() < 2 || path[0] != '/') return {};
  std::string_view rest = path.substr(1);
  std::size_t slash = rest.find('/');
  std::string_view top = rest.substr(0, slash);
  for (auto a : kAliased) {
    if (top == a) return a;
  }
  return {};
}

constexpr const char* kInfoDir = "/var/lib/dpkg/info/";

}  // namespace

std::string usr_canonical(std::string_view path) {
  if (!aliased_top(path).empty()) return "/usr" + std::string(path);
  return std::string(path);
}

std::string usr_alias(std::string_view path) {
  if (!aliased_top(path).empty()) return "/usr" + std::string(path);
  if (path.size() > 4 && path.substr(0, 4) == "/usr" && !aliased_top(path.substr(4)).empty())
    return std::string(path.substr(4));
  return {};
}

bool is_system_path(std::string_view path) {
  std::string canon = usr_canonical(path);
  static constexpr std::array<std::string_view, 7> dirs = {"/usr/bin/",   "/usr/sbin/",  "/usr/lib/",
                                                           "/usr/lib32/", "/usr/lib64/", "/usr/libx32/",
                                                           "/usr/libexec/"};
  return std::any_of(dirs.begin(), dirs.end(), [&](std::string_view d) { return canon.rfind(d, 0) == 0; });
}

Diversions::Diversions(std::vector<Diversion> list) : list_(std::move(list)) {
  for (std::size_t i = 0; i < list_.size(); ++i) index_.emplace_back(usr_canonical(list_[i].from), i);
  std::sort(index_.begin(), index_.end());
}

const Diversion* Diversions::find(std::string_view path) const {
  if (index_.empty()) return nullptr;
  std::string canon = usr_canonical(path);
  auto it = std::lower_bound(index_.begin(), index_.end(), canon,
                             [](const auto& e, const std::string& key) { return e.first < key; });
  if (it == index_.end() || it->first != canon) return nullptr;
  return &list_[it->second];
}

std::string Diversions::location(std::string_view path, std::string_view package) const {
  const Diversion* d = find(path);
  if (d == nullptr || d->package == package) return std::string(path);
  return d->to;
}

base::Result<DpkgDb> DpkgDb::load(const base::Root& root) {
  DpkgDb db(root);
  auto status = root.read_file("/var/lib/dpkg/status", base::limits::kDpkgStatusBytes);
  if (!status) {
    base::Error e = status.error();
    // "cannot read the dpkg status database (is a FIFO, not a regular file)"; an errno's text
    // is added by to_string().
    e.message = e.message.empty() ? "cannot read the dpkg status database"
                                  : "cannot read the dpkg status database (" + e.message + ")";
    return tl::unexpected(e);
  }
  auto packages = parse_status(*status, "/var/lib/dpkg/status");
  if (!packages) return tl::unexpected(packages.error());
  db.packages_ = std::move(*packages);

  auto diversions = root.read_file("/var/lib/dpkg/diversions", base::limits::kDpkgConfigBytes);
  if (diversions) {
    auto parsed = parse_diversions(*diversions, "/var/lib/dpkg/diversions");
    if (!parsed) return tl::unexpected(parsed.error());
    db.diversions_ = Diversions(std::move(*parsed));
  } else if (diversions.error().err != ENOENT) {
    return tl::unexpected(diversions.error());
  }

  if (auto cfg = root.read_file("/etc/dpkg/dpkg.cfg", base::limits::kDpkgConfigBytes)) db.filter_.add_config(*cfg);
  if (auto names = base::list_dir(root, "/etc/dpkg/dpkg.cfg.d")) {
    for (const auto& n : *names) {
      if (!is_dpkg_config_name(n)) continue;
      if (auto cfg = root.read_file("/etc/dpkg/dpkg.cfg.d/" + n, base::limits::kDpkgConfigBytes)) db.filter_.add_config(*cfg);
    }
  }
  return db;
}

std::string DpkgDb::info_path(const PackageRecord& pkg, std::string_view suffix) const {
  std::string path = kInfoDir + pkg.key() + std::string(suffix);
  if (pkg.key() != pkg.name) {
    auto there = root_->exists(path, base::Follow::no);
    if (there && !*there) {
      std::string old = kInfoDir + pkg.name + std::string(suffix);
      auto old_there = root_->exists(old, base::Follow::no);
      if (old_there && *old_there) return old;
    }
  }
  return path;
}

base::Result<std::vector<std::string>> DpkgDb::list(const PackageRecord& pkg) const {
  auto bytes = root_->read_file(info_path(pkg, ".list"), base::limits::kDpkgListBytes);
  if (!bytes) return tl::unexpected(bytes.error());
  return parse_list(*bytes);
}

base::Result<std::optional<std::vector<Md5Entry>>> DpkgDb::md5sums(const PackageRecord& pkg) const {
  std::string path = info_path(pkg, ".md5sums");
  auto bytes = root_->read_file(path, base::limits::kDpkgMd5sumsBytes);
  if (!bytes) {
    if (bytes.error().err == ENOENT) return std::optional<std::vector<Md5Entry>>();
    return tl::unexpected(bytes.error());
  }
  auto entries = parse_md5sums(*bytes, path);
  if (!entries) return tl::unexpected(entries.error());
  return std::optional<std::vector<Md5Entry>>(std::move(*entries));
}

bool is_dpkg_parse_error(const base::Error& e) { return e.err == 0 && e.what.rfind("dpkg", 0) == 0; }

bool in_scope(const Scope& scope, const PackageRecord& pkg) {
  if (scope.full) return true;
  const auto& p = scope.packages;
  return p.count(pkg.key()) > 0 || p.count(pkg.name) > 0 ||
         (!pkg.architecture.empty() && p.count(pkg.name + ':' + pkg.architecture) > 0);
}

std::string repair_command(const base::Root& root, std::string_view command) {
  if (root.is_host_root()) return std::string(command);
  return "chroot " + root.path() + " " + std::string(command);
}

base::Result<PackageOwners> PackageOwners::load(const base::Root& root) {
  auto db = DpkgDb::load(root);
  if (!db) return tl::unexpected(db.error());
  return build(*db);
}

PackageOwners PackageOwners::build(const DpkgDb& db) {
  PackageOwners owners;
  std::vector<const PackageRecord*> pkgs;
  for (const auto& p : db.packages()) {
    if (has_files(p.state) || p.state == DpkgState::half_installed) pkgs.push_back(&p);
  }
  std::sort(pkgs.begin(), pkgs.end(), [](const auto* a, const auto* b) { return a->key() < b->key(); });
  for (const auto* p : pkgs) {
    auto paths = db.list(*p);
    if (!paths) continue;
    auto index = static_cast<std::uint32_t>(owners.packages_.size());
    owners.packages_.push_back(p->key());
    for (const auto& path : *paths) {
      std::string canon = usr_canonical(db.diversions().location(path, p->name));
      owners.entries_.push_back(Entry{static_cast<std::uint32_t>(owners.arena_.size()),
                                      static_cast<std::uint32_t>(canon.size()), index});
      owners.arena_ += canon;
    }
  }
  auto view = [&owners](const Entry& e) { return std::string_view(owners.arena_).substr(e.offset, e.length); };
  std::sort(owners.entries_.begin(), owners.entries_.end(), [&](const Entry& a, const Entry& b) {
    int c = view(a).compare(view(b));
    return c != 0 ? c < 0 : a.package < b.package;
  });
  // Several packages listing one path keep only the first, marked shared: the index stays one
  // entry a path.
  for (std::size_t i = 0; i + 1 < owners.entries_.size(); ++i) {
    if (view(owners.entries_[i]) == view(owners.entries_[i + 1])) {
      owners.entries_[i].package |= kShared;
      owners.entries_[i + 1].package |= kShared;
    }
  }
  owners.entries_.erase(std::unique(owners.entries_.begin(), owners.entries_.end(),
                                    [&](const Entry& a, const Entry& b) { return view(a) == view(b); }),
                        owners.entries_.end());
  owners.entries_.shrink_to_fit();
  owners.arena_.shrink_to_fit();
  return owners;
}

const PackageOwners::Entry* PackageOwners::find(std::string_view root_relative_path) const {
  std::string canon = usr_canonical(base::normalize_path(root_relative_path));
  std::string_view arena(arena_);
  auto it = std::lower_bound(entries_.begin(), entries_.end(), std::string_view(canon),
                             [&](const Entry& e, std::string_view key) {
                               return arena.substr(e.offset, e.length) < key;
                             });
  if (it == entries_.end() || arena.substr(it->offset, it->length) != canon) return nullptr;
  return &*it;
}

std::string PackageOwners::owner(std::string_view root_relative_path) const {
  const Entry* e = find(root_relative_path);
  return e == nullptr ? std::string() : packages_[e->package & ~kShared];
}

std::string PackageOwners::sole_owner(std::string_view root_relative_path) const {
  const Entry* e = find(root_relative_path);
  return e == nullptr || (e->package & kShared) != 0 ? std::string() : packages_[e->package];
}

base::Result<std::optional<DpkgDb>> load_dpkg_db_if_present(const base::Root& root) {
  auto exists = root.exists("/var/lib/dpkg/status");
  if (exists && !*exists) return std::optional<DpkgDb>();
  auto db = DpkgDb::load(root);
  if (!db) {
    base::Error e = db.error();
    if (is_dpkg_parse_error(e))
      e.message += "; dpkg refuses its database (dpkg-state blocks on it), so no package's files are checked";
    return base::fail(std::move(e));
  }
  return std::optional<DpkgDb>(std::move(*db));
}

}  // namespace guard::checks
