#include "policies/keys.h"

#include <fmt/format.h>

#include <climits>

#include "base/strings.h"

namespace guard::policies::keys {

// ---- the table ----------------------------------------------------------------------------
// To add a key: its member in policy.h (with its default as the initializer), one row here, and
// its documentation in default.toml (tests/unit/policies fail until it is there).

namespace {

Choice<Severity> severity() {
  return {"severity", {Severity::off, Severity::info, Severity::warn, Severity::block}};
}

Choice<OnFail> action() {
  return {"action", {OnFail::rollback, OnFail::block_reboot, OnFail::warn}};
}

Choice<SnapshotBackendKind> backend() {
  using enum SnapshotBackendKind;
  return {"backend", {automatic, btrfs, copy, none}};
}

std::optional<std::string> marker_problem(const std::string& path) {
  return path.empty() ? std::nullopt : path_problem(path, false);  // "" = no marker file
}

std::optional<std::string> custom_name_problem(const std::string& name) {
  if (valid_custom_name(name)) return std::nullopt;
  return fmt::format("bad name '{}' (1 to 64 letters, digits, '-', '_' or '.')", name);
}

const Entries<CustomCheck>& custom_entries() {
  static const Entries<CustomCheck> table{{
      required(field<CustomCheck>("name", Text{custom_name_problem}, &CustomCheck::name,
                                  "unique id of the check: letters, digits, '-', '_', '.'")),
      required(field<CustomCheck>("command", argv(/*empty_ok=*/false), &CustomCheck::command,
                                  "argv run in the guarded root, no shell; exit status 0 passes")),
      field<CustomCheck>("timeout", Duration{.zero_ok = false}, &CustomCheck::timeout,
                         "the command is killed after this"),
      field<CustomCheck>("severity", severity(), &CustomCheck::severity, "how a failure counts: off|info|warn|block"),
  }, &Policy::custom, "custom check"};
  return table;
}

std::optional<std::string> runtime_dir_problem(const std::string& path, std::size_t) {
  if (auto why = path_problem(path, false)) return why;
  if (path.rfind("/run/", 0) != 0) return fmt::format("'{}' is not under /run (the sandbox's fresh /run)", path);
  return std::nullopt;
}

std::optional<std::string> no_problem(const std::string&, std::size_t) { return std::nullopt; }

const Entries<Validator>& validator_entries() {
  static const Entries<Validator> table{
      {
          required(field<Validator>("name", Text{custom_name_problem}, &Validator::name,
                                    "unique id of the validator: letters, digits, '-', '_', '.'")),
          required(field<Validator>("program", Text{[](const std::string& p) { return path_problem(p, false); }},
                                    &Validator::program,
                                    "the root's file whose presence enables it, e.g. \"/usr/sbin/sshd\"")),
          required(field<Validator>("argv", argv(/*empty_ok=*/false), &Validator::argv,
                                    "run chrooted in the checked root, sandboxed, no shell; exit status 0 passes")),
          field<Validator>("timeout", Duration{.zero_ok = false}, &Validator::timeout,
                           "the validator is killed after this (a timeout is a warning)"),
          field<Validator>("runtime_dirs", List{runtime_dir_problem, {}}, &Validator::runtime_dirs,
                           "directories created on the sandbox's empty /run, e.g. [\"/run/sshd\"]"),
          field<Validator>("warn_output", List{no_problem, {}}, &Validator::warn_output,
                           "a failure whose output contains one of these is a warning (what only a boot provides)"),
          field<Validator>("severity", severity(), &Validator::severity, "how a failure counts: off|info|warn|block"),
          field<Validator>("enabled", Flag{}, &Validator::enabled, "false turns the validator off"),
      },
      &Policy::validators, "validator", /*merge=*/true};
  return table;
}

}  // namespace

const std::vector<Key>& table() {
  static const std::vector<Key> keys = {
      field("on_fail", action(), &Policy::on_fail,
            "what a blocking regression after the upgrade does: rollback|block-reboot|warn"),
      field("command_timeout", Duration{.zero_ok = false}, &Policy::command_timeout,
            "the guarded command is killed after this"),

      field("checks.*.severity", severity(), per_check(&CheckPolicy::severity),
            "how seriously the check's findings count: off (not run)|info|warn (never blocks)|block"),
      field("checks.*.paths", paths(/*prefix_ok=*/false, /*root_ok=*/true), per_check(&CheckPolicy::paths),
            "where the check looks ([] = the check's own scope)", &default_check_paths),
      field("checks.*.ignore", paths(/*prefix_ok=*/true, /*root_ok=*/true), per_check(&CheckPolicy::ignore),
            "findings on these paths are dropped; an entry ending in '/' is a prefix"),
      field("checks.package-hashes.conffiles", severity(), &Policy::conffiles,
            "how edited conffiles (e.g. /etc/ssh/sshd_config) count"),

      field("preserve.paths", preserve_paths(), &Policy::preserve,
            "carried from the broken root into the restored one on rollback",
            Strings{"/home", "/root", "/srv", "/var/log", "/var/lib/postgresql", "/var/lib/mysql", "/var/mail",
                    "/var/spool"}),
      field("services.required", unit_names(), &Policy::required_services,
            "units that must be active after an upgrade and after the trial boot"),

      field("snapshot.backend", backend(), member(&Policy::snapshot, &SnapshotPolicy::backend),
            "how the root is snapshotted: auto|btrfs|copy|none"),
      field("snapshot.required", Flag{}, member(&Policy::snapshot, &SnapshotPolicy::required),
            "refuse to run an upgrade when no snapshot could be taken"),
      field("snapshot.min_free", Size{}, member(&Policy::snapshot, &SnapshotPolicy::min_free_bytes),
            "refuse to snapshot when the filesystem has less than this free"),
      field("snapshot.keep", Count{.min = 0}, member(&Policy::snapshot, &SnapshotPolicy::keep),
            "guard snapshots kept; older ones are pruned after a successful run"),
      field("snapshot.keep_broken", Count{.min = 0}, member(&Policy::snapshot, &SnapshotPolicy::keep_broken),
            "roots replaced by rollbacks kept for inspection; older ones are pruned"),

      field("preflight.lock_timeout", Duration{.zero_ok = true},
            member(&Policy::preflight, &PreflightPolicy::lock_timeout),
            "how long to wait for the apt/dpkg locks (0 = do not wait)"),
      field("preflight.min_free_root", Size{}, member(&Policy::preflight, &PreflightPolicy::min_free_root),
            "free space required on / before an upgrade"),
      field("preflight.min_free_boot", Size{}, member(&Policy::preflight, &PreflightPolicy::min_free_boot),
            "free space required on /boot before an upgrade"),

      field("backup.max_age", Optional<Duration>{{.zero_ok = false}, "the backup check is not configured"},
            member(&Policy::backup, &BackupPolicy::max_age), "the last backup must be newer than this"),
      field("backup.marker", Text{marker_problem}, member(&Policy::backup, &BackupPolicy::marker),
            "a file whose modification time is the time of the last backup"),
      field("backup.command", argv(/*empty_ok=*/true), member(&Policy::backup, &BackupPolicy::command),
            "or a command whose exit status 0 means the backup is fresh"),

      field("boot_check.settle_timeout", Duration{.zero_ok = false},
            member(&Policy::boot_check, &BootCheckPolicy::settle_timeout),
            "how long the post-boot check waits for the system to settle"),
      field("boot_check.rollback", Flag{}, member(&Policy::boot_check, &BootCheckPolicy::rollback),
            "roll back and reboot once when the trial boot after an upgrade fails"),

      field("boot_check.require_counter", Flag{}, member(&Policy::boot_check, &BootCheckPolicy::require_counter),
            "refuse a guarded run of the live system where GRUB cannot count boots (/boot/grub on btrfs)"),
      field("hook.enabled", Flag{}, member(&Policy::hook, &HookPolicy::enabled),
            "apt hook mode on; false makes apt's hooks do nothing"),
      field("hook.on_fail", action(), member(&Policy::hook, &HookPolicy::on_fail),
            "what a regression found after apt's dpkg run (apt hook mode) does"),
      field("audit.close_gate", Flag{}, member(&Policy::audit, &AuditPolicy::close_gate),
            "close the reboot gate when the audit finds a new blocking finding"),
      field("audit.deep_every", Duration{.zero_ok = true}, member(&Policy::audit, &AuditPolicy::deep_every),
            "rehash every package file when the last deep audit is older than this (0 = always)"),

      entries("custom", custom_entries(), "the administrator's own checks, run in the guarded root after the upgrade"),
      entries("validator", validator_entries(),
              "the root's own configuration validators, run sandboxed in the checked root when their program is there"),
  };
  return keys;
}

// ---- kinds --------------------------------------------------------------------------------

std::string Site::position(const toml::source_region& at) const {
  return fmt::format("{}:{}:{}", file, at.begin.line, at.begin.column);
}

tl::unexpected<base::Error> Site::fail(const toml::source_region& at, const std::string& what) const {
  return base::fail(base::Error{"policy", file, 0, fmt::format("{}: {}: {}", position(at), key, what)});
}

const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::vector<std::string> split_key(std::string_view dotted) {
  auto parts = base::split(dotted, '.');
  return {parts.begin(), parts.end()};
}

base::Result<std::size_t> read_name(const Site& site, const toml::node& node, std::string_view noun,
                                    const Strings& names) {
  const auto* s = node.as_string();
  if (!s) {
    return site.fail(node.source(), fmt::format("expected a string ({}), got {}", join(names, "|"), type_name(node)));
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == s->get()) return i;
  }
  Strings first(names.begin(), names.end() - 1);
  return site.fail(node.source(),
                   fmt::format("unknown {} '{}' (expected {} or {})", noun, s->get(), join(first, ", "), names.back()));
}

