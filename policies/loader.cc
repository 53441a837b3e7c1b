// Loads, checks and shows policies by walking the key table (keys.h): a layer's TOML document is
// matched key by key against the table, the built-in defaults are the table's, and `policy show`
// lists the table's keys with their origins. Also the files: layering, StrictModes permissions.
#include "policies/loader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <set>
#include <type_traits>
#include <variant>

#include "base/dir.h"
#include "base/unique_fd.h"
#include "policies/keys.h"
#include "policies/precheck.h"

namespace guard::policies {
namespace {

using base::Error;
using base::Result;
using keys::Key;
using keys::Site;

bool is_check_id(std::string_view name) {
  const auto& ids = known_check_ids();
  return std::find(ids.begin(), ids.end(), name) != ids.end();
}

// Whether `key`'s path begins with `at` ("*" matches any check id).
bool under(const Key& key, const std::vector<std::string>& at) {
  if (key.path.size() <= at.size()) return false;
  for (std::size_t i = 0; i < at.size(); ++i) {
    if (key.path[i] != at[i] && !(key.path[i] == "*" && is_check_id(at[i]))) return false;
  }
  return true;
}

// The problem with a name no key of `keys` (all under the same table) has at `depth`.
std::string unknown_key(const std::vector<const Key*>& keys, std::size_t depth) {
  std::vector<std::string> names;
  for (const Key* k : keys) {
    const std::string& name = k->path[depth];
    if (name == "*") return fmt::format("unknown check id (known: {})", join(known_check_ids(), ", "));
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return fmt::format("unknown key (expected one of: {})", join(names, ", "));
}

// The origin key of field `field` of the entry named `name` in the array of tables `array`: the
// name stands for the entry ("custom.nginx-config"), the other fields sit below it
// ("custom.nginx-config.timeout").
std::string entry_origin_key(const std::string& array, const std::string& name, const std::string& field) {
  return field == "name" ? fmt::format("{}.{}", array, name) : fmt::format("{}.{}.{}", array, name, field);
}

// Calls `fn` with the entries table (keys::Entries<Record>) of an array-of-tables key.
template <typename Fn>
void for_entries(const Key& key, Fn&& fn) {
  std::visit(
      [&](const auto& table) {
        if constexpr (std::is_pointer_v<std::decay_t<decltype(table)>>) fn(*table);
      },
      key.entries);
}

// Applies one parsed document to a Policy (a copy the caller commits only on success).
class Layer {
 public:
  Layer(Policy& policy, const std::string& file) : p_(policy), file_(file) {}

  Result<void> apply(const toml::table& doc) { return walk({}, doc, ""); }

 private:
  // Reads the table at path `at` (e.g. {"checks", "symlinks"}); `id` is the check id a "*" of
  // the keys' paths stands for.
  Result<void> walk(const std::vector<std::string>& at, const toml::table& tbl, const std::string& id) {
    std::vector<const Key*> here;
    for (const Key& k : keys::table()) {
      if (under(k, at)) here.push_back(&k);
    }
    for (auto&& [name_node, node] : tbl) {
      std::vector<std::string> path = at;
      path.emplace_back(name_node.str());
      const std::string& name = path.back();
      const Site site{file_, join(path, ".")};
      std::vector<const Key*> next;
      std::string next_id = id;
      for (const Key* k : here) {
        const std::string& expected = k->path[at.size()];
        if (expected != name && !(expected == "*" && is_check_id(name))) continue;
        next.push_back(k);
        if (expected == "*") next_id = name;
      }
      if (next.empty()) return site.fail(name_node.source(), unknown_key(here, at.size()));
      if (next.front()->path.size() == path.size()) {
        if (auto r = read(*next.front(), next_id, site, node); !r) return r;
        continue;
      }
      const toml::table* sub = node.as_table();
      if (!sub) return site.fail(node.source(), fmt::format("expected a table, got {}", keys::type_name(node)));
      if (auto r = walk(path, *sub, next_id); !r) return r;
    }
    return {};
  }

  Result<void> read(const Key& key, const std::string& id, const Site& site, const toml::node& node) {
    if (key.has_entries()) {
      Result<void> r;
      for_entries(key, [&](const auto& table) { r = read_entries(table, site, node); });
      return r;
    }
    if (auto r = key.read(p_, id, site, node); !r) return r;
    p_.origins[site.key] = site.position(node.source());
    return {};
  }

  // An array of tables ([[custom]], [[validator]]): each entry read with the table's fields; an
  // entry whose name an earlier layer used replaces that one in place (or, for a merging table,
  // changes the fields it sets); two entries of one file may not share one.
  template <typename Record>
  Result<void> read_entries(const keys::Entries<Record>& table, const Site& site, const toml::node& node) {
    const auto& fields = table.fields;
    std::vector<Record>& list = p_.*table.list;
    const toml::array* arr = node.as_array();
    if (!arr) {
      return site.fail(node.source(), fmt::format("expected an array of tables ([[{}]]), got {}", site.key,
                                                  keys::type_name(node)));
    }
    std::vector<std::string> names;
    names.reserve(fields.size());
    for (const auto& f : fields) names.push_back(f.name());
    std::set<std::string> seen;  // names given in this file
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::node& item = *arr->get(i);
      const Site entry_site{file_, fmt::format("{}[{}]", site.key, i)};
      const toml::table* tbl = item.as_table();
      if (!tbl) return entry_site.fail(item.source(), fmt::format("expected a table, got {}", keys::type_name(item)));
      // The earlier entry this one merges into, found by the name it gives.
      auto earlier = list.end();
      if (table.merge) {
        if (const auto* name = tbl->get_as<std::string>("name")) {
          earlier = std::find_if(list.begin(), list.end(), [&](const auto& e) { return e.name == name->get(); });
        }
      }
      Record entry = earlier != list.end() ? *earlier : Record{};
      Origins origins;  // by field name
      for (auto&& [name_node, value] : *tbl) {
        std::string name(name_node.str());
        const Site field_site{file_, fmt::format("{}.{}", entry_site.key, name)};
        auto f =
            std::find_if(fields.begin(), fields.end(), [&](const auto& candidate) { return candidate.name() == name; });
        if (f == fields.end()) {
          return field_site.fail(name_node.source(),
                                 fmt::format("unknown key (expected one of: {})", join(names, ", ")));
        }
        if (auto r = f->read(entry, "", field_site, value); !r) return r;
        if (name == "name" && seen.count(entry.name)) {
          return field_site.fail(value.source(), fmt::format("a {} named '{}' is already defined in this file",
                                                             table.noun, entry.name));
        }
        origins[name] = field_site.position(value.source());
      }
      for (const auto& f : fields) {
        bool given = origins.count(f.name()) || (earlier != list.end() && f.name() != "name");
        if (f.required && !given) {
          return entry_site.fail(item.source(), fmt::format("missing required key '{}'", f.name()));
        }
      }
      seen.insert(entry.name);

      auto it = std::find_if(list.begin(), list.end(), [&](const auto& c) { return c.name == entry.name; });
      if (it != list.end())
        *it = entry;
      else
        list.push_back(entry);
      for (const auto& f : fields) {
        std::string key = entry_origin_key(site.key, entry.name, f.name());
        auto o = origins.find(f.name());
        if (o != origins.end())
          p_.origins[key] = o->second;
        else if (!table.merge || !p_.origins.count(key))
          p_.origins[key] = "built-in";
      }
    }
    return {};
  }

  Policy& p_;
  const std::string& file_;
};

// ---- the table laid out in TOML tables: defaults, `policy show`, policy_keys ---------------

// One value of a policy: a key of the table with its "*" bound to a check id.
struct Slot {
  const Key* key;
  std::string id;      // "" for keys without "*"
  std::string dotted;  // e.g. "checks.symlinks.paths"
};

// The values of one TOML table, e.g. "snapshot", "checks.symlinks" or "" (the top level), in
// table order; an array of tables ([[custom]]) is a section of its own.
struct Section {
  std::string name;
  std::vector<Slot> slots;
  const Key* entries = nullptr;  // an array of tables: the key whose `entries` it is
};

// The table's keys by TOML table, with "*" expanded to each of `ids`.
std::vector<Section> layout(const std::vector<std::string>& ids) {
  std::vector<Section> sections;
  const std::vector<std::string> no_id = {""};
  for (const Key& k : keys::table()) {
    if (k.has_entries()) {
      sections.push_back(Section{join(k.path, "."), {}, &k});
      continue;
    }
    bool per_check = std::find(k.path.begin(), k.path.end(), "*") != k.path.end();
    for (const std::string& id : per_check ? ids : no_id) {
      std::vector<std::string> path = k.path;
      std::replace(path.begin(), path.end(), std::string("*"), id);
      std::string dotted = join(path, ".");
      path.pop_back();
      std::string table = join(path, ".");
      auto it = std::find_if(sections.begin(), sections.end(),
                             [&](const Section& s) { return !s.entries && s.name == table; });
      if (it == sections.end()) it = sections.insert(sections.end(), Section{table, {}, nullptr});
      it->slots.push_back(Slot{&k, id, std::move(dotted)});
    }
  }
  return sections;
}

// `policy show`'s line for one value: `keep = 5  # built-in`, `keep = 2  # from FILE:LINE:COLUMN`,
// or for an unset optional value `# max_age is not set: the backup check is not configured`.
template <typename Record>
std::string value_line(const Policy& p, const keys::Field<Record>& field, const std::optional<std::string>& value,
                       const std::string& dotted) {
  if (!value) return fmt::format("# {} is not set: {}\n", field.name(), field.unset);
  auto it = p.origins.find(dotted);
  std::string from = it == p.origins.end() || it->second == "built-in" ? "# built-in" : "# from " + it->second;
  return fmt::format("{} = {}  {}\n", field.name(), *value, from);
}

// ---- files and permissions ----------------------------------------------------------------

// The StrictModes rule on an already opened file's stat.
Result<void> check_mode(const struct stat& st, const std::string& path, const std::vector<uid_t>& owners) {
  if (std::find(owners.begin(), owners.end(), st.st_uid) == owners.end()) {
    std::vector<std::string> names;
    names.reserve(owners.size());
    for (uid_t uid : owners) names.push_back(uid == 0 ? "root (uid 0)" : fmt::format("uid {}", uid));
    return base::fail(Error{"policy permissions", path, 0,
                            fmt::format("{} is owned by uid {}, not by {}: run chown root {}", path, st.st_uid,
                                        join(names, " or "), path)});
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    return base::fail(Error{"policy permissions", path, 0,
                            fmt::format("{} is writable by group or other: run chmod go-w {}", path, path)});
  }
  return {};
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// Opens `name` relative to `dirfd`; an empty fd (no error) when it does not exist and
// `missing_ok`. O_NONBLOCK so that a FIFO cannot hang the open.
Result<base::UniqueFd> open_at(int dirfd, const std::string& name, const std::string& shown, int flags,
                               bool missing_ok) {
  base::UniqueFd fd(::openat(dirfd, name.c_str(), flags | O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT && missing_ok) return base::UniqueFd();
    return base::fail_errno("open", shown, errno, "cannot open the policy");
  }
  return fd;
}

Result<struct stat> stat_fd(int fd, const std::string& shown) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return base::fail_errno("fstat", shown);
  return st;
}

Result<std::string> read_all(int fd, const std::string& shown) {
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::fail_errno("read", shown);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxPolicyBytes) {
      return base::fail(Error{"policy", shown, 0, fmt::format("{} is larger than 1 MiB; it is not a policy", shown)});
    }
  }
  return text;
}

