// The policy's key table: every key a policy file may set, declared once (keys.cc) with the
// kind of value it holds, where it lives in Policy, its default and a line of help. Reading a
// layer, the built-in defaults and `policy show` all walk this table (loader.cc), so adding a
// key is one line there plus its member in policy.h.
//
// Internal to policies/: it includes toml++, which only policies/ links; other code uses loader.h.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "base/error.h"
#include "policies/policy.h"
#include "policies/values.h"

namespace guard::policies::keys {

using Strings = std::vector<std::string>;

// Where a value is being read, for errors "FILE:LINE:COLUMN: KEY: problem" with
// Error::path = the file.
struct Site {
  const std::string& file;
  std::string key;  // dotted, e.g. "checks.symlinks.paths" or "custom[0].timeout"

  // "FILE:LINE:COLUMN" of `at`, e.g. "/etc/upgrade-guard/policy.toml:4:12".
  [[nodiscard]] std::string position(const toml::source_region& at) const;
  [[nodiscard]] tl::unexpected<base::Error> fail(const toml::source_region& at, const std::string& what) const;
};

// "a table", "an integer"... for "expected X, got Y".
[[nodiscard]] const char* type_name(const toml::node& node);

// ---- kinds of values ----------------------------------------------------------------------
// Each kind reads one TOML node into its Value (or an Error naming site and problem) and shows
// a Value as the TOML text that reads back to it (nothing for an unset optional).

// The index in `names` of the string `node` holds, e.g. severity = "warn" -> 2 of off|info|warn|block;
// otherwise "unknown NOUN 'x' (expected a, b or c)".
[[nodiscard]] base::Result<std::size_t> read_name(const Site& site, const toml::node& node, std::string_view noun,
                                                  const Strings& names);

// One value of an enum, named by to_string(E): severities, on_fail actions, snapshot backends.
template <typename E>
struct Choice {
  using Value = E;
  std::string_view noun;  // "severity" in "unknown severity 'high' (expected off, info, warn or block)"
  std::vector<E> values;  // every value a policy may name, in the order errors list them

  [[nodiscard]] base::Result<E> read(const Site& site, const toml::node& node) const {
    Strings names;
    for (E v : values) names.emplace_back(to_string(v));
    auto i = read_name(site, node, noun, names);
    if (!i) return tl::unexpected(i.error());
    return values[*i];
  }
  [[nodiscard]] std::optional<std::string> show(E v) const { return toml_string(to_string(v)); }
};

// Integer seconds or "90s", "5m", "6h", "2d"; at most kMaxDurationDays.
struct Duration {
  using Value = std::chrono::seconds;
  bool zero_ok = false;

  [[nodiscard]] base::Result<Value> read(const Site& site, const toml::node& node) const;
  [[nodiscard]] std::optional<std::string> show(Value v) const { return toml_string(format_duration(v)); }
};

// Integer bytes or "512MiB", "1GiB", "10G" (powers of 1024).
struct Size {
  using Value = std::uint64_t;

  [[nodiscard]] base::Result<Value> read(const Site& site, const toml::node& node) const;
  [[nodiscard]] std::optional<std::string> show(Value v) const { return toml_string(format_size(v)); }
};

// An integer from `min` to INT_MAX, e.g. snapshot.keep.
struct Count {
  using Value = int;
  int min = 0;

  [[nodiscard]] base::Result<Value> read(const Site& site, const toml::node& node) const;
  [[nodiscard]] std::optional<std::string> show(Value v) const { return std::to_string(v); }
};

// true or false.
struct Flag {
  using Value = bool;

  [[nodiscard]] base::Result<Value> read(const Site& site, const toml::node& node) const;
  [[nodiscard]] std::optional<std::string> show(Value v) const { return v ? "true" : "false"; }
};

// A string that `problem` accepts (it says why not), e.g. a marker file or a [[custom]] name.
struct Text {
  using Value = std::string;
  std::function<std::optional<std::string>(const std::string&)> problem;