base::Result<Duration::Value> Duration::read(const Site& site, const toml::node& node) const {
  std::int64_t seconds = 0;
  if (const auto* i = node.as_integer()) {
    seconds = i->get();
    if (seconds < 0) return site.fail(node.source(), fmt::format("negative duration {}", seconds));
  } else if (const auto* s = node.as_string()) {
    auto parsed = parse_duration(s->get());
    if (!parsed) {
      return site.fail(node.source(),
                       fmt::format("bad duration '{}' (write whole seconds as an integer, or a whole number "
                                   "followed by s, m, h or d, e.g. \"90s\", \"5m\", \"6h\", \"2d\")",
                                   s->get()));
    }
    seconds = *parsed;
  } else {
    return site.fail(node.source(), fmt::format("expected a duration (integer seconds or a string like \"5m\"), got {}",
                                                type_name(node)));
  }
  if (seconds == 0 && !zero_ok) return site.fail(node.source(), "the duration must be greater than 0");
  if (seconds > kMaxDurationDays * 86400) {
    return site.fail(node.source(), fmt::format("the duration is longer than {} days", kMaxDurationDays));
  }
  return Value(seconds);
}

base::Result<Size::Value> Size::read(const Site& site, const toml::node& node) const {
  if (const auto* i = node.as_integer()) {
    if (i->get() < 0) return site.fail(node.source(), fmt::format("negative size {}", i->get()));
    return static_cast<Value>(i->get());
  }
  if (const auto* s = node.as_string()) {
    auto parsed = parse_size(s->get());
    if (!parsed) {
      return site.fail(node.source(),
                       fmt::format("bad size '{}' (write bytes as an integer, or a whole number followed by B, "
                                   "K/KiB, M/MiB, G/GiB or T/TiB, all powers of 1024, e.g. \"512MiB\", \"1GiB\")",
                                   s->get()));
    }
    return *parsed;
  }
  return site.fail(node.source(),
                   fmt::format("expected a size (integer bytes or a string like \"1GiB\"), got {}", type_name(node)));
}