// Checks (when asked), reads and applies one policy file opened as `fd`.
Result<void> apply_file(Policy& policy, int fd, const std::string& shown, const LoadOptions& options,
                        const std::vector<uid_t>& owners) {
  auto st = stat_fd(fd, shown);
  if (!st) return tl::unexpected(st.error());
  if (!S_ISREG(st->st_mode)) return base::fail(Error{"policy", shown, 0, shown + " is not a regular file"});
  if (options.check_permissions) {
    if (auto r = check_mode(*st, shown, owners); !r) return r;
  }
  auto text = read_all(fd, shown);
  if (!text) return tl::unexpected(text.error());
  return apply_policy_toml(policy, *text, shown);
}

}  // namespace

Policy default_policy() {
  Policy p;
  for (const auto& id : known_check_ids()) p.checks[id] = CheckPolicy{};  // every known id present
  for (const Section& s : layout(known_check_ids())) {
    for (const Slot& slot : s.slots) {
      if (slot.key->reset) slot.key->reset(p, slot.id);
      if (slot.key->show(p, slot.id)) p.origins[slot.dotted] = "built-in";  // an unset optional has no origin
    }
  }
  return p;
}

std::vector<std::string> policy_keys() {
  std::vector<std::string> out;
  for (const Section& s : layout(known_check_ids())) {
    for (const Slot& slot : s.slots) out.push_back(slot.dotted);
    if (s.entries) {
      for_entries(*s.entries, [&](const auto& table) {
        for (const auto& f : table.fields) out.push_back(fmt::format("{}[].{}", s.name, f.name()));
      });
    }
  }
  return out;
}

