#include "checks/symlinks.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fmt/format.h>
#include <set>

#include "checks/libraries.h"

namespace guard::checks {
namespace {

struct BrokenLink {
  std::string path;
  std::string target;
  bool loop = false;
};

bool starts_with_dir(std::string_view path, std::string_view dir) {
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/' || dir == "/");
}

// Links into filesystems that only exist on a running system (/proc, /sys, /dev, /run and
// their /var aliases, /tmp) resolve or not depending on the moment: /etc/mtab ->
// ../proc/self/mounts dangles in every root that is not running, and is fine. Not findings.
bool runtime_target(std::string_view normalized) {
  for (std::string_view d : {"/proc", "/sys", "/dev", "/run", "/var/run", "/var/lock", "/tmp"})
    if (starts_with_dir(normalized, d)) return true;
  return false;
}

bool bin_dir(std::string_view dir) {
  for (std::string_view d : {"/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/usr/local/sbin", "/usr/libexec"})
    if (dir == d) return true;
  return false;
}

bool lib_dir(std::string_view dir) {
  for (std::string_view d : {"/usr/lib", "/lib", "/usr/lib64", "/lib64", "/usr/lib32", "/lib32", "/usr/libx32", "/usr/local/lib"})
    if (dir == d) return true;
  if (dir.find("-linux-gnu") == std::string_view::npos) return false;
  for (std::string_view d : {"/usr/lib/", "/lib/", "/usr/local/lib/"})
    if (dir.size() > d.size() && dir.compare(0, d.size(), d) == 0 && dir.find('/', d.size()) == std::string_view::npos)
      return true;  // /usr/lib/<tuple>
  return false;
}

// How bad a dangling link is, by where it is. A program name or a versioned shared library
// name that leads nowhere breaks whatever runs it: block. Development links (libfoo.so),
// configuration (/etc), /boot, /opt and anything deeper in /usr/lib (documentation, data,
// optional plugins, e.g. a JDK's src.zip link to a package that is not installed) are warnings.
Severity link_severity(std::string_view path) {
  std::string_view dir = base::dirname(path);
  std::string_view name = base::basename(path);
  if (bin_dir(dir)) return Severity::block;
  if (lib_dir(dir) && name.find(".so.") != std::string_view::npos) return Severity::block;
  if (starts_with_dir(path, "/usr/share")) return Severity::info;
  return Severity::warn;
}

std::string read_link_at(int dir_fd, std::string_view name) {
  std::string n(name);
  char buf[4096];
  ssize_t len = ::readlinkat(dir_fd, n.c_str(), buf, sizeof(buf));
  return len < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(len));
}

}  // namespace

const std::vector<std::string>& default_symlink_scan_paths() {
  return policies::default_check_paths("symlinks");
}

std::vector<Finding> check_usrmerge(const base::Root& root) {
  std::vector<Finding> out;
  auto bin = root.stat("/bin", base::Follow::no);
  auto usr_bin = root.stat("/usr/bin", base::Follow::no);
  if (bin && S_ISDIR(bin->st_mode)) return out;  // an unmerged root: fine
  if (!usr_bin || !S_ISDIR(usr_bin->st_mode)) return out;  // no /usr at all: not a Debian layout we judge
  auto add = [&](const std::string& path, std::string message, std::string hint) {
    out.push_back(make_finding("symlinks", Severity::block, path, std::move(message), std::move(hint), "usrmerge"));
  };
  auto exists = [&](const std::string& p) {
    auto st = root.stat(p, base::Follow::no);
    return st.has_value();
  };
  std::vector<std::string> aliases = {"bin", "sbin", "lib"};
  if (exists("/usr/lib64")) aliases.emplace_back("lib64");
  for (const char* opt : {"lib32", "libx32"})
    if (exists(std::string("/") + opt)) aliases.emplace_back(opt);
  for (const auto& a : aliases) {
    std::string top = "/" + a, usr = "/usr/" + a;
    std::string fix = fmt::format("restore the merged-/usr link: ln -sfn usr/{} {} (in the root)", a, top);
    auto ust = root.stat(usr, base::Follow::no);
    if (ust && S_ISLNK(ust->st_mode)) {
      auto target = root.readlink(usr);
      add(usr, fmt::format("{} is a link to {}, but on a merged-/usr system it must be a directory", usr,
                           target ? *target : "?"),
          fmt::format("restore {} as a directory with its files (reinstall the packages that ship files there)", usr));
      continue;
    }
    if (!ust) {
      add(usr, fmt::format("{} is missing on a merged-/usr system", usr), "reinstall the packages that ship files there");
      continue;
    }
    auto st = root.stat(top, base::Follow::no);
    if (!st) {
      add(top, fmt::format("{} is missing: on a merged-/usr system it is a link to usr/{}", top, a), fix);
      continue;
    }
    if (S_ISDIR(st->st_mode)) {
      add(top, fmt::format("{} is a directory, but on a merged-/usr system it must be a link to usr/{}", top, a), fix);
      continue;
    }
    if (!S_ISLNK(st->st_mode)) {
      add(top, fmt::format("{} is not a link to usr/{}", top, a), fix);
      continue;
    }
    auto real = root.realpath(top);
    auto want = root.realpath(usr);
    if (!real || !want || *real != *want) {
      auto target = root.readlink(top);
      add(top, fmt::format("{} points to {} ({}) instead of {}", top, target ? *target : "?",
                           real ? *real : "nowhere", usr),
          fix);
    }
  }
  return out;
}