base::Result<Count::Value> Count::read(const Site& site, const toml::node& node) const {
  const auto* i = node.as_integer();
  if (!i) return site.fail(node.source(), fmt::format("expected an integer, got {}", type_name(node)));
  if (i->get() < min || i->get() > INT_MAX) {
    return site.fail(node.source(), fmt::format("must be {} or more, got {}", min, i->get()));
  }
  return static_cast<Value>(i->get());
}

base::Result<Flag::Value> Flag::read(const Site& site, const toml::node& node) const {
  const auto* b = node.as_boolean();
  if (!b) return site.fail(node.source(), fmt::format("expected a boolean (true|false), got {}", type_name(node)));
  return b->get();
}

base::Result<Text::Value> Text::read(const Site& site, const toml::node& node) const {
  const auto* s = node.as_string();
  if (!s) return site.fail(node.source(), fmt::format("expected a string, got {}", type_name(node)));
  if (auto why = problem(s->get())) return site.fail(node.source(), *why);
  return s->get();
}

base::Result<List::Value> List::read(const Site& site, const toml::node& node) const {
  const toml::array* arr = node.as_array();
  if (!arr) return site.fail(node.source(), fmt::format("expected an array of strings, got {}", type_name(node)));
  Value out;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const toml::node& item = *arr->get(i);
    const auto* s = item.as_string();
    if (!s) return site.fail(item.source(), fmt::format("entry {}: expected a string, got {}", i + 1, type_name(item)));
    if (auto why = problem(s->get(), i)) return site.fail(item.source(), fmt::format("entry {}: {}", i + 1, *why));
    out.push_back(s->get());
  }
  if (out.empty() && !empty_problem.empty()) return site.fail(node.source(), empty_problem);
  return out;
}