Result<void> apply_policy_toml(Policy& policy, std::string_view text, const std::string& file) {
  // toml++ never sees bytes that could reach one of its defects (policies/precheck.h).
  if (auto r = precheck_policy_text(text, file); !r) return r;
  toml::table doc;
  try {
    doc = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    return base::fail(Error{"policy", file, 0,
                            fmt::format("{}: syntax error: {}", Site{file, ""}.position(e.source()), e.description())});
  }
  Policy next = policy;
  Layer layer(next, file);
  if (auto r = layer.apply(doc); !r) return r;
  policy = std::move(next);
  return {};
}

Result<void> check_policy_permissions(const std::string& path, unsigned owner_uid) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return base::fail_errno("stat", path, errno, "cannot check the policy's permissions");
  return check_mode(st, path, {static_cast<uid_t>(owner_uid)});
}

Result<Policy> load_policy(const LoadOptions& options) {
  Policy policy = default_policy();
  std::vector<uid_t> owners = {0};
  if (::geteuid() != 0) owners.push_back(::geteuid());

  if (!options.policy_file.empty()) {
    auto fd = open_at(AT_FDCWD, options.policy_file, options.policy_file, 0, /*missing_ok=*/false);
    if (!fd) return tl::unexpected(fd.error());
    if (auto r = apply_file(policy, fd->get(), options.policy_file, options, owners); !r)
      return tl::unexpected(r.error());
    return policy;
  }

  const std::string& dir = options.config_dir;
  auto dir_fd = open_at(AT_FDCWD, dir, dir, O_DIRECTORY, /*missing_ok=*/true);
  if (!dir_fd) return tl::unexpected(dir_fd.error());
  if (!*dir_fd) return policy;  // no configuration directory: the built-in defaults
  if (options.check_permissions) {
    auto st = stat_fd(dir_fd->get(), dir);
    if (!st) return tl::unexpected(st.error());
    if (auto r = check_mode(*st, dir, owners); !r) return tl::unexpected(r.error());
  }

  const std::string main_file = join_path(dir, "policy.toml");
  auto main_fd = open_at(dir_fd->get(), "policy.toml", main_file, 0, /*missing_ok=*/true);
  if (!main_fd) return tl::unexpected(main_fd.error());
  if (*main_fd) {
    if (auto r = apply_file(policy, main_fd->get(), main_file, options, owners); !r) return tl::unexpected(r.error());
  }

  const std::string drop_in_dir = join_path(dir, "policy.d");
  auto d_fd = open_at(dir_fd->get(), "policy.d", drop_in_dir, O_DIRECTORY, /*missing_ok=*/true);
  if (!d_fd) return tl::unexpected(d_fd.error());
  if (!*d_fd) return policy;
  if (options.check_permissions) {
    auto st = stat_fd(d_fd->get(), drop_in_dir);
    if (!st) return tl::unexpected(st.error());
    if (auto r = check_mode(*st, drop_in_dir, owners); !r) return tl::unexpected(r.error());
  }

  // Like systemd drop-ins: regular files ending in .toml, not hidden, in byte order of name.
  std::vector<std::string> names;
  auto listed = base::list_dir(d_fd->get(), drop_in_dir);  // sorted
  if (!listed) return tl::unexpected(listed.error());
  for (const auto& name : *listed) {
    if (name.size() > 5 && name.front() != '.' && name.substr(name.size() - 5) == ".toml") names.push_back(name);
  }
  for (const auto& name : names) {
    std::string shown = join_path(drop_in_dir, name);
    auto fd = open_at(d_fd->get(), name, shown, 0, /*missing_ok=*/true);
    if (!fd) return tl::unexpected(fd.error());
    if (!*fd) continue;  // removed while we listed
    auto st = stat_fd(fd->get(), shown);
    if (!st) return tl::unexpected(st.error());
    if (S_ISDIR(st->st_mode)) continue;
    if (auto r = apply_file(policy, fd->get(), shown, options, owners); !r) return tl::unexpected(r.error());
  }
  return policy;
}