  [[nodiscard]] base::Result<Value> read(const Site& site, const toml::node& node) const;
  [[nodiscard]] std::optional<std::string> show(const Value& v) const { return toml_string(v); }
};

// An array of strings, each accepted by `problem` (given the string and its index), replaced
// as a whole by a later layer. Empty only when `empty_problem` is empty.
struct List {
  using Value = Strings;
  std::function<std::optional<std::string>(const std::string&, std::size_t)> problem;
  std::string empty_problem;

  [[nodiscard]] base::Result<Value> read(const Site& site, const toml::node& node) const;
  [[nodiscard]] std::optional<std::string> show(const Value& v) const { return toml_strings(v); }
};

// Absolute normalized paths; `prefix_ok`: an entry may end in '/' (a prefix); `root_ok`: "/" may
// be one of them. e.g. paths(false, false) for preserve.paths.
[[nodiscard]] List paths(bool prefix_ok, bool root_ok);
// The system a rollback restores from the snapshot: the programs, libraries, configuration,
// boot files and the package managers' databases. A preserve path may neither be one of them,
// lie under one, nor hold one.
inline constexpr const char* kRestoredSystemTrees[] = {
    "/bin", "/boot", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/sbin", "/usr",
    "/var/lib/dpkg", "/var/lib/apt", "/var/lib/ucf", "/var/cache/debconf",
};
// preserve.paths: paths(false, false) without kRestoredSystemTrees, e.g. "/usr", "/var",
// "/etc/alternatives" are refused, "/srv" and "/var/lib/postgresql" are not.
[[nodiscard]] List preserve_paths();
// systemd unit names with their suffix, e.g. ["nginx.service"].
[[nodiscard]] List unit_names();
// An argv, no shell: argv[0] an absolute path, e.g. ["/usr/sbin/nginx", "-t"]; [] when `empty_ok`.
[[nodiscard]] List argv(bool empty_ok);

// A value that may stay unset (std::optional); `unset` says what that means in `policy show`.
template <typename Kind>
struct Optional {
  using Value = std::optional<typename Kind::Value>;
  Kind kind;
  std::string_view unset;  // e.g. "the backup check is not configured"

  [[nodiscard]] base::Result<Value> read(const Site& site, const toml::node& node) const {
    auto v = kind.read(site, node);
    if (!v) return tl::unexpected(v.error());
    return Value(std::move(*v));
  }
  [[nodiscard]] std::optional<std::string> show(const Value& v) const { return v ? kind.show(*v) : std::nullopt; }
};

// ---- the table's rows ---------------------------------------------------------------------

template <typename Record>
struct Entries;

// One key of `Record` (Policy, or CustomCheck for the fields of a [[custom]] entry), its kind
// and accessor erased. `id` is the check id a "*" in the path stands for ("" elsewhere).
template <typename Record>
struct Field {
  std::vector<std::string> path;  // "snapshot.keep" -> {"snapshot", "keep"}; "*" = each check id
  std::string help;               // one line for `policy show`
  std::string unset;              // for an optional value: what leaving it unset means
  bool required = false;          // a [[custom]] entry must set it
  // Reads `node` into the record; on error the record is unchanged.
  std::function<base::Result<void>(Record&, std::string_view id, const Site&, const toml::node&)> read;
  // The value as TOML text; nothing when an optional value is unset.
  std::function<std::optional<std::string>(const Record&, std::string_view id)> show;
  // Sets the built-in default where the model's initializer (policy.h) is not it; else empty.
  std::function<void(Record&, std::string_view id)> reset;
  // Set on the arrays of tables, [[custom]] and [[validator]]: the fields of each entry.
  std::variant<std::monostate, const Entries<CustomCheck>*, const Entries<Validator>*> entries;