base::Result<CheckOutput> SymlinksCheck::run(const CheckContext& ctx) const {
  const auto& configured = ctx.policy.check(std::string(id())).paths;
  auto paths = canonical_scan_paths(ctx.root, configured.empty() ? default_symlink_scan_paths() : configured);
  CheckOutput out;
  out.findings = check_usrmerge(ctx.root);

  std::vector<BrokenLink> broken;
  std::set<std::string> used_alternatives;  // /etc/alternatives/NAME that a program link goes through
  auto visit = [&](const base::WalkEntry& e) {
    if (e.error != 0 || e.type != DT_LNK) return base::WalkAction::next;
    ++out.items;
    bool in_bin = bin_dir(base::dirname(e.path));
    auto fd = ctx.root.open(e.path, O_PATH);
    if (fd && !in_bin) return base::WalkAction::next;
    std::string target = read_link_at(e.dir_fd, e.name);
    std::string normalized = !target.empty() && target.front() == '/'
                                 ? base::normalize_path(target)
                                 : base::normalize_path(base::join_path(base::dirname(e.path), target));
    if (in_bin && starts_with_dir(normalized, "/etc/alternatives")) used_alternatives.insert(normalized);
    if (fd) return base::WalkAction::next;
    int err = fd.error().err;
    if (err != ENOENT && err != ENOTDIR && err != ELOOP) return base::WalkAction::next;  // EACCES...: cannot judge
    if (runtime_target(normalized)) return base::WalkAction::next;
    broken.push_back(BrokenLink{std::string(e.path), std::move(target), err == ELOOP});
    return base::WalkAction::next;
  };
  for (const auto& p : paths) (void)ctx.root.walk(p, visit);
  bool alternatives_scanned = std::any_of(paths.begin(), paths.end(), [](const std::string& p) {
    return starts_with_dir("/etc/alternatives", p);
  });
  if (!alternatives_scanned) (void)ctx.root.walk("/etc/alternatives", visit);

  // A change-scoped run reports the links among the changed paths and the alternatives;
  // a link elsewhere that dangles because its target changed names that target.
  std::set<std::string> changed(ctx.scope.paths.begin(), ctx.scope.paths.end());
  auto in_scope = [&](const BrokenLink& b) {
    if (ctx.scope.full || changed.count(b.path) != 0 || starts_with_dir(b.path, "/etc/alternatives")) return true;
    std::string t = !b.target.empty() && b.target.front() == '/'
                        ? base::normalize_path(b.target)
                        : base::normalize_path(base::join_path(base::dirname(b.path), b.target));
    return changed.count(t) != 0;
  };
  for (const auto& b : broken) {
    if (!in_scope(b)) continue;
    if (starts_with_dir(b.path, "/etc/alternatives")) {
      std::string name(base::basename(b.path));
      bool used = used_alternatives.count(b.path) != 0;
      out.findings.push_back(make_finding("symlinks", used ? Severity::block : Severity::warn, b.path,
                                          fmt::format("alternative '{}' points to {}, which {}{}", name, b.target,
                                                      b.loop ? "is a link loop" : "does not exist",
                                                      used ? "; programs in /usr/bin or /usr/sbin go through it" : ""),
                                          fmt::format("update-alternatives --auto {} (or --config {})", name, name),
                                          b.loop ? "alternative-loop" : "alternative-dangling"));
    } else {
      out.findings.push_back(
          make_finding("symlinks", link_severity(b.path), b.path,
                       b.loop ? fmt::format("is a link loop (-> {})", b.target)
                              : fmt::format("is a dangling link: {} does not exist", b.target),
                       fmt::format("reinstall the package that ships it (dpkg -S {}), or remove the link", b.path),
                       b.loop ? "loop" : "dangling"));
    }
  }
  return out;
}

}  // namespace guard::checks