std::string render_policy(const Policy& p) {
  std::vector<std::string> ids = known_check_ids();
  for (const auto& [id, cp] : p.checks) {
    if (!is_check_id(id)) ids.push_back(id);
  }
  std::string out =
      "# The effective upgrade-guard policy. Each value says where it came from; this text is\n"
      "# itself a valid policy file.\n";
  std::set<const void*> explained;  // each key's help once, above the first table that has it
  auto explain = [&](const auto& field) {
    if (explained.insert(&field).second) out += fmt::format("# {}: {}\n", field.name(), field.help);
  };
  for (const Section& s : layout(ids)) {
    out += "\n";
    if (s.entries) {
      explain(*s.entries);
      for_entries(*s.entries, [&](const auto& table) {
        for (const auto& f : table.fields) explain(f);
        const auto& list = p.*table.list;
        for (std::size_t i = 0; i < list.size(); ++i) {
          out += fmt::format("{}[[{}]]\n", i ? "\n" : "", s.name);
          for (const auto& f : table.fields) {
            std::string key = entry_origin_key(s.name, list[i].name, f.name());
            out += value_line(p, f, f.show(list[i], ""), key);
          }
        }
      });
      continue;
    }
    for (const Slot& slot : s.slots) explain(*slot.key);
    if (!s.name.empty()) out += fmt::format("[{}]\n", s.name);
    for (const Slot& slot : s.slots) {
      out += value_line(p, *slot.key, slot.key->show(p, slot.id), slot.dotted);
    }
  }
  return out;
}

}  // namespace guard::policies