List paths(bool prefix_ok, bool root_ok) {
  return {[=](const std::string& p, std::size_t) -> std::optional<std::string> {
            if (auto why = path_problem(p, prefix_ok)) return why;
            if (!root_ok && p == "/") return std::string("'/' is not allowed here (it would cover the whole system)");
            return std::nullopt;
          },
          {}};
}

List preserve_paths() {
  return {[](const std::string& p, std::size_t) -> std::optional<std::string> {
            if (auto why = path_problem(p, false)) return why;
            if (p == "/") return std::string("'/' is not allowed here (it would cover the whole system)");
            for (const char* tree : kRestoredSystemTrees) {
              const std::string t(tree);
              const bool inside = p == t || p.starts_with(t + "/");
              const bool covers = t.starts_with(p + "/");
              if (!inside && !covers) continue;
              return fmt::format("'{}' {} {}, which a rollback restores as it was before the upgrade (carried over, "
                                 "it would bring the broken system into the restored root); preserve is for data "
                                 "such as /srv, /home, /var/log or /var/lib/postgresql",
                                 p, inside ? "is part of" : "holds", t);
            }
            return std::nullopt;
          },
          {}};
}

List unit_names() {
  return {[](const std::string& name, std::size_t) -> std::optional<std::string> {
            if (valid_unit_name(name)) return std::nullopt;
            return fmt::format("'{}' is not a systemd unit name with its type suffix (e.g. \"nginx.service\")", name);
          },
          {}};
}

List argv(bool empty_ok) {
  return {[](const std::string& arg, std::size_t i) -> std::optional<std::string> {
            if (i > 0) return std::nullopt;
            if (auto why = path_problem(arg, false)) return "the program " + *why;
            return std::nullopt;
          },
          empty_ok ? "" : "the command must not be empty (e.g. [\"/usr/sbin/nginx\", \"-t\"])"};
}

}  // namespace guard::policies::keys