  [[nodiscard]] std::string name() const { return path.back(); }
  [[nodiscard]] bool has_entries() const { return entries.index() != 0; }
};

// An array of tables of the policy, e.g. [[custom]]: the fields of an entry and the list of
// Policy the entries go to. Entries are named (field "name"); a later layer's entry with an
// earlier one's name replaces it in place, or with `merge` changes only the fields it sets
// (so that `[[validator]] name = "sshd" enabled = false` turns off a built-in one).
template <typename Record>
struct Entries {
  std::vector<Field<Record>> fields;
  std::vector<Record> Policy::*list = nullptr;
  std::string_view noun;  // "custom check" in "a custom check named 'x' is already defined"
  bool merge = false;
};

using Key = Field<Policy>;

// The default of a key that the model (policy.h) cannot hold, as a value or per check id;
// implicit, so that a table row just names it. Without one, the member's initializer in
// policy.h is the default.
template <typename T>
struct Default {
  std::function<T(std::string_view id)> of;

  Default() = default;
  Default(T value) : of([v = std::move(value)](std::string_view) { return v; }) {}
  Default(const T& (*per_check)(std::string_view id)) : of(per_check) {}
};

// A member, or a member of a member, of the record; the same for every check id.
// e.g. member(&Policy::snapshot, &SnapshotPolicy::keep)
template <typename... Members>
[[nodiscard]] auto member(Members... members) {
  return [=](auto& record, std::string_view) -> auto& {
    return (record.*....*members);  // a fold over .*: record.*m1.*m2
  };
}

// A member of checks[id], for keys under [checks.<id>]: per_check(&CheckPolicy::paths).
template <typename T>
[[nodiscard]] auto per_check(T CheckPolicy::*m) {
  struct Access {
    T CheckPolicy::*m;
    T& operator()(Policy& p, std::string_view id) const { return p.checks[std::string(id)].*m; }
    const T& operator()(const Policy& p, std::string_view id) const { return p.check(std::string(id)).*m; }
  };
  return Access{m};
}

// "snapshot.keep" -> {"snapshot", "keep"}.
[[nodiscard]] std::vector<std::string> split_key(std::string_view dotted);

// A row of the table: `dotted` key, its kind, where it lives (a pointer to member, member(...)
// or per_check(...)), a line of help and, when the model has none, its default.
// e.g. field("snapshot.keep", Count{.min = 0}, member(&Policy::snapshot, &SnapshotPolicy::keep), "snapshots kept")
template <typename Record = Policy, typename Kind, typename Access>
[[nodiscard]] Field<Record> field(std::string_view dotted, Kind kind, Access access, std::string_view help,
                                  Default<typename Kind::Value> def = {}) {
  if constexpr (std::is_member_object_pointer_v<Access>) {
    return field<Record>(dotted, std::move(kind), member(access), help, std::move(def));
  } else {
    Field<Record> f;
    f.path = split_key(dotted);
    f.help = help;
    if constexpr (requires { kind.unset; }) f.unset = kind.unset;
    f.read = [kind, access](Record& record, std::string_view id, const Site& site,
                            const toml::node& node) -> base::Result<void> {
      auto v = kind.read(site, node);
      if (!v) return tl::unexpected(v.error());
      access(record, id) = std::move(*v);
      return {};
    };
    f.show = [kind, access](const Record& record, std::string_view id) { return kind.show(access(record, id)); };
    if (def.of) f.reset = [access, of = def.of](Record& record, std::string_view id) { access(record, id) = of(id); };
    return f;
  }
}

// A field a [[custom]] entry must set, e.g. required(field<CustomCheck>("name", ...)).
template <typename Record>
[[nodiscard]] Field<Record> required(Field<Record> f) {
  f.required = true;
  return f;
}

// The array of tables `dotted` (e.g. "custom"), each entry read as `table` says.
template <typename Record>
[[nodiscard]] Key entries(std::string_view dotted, const Entries<Record>& table, std::string_view help) {
  Key k;
  k.path = split_key(dotted);
  k.help = help;
  k.entries = &table;
  return k;
}

// Every key of a policy, in the order `policy show` and default.toml list them.
[[nodiscard]] const std::vector<Key>& table();

}  // namespace guard::policies::keys
