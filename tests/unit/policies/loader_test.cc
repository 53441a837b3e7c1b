#include "policies/loader.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/common/test_env.h"

namespace guard::policies {
namespace {

using guard::testing::make_dirs;
using guard::testing::TempDir;
using guard::testing::write_file;

// Every setting (not the origins) of `a` equals that of `b`.
void expect_same_settings(const Policy& a, const Policy& b) {
  EXPECT_EQ(a.on_fail, b.on_fail);
  EXPECT_EQ(a.command_timeout, b.command_timeout);
  ASSERT_EQ(a.checks.size(), b.checks.size());
  for (const auto& [id, cp] : a.checks) {
    SCOPED_TRACE("checks." + id);
    ASSERT_TRUE(b.checks.count(id));
    EXPECT_EQ(cp.severity, b.checks.at(id).severity);
    EXPECT_EQ(cp.paths, b.checks.at(id).paths);
    EXPECT_EQ(cp.ignore, b.checks.at(id).ignore);
  }
  EXPECT_EQ(a.conffiles, b.conffiles);
  EXPECT_EQ(a.preserve, b.preserve);
  EXPECT_EQ(a.required_services, b.required_services);
  ASSERT_EQ(a.custom.size(), b.custom.size());
  for (std::size_t i = 0; i < a.custom.size(); ++i) {
    SCOPED_TRACE("custom " + a.custom[i].name);
    EXPECT_EQ(a.custom[i].name, b.custom[i].name);
    EXPECT_EQ(a.custom[i].command, b.custom[i].command);
    EXPECT_EQ(a.custom[i].timeout, b.custom[i].timeout);
    EXPECT_EQ(a.custom[i].severity, b.custom[i].severity);
  }
  ASSERT_EQ(a.validators.size(), b.validators.size());
  for (std::size_t i = 0; i < a.validators.size(); ++i) {
    SCOPED_TRACE("validator " + a.validators[i].name);
    EXPECT_EQ(a.validators[i].name, b.validators[i].name);
    EXPECT_EQ(a.validators[i].program, b.validators[i].program);
    EXPECT_EQ(a.validators[i].argv, b.validators[i].argv);
    EXPECT_EQ(a.validators[i].timeout, b.validators[i].timeout);
    EXPECT_EQ(a.validators[i].runtime_dirs, b.validators[i].runtime_dirs);
    EXPECT_EQ(a.validators[i].warn_output, b.validators[i].warn_output);
    EXPECT_EQ(a.validators[i].severity, b.validators[i].severity);
    EXPECT_EQ(a.validators[i].enabled, b.validators[i].enabled);
  }
  EXPECT_EQ(a.snapshot.backend, b.snapshot.backend);
  EXPECT_EQ(a.snapshot.required, b.snapshot.required);
  EXPECT_EQ(a.snapshot.min_free_bytes, b.snapshot.min_free_bytes);
  EXPECT_EQ(a.snapshot.keep, b.snapshot.keep);
  EXPECT_EQ(a.preflight.lock_timeout, b.preflight.lock_timeout);
  EXPECT_EQ(a.preflight.min_free_root, b.preflight.min_free_root);
  EXPECT_EQ(a.preflight.min_free_boot, b.preflight.min_free_boot);
  EXPECT_EQ(a.backup.max_age, b.backup.max_age);
  EXPECT_EQ(a.backup.marker, b.backup.marker);
  EXPECT_EQ(a.backup.command, b.backup.command);
  EXPECT_EQ(a.boot_check.settle_timeout, b.boot_check.settle_timeout);
  EXPECT_EQ(a.boot_check.rollback, b.boot_check.rollback);
  EXPECT_EQ(a.hook.on_fail, b.hook.on_fail);
  EXPECT_EQ(a.audit.close_gate, b.audit.close_gate);
  EXPECT_EQ(a.audit.deep_every, b.audit.deep_every);
}

std::string default_toml_path() {
  return std::string(UG_SOURCE_DIR) + "/policies/default.toml";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The dotted keys that `text` (a policy file) sets, in the names policy_keys() uses
// ("checks.symlinks.paths", "custom[].name"); with `commented`, also those of lines commented out
// with "# " ("# max_age = ..." below "[backup]" is "backup.max_age"; a commented "# [[custom]]"
// opens that table). Prose comments are not "KEY = " lines and count for nothing.
// The length of the run of key characters ([A-Za-z0-9_-], with `dots` also '.') at `from`.
std::size_t key_run(const std::string& line, std::size_t from, bool dots) {
  std::size_t end = from;
  while (end < line.size() && (std::isalnum(static_cast<unsigned char>(line[end])) != 0 || line[end] == '_' ||
                               line[end] == '-' || (dots && line[end] == '.')))
    ++end;
  return end - from;
}

// Matched by hand, not with std::regex: gcc 12 with -fsanitize=address warns inside <regex>
// (-Wmaybe-uninitialized, GCC bug 105616), which the sanitizer build's -Werror would refuse.
std::set<std::string> keys_in(const std::string& text, bool commented) {
  std::set<std::string> keys;
  std::string table;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# ", 0) == 0) {
      if (!commented) continue;
      line.erase(0, 2);
    }
    if (line.rfind('[', 0) == 0) {  // "[name]" or "[[name]]"
      std::size_t open = line.rfind("[[", 0) == 0 ? 2 : 1;
      std::size_t name = key_run(line, open, /*dots=*/true);
      std::string rest = line.substr(open + name);
      if (name > 0 && (rest == "]" || rest == "]]")) table = line.substr(open, name) + (open == 2 ? "[]" : "");
    } else if (std::size_t name = key_run(line, 0, /*dots=*/false); name > 0 && line.compare(name, 3, " = ") == 0) {
      keys.insert(table.empty() ? line.substr(0, name) : table + "." + line.substr(0, name));
    }
  }
  return keys;
}

// A config dir <tmp>/etc with 0755 directories, as an administrator would have it.
class ConfigDir : public ::testing::Test {
 protected:
  void SetUp() override {
    make_dirs(dir_ / "etc", 0755);
    make_dirs(dir_ / "etc/policy.d", 0755);
  }
  [[nodiscard]] std::string etc(const std::string& rel) const { return dir_ / ("etc/" + rel); }
  [[nodiscard]] LoadOptions options() const {
    LoadOptions o;
    o.config_dir = dir_ / "etc";
    return o;
  }
  TempDir dir_;
};

TEST(DefaultPolicy, HasTheDocumentedDefaults) {
  Policy p = default_policy();
  EXPECT_EQ(p.on_fail, OnFail::rollback);
  EXPECT_EQ(p.command_timeout, std::chrono::hours(6));
  ASSERT_EQ(p.checks.size(), known_check_ids().size());
  for (const auto& id : known_check_ids()) EXPECT_EQ(p.check(id).severity, Severity::block) << id;
  EXPECT_EQ(p.check("symlinks").paths, (std::vector<std::string>{"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec",
                                                                 "/etc", "/boot", "/usr/local/bin", "/opt"}));
  EXPECT_EQ(p.check("libraries").paths, (std::vector<std::string>{"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec",
                                                                  "/usr/local/bin", "/usr/local/lib", "/opt"}));
  EXPECT_EQ(p.check("critical").paths,
            (std::vector<std::string>{"/sbin/init", "/bin/sh", "/usr/bin/dpkg", "/usr/bin/apt-get", "/bin/mount",
                                      "/bin/login", "/usr/sbin/sshd"}));
  EXPECT_EQ(p.conffiles, Severity::warn);
  EXPECT_EQ(p.preserve, (std::vector<std::string>{"/home", "/root", "/srv", "/var/log", "/var/lib/postgresql",
                                                  "/var/lib/mysql", "/var/mail", "/var/spool"}));
  EXPECT_TRUE(p.required_services.empty());
  EXPECT_EQ(p.snapshot.backend, SnapshotBackendKind::automatic);
  EXPECT_FALSE(p.snapshot.required);
  EXPECT_EQ(p.snapshot.min_free_bytes, 1ULL << 30);
  EXPECT_EQ(p.snapshot.keep, 5);
  EXPECT_EQ(p.preflight.lock_timeout, std::chrono::minutes(5));
  EXPECT_EQ(p.preflight.min_free_root, 1ULL << 30);
  EXPECT_EQ(p.preflight.min_free_boot, 100ULL << 20);
  EXPECT_FALSE(p.backup.max_age.has_value());
  EXPECT_TRUE(p.backup.marker.empty());
  EXPECT_TRUE(p.backup.command.empty());
  EXPECT_EQ(p.boot_check.settle_timeout, std::chrono::minutes(5));
  EXPECT_TRUE(p.boot_check.rollback);
  EXPECT_EQ(p.hook.on_fail, OnFail::block_reboot);
  EXPECT_TRUE(p.audit.close_gate);
  EXPECT_EQ(p.origins.at("audit.close_gate"), "built-in");
  EXPECT_EQ(p.audit.deep_every, std::chrono::hours(24 * 7));
  EXPECT_EQ(p.origins.at("audit.deep_every"), "built-in");
  EXPECT_TRUE(p.custom.empty());
  EXPECT_EQ(p.origins.at("checks.symlinks.severity"), "built-in");
  EXPECT_EQ(p.origins.at("snapshot.keep"), "built-in");
}

TEST(DefaultPolicy, ShippedDefaultTomlIsExactlyTheBuiltInDefaults) {
  LoadOptions o;
  o.policy_file = default_toml_path();
  o.check_permissions = false;  // a checkout's permissions are not an installed policy's
  auto loaded = load_policy(o);
  ASSERT_TRUE(loaded) << loaded.error().message;
  expect_same_settings(*loaded, default_policy());
  // default.toml documents every key: each one the built-in defaults set comes from the file.
  for (const auto& [key, origin] : default_policy().origins) {
    EXPECT_EQ(loaded->origins.at(key).rfind(default_toml_path() + ":", 0), 0u)
        << key << " is not set in default.toml (origin " << loaded->origins.at(key) << ")";
  }
}

// A key added to the table without its documentation in default.toml fails here, and so does a
// key documented there that the table no longer has. Keys without a built-in value (backup.max_age,
// the fields of [[custom]]) are documented by a commented-out example.
TEST(DefaultPolicy, ShippedDefaultTomlDocumentsEveryKeyOfTheTable) {
  const std::vector<std::string> keys = policy_keys();
  const std::set<std::string> table(keys.begin(), keys.end());
  ASSERT_EQ(table.size(), keys.size()) << "a key is in the table twice";
  const std::string text = read_text(default_toml_path());
  ASSERT_FALSE(text.empty());
  const std::set<std::string> documented = keys_in(text, /*commented=*/true);
  for (const auto& key : keys) EXPECT_TRUE(documented.count(key)) << key << " is not documented in default.toml";
  for (const auto& key : documented) EXPECT_TRUE(table.count(key)) << key << " in default.toml is no key of the table";
  // What default.toml sets is exactly what has a built-in value.
  const std::set<std::string> set = keys_in(text, /*commented=*/false);
  const Policy defaults = default_policy();
  for (const auto& [key, origin] : defaults.origins) EXPECT_TRUE(set.count(key)) << key << " is only commented out";
  for (const auto& key : set) {
    // Built-in entries of an array of tables ([[validator]]) are compared entry by entry by
    // ShippedDefaultTomlIsExactlyTheBuiltInDefaults.
    if (key.find("[].") != std::string::npos) continue;
    EXPECT_TRUE(defaults.origins.count(key)) << key << " is set but has no built-in value";
  }
}

TEST(DefaultPolicy, CheckPathsAreTheChecksOwnFallbacks) {
  const Policy p = default_policy();
  for (const auto& id : known_check_ids()) EXPECT_EQ(p.check(id).paths, default_check_paths(id)) << id;
  EXPECT_FALSE(default_check_paths("symlinks").empty());
  EXPECT_FALSE(default_check_paths("libraries").empty());
  EXPECT_TRUE(default_check_paths("no-such-check").empty());
}

TEST_F(ConfigDir, MissingConfigDirGivesTheDefaults) {
  LoadOptions o;
  o.config_dir = dir_ / "nowhere";
  auto loaded = load_policy(o);
  ASSERT_TRUE(loaded) << loaded.error().message;
  expect_same_settings(*loaded, default_policy());
}

TEST_F(ConfigDir, LayersApplyInOrderAndNonTomlFilesAreIgnored) {
  // Written out of order so that directory order cannot pass for sorting.
  write_file(etc("policy.d/20-b.toml"),
             "[snapshot]\n"
             "keep = 7\n"
             "[[custom]]\n"
             "name = \"a\"\n"
             "command = [\"/bin/true\", \"from-b\"]\n"
             "[[custom]]\n"
             "name = \"b\"\n"
             "command = [\"/bin/false\"]\n"
             "severity = \"warn\"\n");
  write_file(etc("policy.d/10-a.toml"),
             "on_fail = \"block-reboot\"\n"
             "[snapshot]\n"
             "keep = 4\n"
             "[checks.symlinks]\n"
             "ignore = [\"/opt/vendor/\"]\n"
             "[[custom]]\n"
             "name = \"a\"\n"
             "command = [\"/bin/true\", \"from-a\"]\n"
             "timeout = \"90s\"\n");
  write_file(etc("policy.toml"),
             "on_fail = \"warn\"\n"
             "command_timeout = 7200\n"
             "[snapshot]\n"
             "keep = 3\n"
             "[checks.symlinks]\n"
             "paths = [\"/a\", \"/b\"]\n"
             "ignore = [\"/a/x\"]\n");
  write_file(etc("policy.d/30-c.conf"), "this is not toml [[[\n");
  write_file(etc("policy.d/README"), "keep = -1\n");
  write_file(etc("policy.d/.hidden.toml"), "bogus = 1\n");
  make_dirs(etc("policy.d/40-dir.toml"), 0755);  // a directory, not a drop-in

  auto loaded = load_policy(options());
  ASSERT_TRUE(loaded) << loaded.error().message;
  const Policy& p = *loaded;
  EXPECT_EQ(p.on_fail, OnFail::block_reboot);
  EXPECT_EQ(p.command_timeout, std::chrono::hours(2));
  EXPECT_EQ(p.snapshot.keep, 7);
  EXPECT_EQ(p.check("symlinks").paths, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(p.check("symlinks").ignore, (std::vector<std::string>{"/opt/vendor/"}));  // replaced, not merged
  ASSERT_EQ(p.custom.size(), 2u);
  EXPECT_EQ(p.custom[0].name, "a");
  EXPECT_EQ(p.custom[0].command, (std::vector<std::string>{"/bin/true", "from-b"}));
  EXPECT_EQ(p.custom[0].timeout, std::chrono::seconds(60));  // the whole entry was replaced
  EXPECT_EQ(p.custom[1].name, "b");
  EXPECT_EQ(p.custom[1].severity, Severity::warn);

  EXPECT_EQ(p.origins.at("on_fail"), etc("policy.d/10-a.toml") + ":1:11");
  EXPECT_EQ(p.origins.at("command_timeout"), etc("policy.toml") + ":2:19");
  EXPECT_EQ(p.origins.at("snapshot.keep"), etc("policy.d/20-b.toml") + ":2:8");
  EXPECT_EQ(p.origins.at("checks.symlinks.paths"), etc("policy.toml") + ":6:9");
  EXPECT_EQ(p.origins.at("checks.symlinks.ignore"), etc("policy.d/10-a.toml") + ":5:10");
  EXPECT_EQ(p.origins.at("custom.a.command"), etc("policy.d/20-b.toml") + ":5:11");
  EXPECT_EQ(p.origins.at("custom.a.timeout"), "built-in");
  EXPECT_EQ(p.origins.at("snapshot.backend"), "built-in");
}

TEST_F(ConfigDir, PolicyFileOptionUsesOnlyThatFile) {
  write_file(etc("policy.toml"), "on_fail = \"warn\"\n");
  write_file(dir_ / "only.toml", "[snapshot]\nkeep = 9\n");
  LoadOptions o = options();
  o.policy_file = dir_ / "only.toml";
  auto loaded = load_policy(o);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->on_fail, OnFail::rollback);
  EXPECT_EQ(loaded->snapshot.keep, 9);

  o.policy_file = dir_ / "missing.toml";
  auto missing = load_policy(o);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().path, dir_ / "missing.toml");
  EXPECT_EQ(missing.error().err, ENOENT);
}

TEST(Values, DurationsAndSizesInEveryAcceptedForm) {
  Policy p = default_policy();
  auto r = apply_policy_toml(p,
                             "command_timeout = \"2d\"\n"
                             "[preflight]\n"
                             "lock_timeout = \"0s\"\n"
                             "min_free_root = \"10G\"\n"
                             "min_free_boot = 4096\n"
                             "[snapshot]\n"
                             "min_free = \"512MiB\"\n"
                             "keep = 0\n"
                             "[boot_check]\n"
                             "settle_timeout = \"90s\"\n"
                             "[hook]\n"
                             "on_fail = \"rollback\"\n"
                             "[backup]\n"
                             "max_age = \"26h\"\n"
                             "marker = \"/var/backups/last\"\n",
                             "v.toml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(p.command_timeout, std::chrono::hours(48));
  EXPECT_EQ(p.preflight.lock_timeout, std::chrono::seconds(0));
  EXPECT_EQ(p.preflight.min_free_root, 10ULL << 30);
  EXPECT_EQ(p.preflight.min_free_boot, 4096u);
  EXPECT_EQ(p.snapshot.min_free_bytes, 512ULL << 20);
  EXPECT_EQ(p.snapshot.keep, 0);
  EXPECT_EQ(p.boot_check.settle_timeout, std::chrono::seconds(90));
  EXPECT_EQ(p.hook.on_fail, OnFail::rollback);
  EXPECT_EQ(p.backup.max_age, std::chrono::hours(26));
  EXPECT_EQ(p.backup.marker, "/var/backups/last");
}

struct ErrorCase {
  const char* name;
  const char* toml;
  const char* message;  // expected message with FILE for the file name
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << c.name;
}

std::string with_file(std::string text, const std::string& file) {
  for (auto pos = text.find("FILE"); pos != std::string::npos; pos = text.find("FILE", pos + file.size())) {
    text.replace(pos, 4, file);
  }
  return text;
}

class PolicyErrors : public ::testing::TestWithParam<ErrorCase> {};

// The error names file:line:column and the key, and the policy is left exactly as it was.
TEST_P(PolicyErrors, NameFileLineColumnKeyAndChangeNothing) {
  const ErrorCase& c = GetParam();
  Policy p = default_policy();
  ASSERT_TRUE(apply_policy_toml(p, "[snapshot]\nkeep = 2\n", "/etc/upgrade-guard/policy.toml"));
  const std::string before = render_policy(p);
  const std::string file = "/etc/upgrade-guard/policy.d/50-bad.toml";
  auto r = apply_policy_toml(p, c.toml, file);
  ASSERT_FALSE(r) << c.name;
  EXPECT_EQ(r.error().message, with_file(c.message, file));
  EXPECT_EQ(r.error().path, file);
  EXPECT_EQ(render_policy(p), before) << "the failed layer changed the policy";
  EXPECT_EQ(p.snapshot.keep, 2);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PolicyErrors,
    ::testing::Values(
        ErrorCase{"unknown_key", "on_fail = \"warn\"\n[snapshot]\nbakend = \"btrfs\"\n",
                  "FILE:3:1: snapshot.bakend: unknown key (expected one of: backend, required, min_free, keep, keep_broken)"},
        ErrorCase{"unknown_table", "[snapshots]\nkeep = 1\n",
                  "FILE:1:2: snapshots: unknown key (expected one of: on_fail, command_timeout, checks, preserve, "
                  "services, snapshot, preflight, backup, boot_check, hook, audit, custom, validator)"},
        ErrorCase{"unknown_check_id", "[checks.symlink]\nseverity = \"warn\"\n",
                  "FILE:1:9: checks.symlink: unknown check id (known: dpkg-state, package-files, package-hashes, "
                  "libraries, symlinks, boot, mounts, services, critical, pam, nss, preload, apt-hooks, "
                  "login-shells, interpreters, space, filesystem, backup, validators, custom)"},
        ErrorCase{"unknown_key_in_check", "[checks.boot]\nseverity = \"warn\"\nconffiles = \"off\"\n",
                  "FILE:3:1: checks.boot.conffiles: unknown key (expected one of: severity, paths, ignore)"},
        ErrorCase{"wrong_type", "[checks.symlinks]\nseverity = 3\n",
                  "FILE:2:12: checks.symlinks.severity: expected a string (off|info|warn|block), got an integer"},
        ErrorCase{"wrong_type_table", "snapshot = 5\n", "FILE:1:12: snapshot: expected a table, got an integer"},
        ErrorCase{"wrong_type_bool", "[boot_check]\nrollback = \"yes\"\n",
                  "FILE:2:12: boot_check.rollback: expected a boolean (true|false), got a string"},
        ErrorCase{"audit_close_gate_not_bool", "[audit]\nclose_gate = \"no\"\n",
                  "FILE:2:14: audit.close_gate: expected a boolean (true|false), got a string"},
        ErrorCase{"audit_unknown_key", "[audit]\nclose_gate = false\nclose = true\n",
                  "FILE:3:1: audit.close: unknown key (expected one of: close_gate, deep_every)"},
        ErrorCase{"bad_severity", "[checks.symlinks]\nseverity = \"high\"\n",
                  "FILE:2:12: checks.symlinks.severity: unknown severity 'high' (expected off, info, warn or block)"},
        ErrorCase{"bad_hook_on_fail", "[hook]\non_fail = \"ignore\"\n",
                  "FILE:2:11: hook.on_fail: unknown action 'ignore' (expected rollback, block-reboot or warn)"},
        ErrorCase{"bad_on_fail", "on_fail = \"reboot\"\n",
                  "FILE:1:11: on_fail: unknown action 'reboot' (expected rollback, block-reboot or warn)"},
        ErrorCase{"bad_duration", "command_timeout = \"1 hour\"\n",
                  "FILE:1:19: command_timeout: bad duration '1 hour' (write whole seconds as an integer, or a whole "
                  "number followed by s, m, h or d, e.g. \"90s\", \"5m\", \"6h\", \"2d\")"},
        ErrorCase{"bad_duration_compound", "[boot_check]\nsettle_timeout = \"1h30m\"\n",
                  "FILE:2:18: boot_check.settle_timeout: bad duration '1h30m' (write whole seconds as an integer, or "
                  "a whole number followed by s, m, h or d, e.g. \"90s\", \"5m\", \"6h\", \"2d\")"},
        ErrorCase{"float_duration", "command_timeout = 1.5\n",
                  "FILE:1:19: command_timeout: expected a duration (integer seconds or a string like \"5m\"), got a "
                  "float"},
        ErrorCase{"huge_duration", "[backup]\nmax_age = \"3651d\"\n",
                  "FILE:2:11: backup.max_age: the duration is longer than 3650 days"},
        ErrorCase{"zero_timeout", "command_timeout = 0\n",
                  "FILE:1:19: command_timeout: the duration must be greater than 0"},
        ErrorCase{"bad_size", "[snapshot]\nmin_free = \"1 gigabyte\"\n",
                  "FILE:2:12: snapshot.min_free: bad size '1 gigabyte' (write bytes as an integer, or a whole number "
                  "followed by B, K/KiB, M/MiB, G/GiB or T/TiB, all powers of 1024, e.g. \"512MiB\", \"1GiB\")"},
        ErrorCase{"ambiguous_size", "[preflight]\nmin_free_boot = \"100MB\"\n",
                  "FILE:2:17: preflight.min_free_boot: bad size '100MB' (write bytes as an integer, or a whole number "
                  "followed by B, K/KiB, M/MiB, G/GiB or T/TiB, all powers of 1024, e.g. \"512MiB\", \"1GiB\")"},
        ErrorCase{"negative_size", "[preflight]\nmin_free_root = -1\n",
                  "FILE:2:17: preflight.min_free_root: negative size -1"},
        ErrorCase{"relative_path", "[preserve]\npaths = [\"/home\",\n  \"srv\"]\n",
                  "FILE:3:3: preserve.paths: entry 2: 'srv' is not an absolute path (it must start with '/')"},
        ErrorCase{"dotdot_path", "[checks.libraries]\npaths = [\"/usr/../etc\"]\n",
                  "FILE:2:10: checks.libraries.paths: entry 1: '/usr/../etc' is not a normalized path (no '//', "
                  "'.' or '..' components)"},
        ErrorCase{"preserve_root", "[preserve]\npaths = [\"/\"]\n",
                  "FILE:2:10: preserve.paths: entry 1: '/' is not allowed here (it would cover the whole system)"},
        // A rollback restores the system; preserving part of it would carry the broken one over.
        ErrorCase{"preserve_usr", "[preserve]\npaths = [\"/srv\", \"/usr\"]\n",
                  "FILE:2:18: preserve.paths: entry 2: '/usr' is part of /usr, which a rollback restores as it was "
                  "before the upgrade (carried over, it would bring the broken system into the restored root); "
                  "preserve is for data such as /srv, /home, /var/log or /var/lib/postgresql"},
        ErrorCase{"preserve_dpkg_database", "[preserve]\npaths = [\"/var/lib/dpkg\"]\n",
                  "FILE:2:10: preserve.paths: entry 1: '/var/lib/dpkg' is part of /var/lib/dpkg, which a rollback "
                  "restores as it was before the upgrade (carried over, it would bring the broken system into the "
                  "restored root); preserve is for data such as /srv, /home, /var/log or /var/lib/postgresql"},
        ErrorCase{"preserve_parent_of_dpkg", "[preserve]\npaths = [\"/var\"]\n",
                  "FILE:2:10: preserve.paths: entry 1: '/var' holds /var/lib/dpkg, which a rollback restores as it "
                  "was before the upgrade (carried over, it would bring the broken system into the restored root); "
                  "preserve is for data such as /srv, /home, /var/log or /var/lib/postgresql"},
        ErrorCase{"preserve_under_etc", "[preserve]\npaths = [\"/etc/alternatives\"]\n",
                  "FILE:2:10: preserve.paths: entry 1: '/etc/alternatives' is part of /etc, which a rollback restores "
                  "as it was before the upgrade (carried over, it would bring the broken system into the restored "
                  "root); preserve is for data such as /srv, /home, /var/log or /var/lib/postgresql"},
        ErrorCase{"path_not_string", "[checks.critical]\npaths = [\"/bin/sh\", 4]\n",
                  "FILE:2:21: checks.critical.paths: entry 2: expected a string, got an integer"},
        ErrorCase{"empty_custom_command", "[[custom]]\nname = \"x\"\ncommand = []\n",
                  "FILE:3:11: custom[0].command: the command must not be empty (e.g. [\"/usr/sbin/nginx\", \"-t\"])"},
        ErrorCase{"relative_custom_command", "[[custom]]\nname = \"x\"\ncommand = [\"nginx\", \"-t\"]\n",
                  "FILE:3:12: custom[0].command: entry 1: the program 'nginx' is not an absolute path (it must start "
                  "with '/')"},
        ErrorCase{"custom_missing_command",
                  "[[custom]]\nname = \"ok\"\ncommand = [\"/bin/true\"]\n[[custom]]\nname = \"y\"\n",
                  "FILE:4:1: custom[1]: missing required key 'command'"},
        ErrorCase{"custom_unknown_key", "[[custom]]\nname = \"x\"\ncommand = [\"/bin/true\"]\ntimout = 5\n",
                  "FILE:4:1: custom[0].timout: unknown key (expected one of: name, command, timeout, severity)"},
        ErrorCase{"custom_duplicate_name",
                  "[[custom]]\nname = \"x\"\ncommand = [\"/bin/true\"]\n[[custom]]\nname = \"x\"\ncommand = "
                  "[\"/bin/false\"]\n",
                  "FILE:5:8: custom[1].name: a custom check named 'x' is already defined in this file"},
        ErrorCase{"negative_keep", "[snapshot]\nkeep = -1\n", "FILE:2:8: snapshot.keep: must be 0 or more, got -1"},
        ErrorCase{"bad_backend", "[snapshot]\nbackend = \"zfs\"\n",
                  "FILE:2:11: snapshot.backend: unknown backend 'zfs' (expected auto, btrfs, copy or none)"},
        ErrorCase{"checks_not_a_table", "checks = 5\n", "FILE:1:10: checks: expected a table, got an integer"},
        ErrorCase{"check_not_a_table", "checks = { symlinks = 3 }\n",
                  "FILE:1:23: checks.symlinks: expected a table, got an integer"},
        ErrorCase{"custom_not_an_array", "custom = 5\n",
                  "FILE:1:10: custom: expected an array of tables ([[custom]]), got an integer"},
        ErrorCase{"custom_entry_not_a_table", "custom = [1]\n",
                  "FILE:1:11: custom[0]: expected a table, got an integer"},
        ErrorCase{"custom_missing_name", "[[custom]]\ncommand = [\"/bin/true\"]\n",
                  "FILE:1:1: custom[0]: missing required key 'name'"},
        ErrorCase{"custom_bad_name", "[[custom]]\nname = \"a b\"\n",
                  "FILE:2:8: custom[0].name: bad name 'a b' (1 to 64 letters, digits, '-', '_' or '.')"},
        ErrorCase{"custom_bad_severity", "[[custom]]\nname = \"x\"\ncommand = [\"/bin/true\"]\nseverity = \"fatal\"\n",
                  "FILE:4:12: custom[0].severity: unknown severity 'fatal' (expected off, info, warn or block)"},
        ErrorCase{"conffiles_bad_severity", "[checks.package-hashes]\nconffiles = \"ignore\"\n",
                  "FILE:2:13: checks.package-hashes.conffiles: unknown severity 'ignore' (expected off, info, warn or "
                  "block)"},
        ErrorCase{"ignore_prefix_elsewhere", "[preserve]\npaths = [\"/srv/\"]\n",
                  "FILE:2:10: preserve.paths: entry 1: '/srv/' ends with '/': write '/srv'"},
        ErrorCase{"bad_marker", "[backup]\nmarker = \"last-backup\"\n",
                  "FILE:2:10: backup.marker: 'last-backup' is not an absolute path (it must start with '/')"},
        ErrorCase{"keep_not_integer", "[snapshot]\nkeep = \"5\"\n",
                  "FILE:2:8: snapshot.keep: expected an integer, got a string"},
        ErrorCase{"bad_unit", "[services]\nrequired = [\"nginx\"]\n",
                  "FILE:2:13: services.required: entry 1: 'nginx' is not a systemd unit name with its type suffix "
                  "(e.g. \"nginx.service\")"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

// Data next to the system trees stays preservable: /var/lib/dpkg's neighbours, /var/log, /usrdata.
TEST(PreservePaths, DataBesideTheRestoredSystemIsAccepted) {
  Policy p = default_policy();
  auto r = apply_policy_toml(p,
                             "[preserve]\npaths = [\"/srv\", \"/home\", \"/var/log\", \"/var/lib/postgresql\", "
                             "\"/var/lib/dpkg-data\", \"/usrdata\", \"/var/lib/upgrade-guard\", \"/opt/data\"]\n",
                             "/etc/upgrade-guard/policy.toml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(p.preserve.size(), 8u);
  for (const char* system : {"/", "/usr", "/usr/local", "/etc", "/boot", "/lib", "/lib64", "/bin", "/sbin", "/var",
                             "/var/lib", "/var/lib/apt", "/var/lib/dpkg/info", "/var/cache", "/var/cache/debconf"}) {
    Policy q = default_policy();
    EXPECT_FALSE(apply_policy_toml(q, "[preserve]\npaths = [\"" + std::string(system) + "\"]\n", "f.toml")) << system;
  }
}

TEST(PolicyErrorsSyntax, SyntaxErrorNamesFileLineColumn) {
  Policy p = default_policy();
  const std::string before = render_policy(p);
  auto r = apply_policy_toml(p, "on_fail = \"warn\"\n[snapshot]\nkeep = = 3\n", "/x/bad.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().path, "/x/bad.toml");
  EXPECT_EQ(r.error().message.rfind("/x/bad.toml:3:8: syntax error: ", 0), 0u) << r.error().message;
  EXPECT_GT(r.error().message.size(), std::string("/x/bad.toml:3:8: syntax error: ").size());
  EXPECT_EQ(render_policy(p), before);
  EXPECT_EQ(p.on_fail, OnFail::rollback);  // the valid first line was not applied either
}

TEST_F(ConfigDir, ErrorInALaterLayerNamesThatFileAndLoadsNothing) {
  write_file(etc("policy.toml"), "on_fail = \"warn\"\n");
  write_file(etc("policy.d/10-ok.toml"), "[snapshot]\nkeep = 1\n");
  write_file(etc("policy.d/20-bad.toml"), "# a comment\n[checks.symlinks]\nseverity = \"high\"\n");
  auto loaded = load_policy(options());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().message,
            etc("policy.d/20-bad.toml") +
                ":3:12: checks.symlinks.severity: unknown severity 'high' (expected off, info, warn or block)");
  EXPECT_EQ(loaded.error().path, etc("policy.d/20-bad.toml"));
}

// ---- permissions ----------------------------------------------------------------------------

TEST_F(ConfigDir, GroupWritablePolicyFileIsRefused) {
  write_file(etc("policy.toml"), "on_fail = \"warn\"\n", 0664);
  auto loaded = load_policy(options());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().path, etc("policy.toml"));
  EXPECT_EQ(loaded.error().message,
            etc("policy.toml") + " is writable by group or other: run chmod go-w " + etc("policy.toml"));

  LoadOptions unchecked = options();
  unchecked.check_permissions = false;
  auto relaxed = load_policy(unchecked);
  ASSERT_TRUE(relaxed) << relaxed.error().message;
  EXPECT_EQ(relaxed->on_fail, OnFail::warn);
}

TEST_F(ConfigDir, GroupWritableDropInIsRefused) {
  write_file(etc("policy.d/10-a.toml"), "on_fail = \"warn\"\n", 0620);
  auto loaded = load_policy(options());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().path, etc("policy.d/10-a.toml"));
  EXPECT_NE(loaded.error().message.find("is writable by group or other"), std::string::npos);
}

TEST_F(ConfigDir, OtherWritableDirectoriesAreRefused) {
  write_file(etc("policy.toml"), "on_fail = \"warn\"\n");
  ASSERT_EQ(::chmod(etc("policy.d").c_str(), 0757), 0);
  auto loaded = load_policy(options());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().path, etc("policy.d"));
  EXPECT_EQ(loaded.error().message,
            etc("policy.d") + " is writable by group or other: run chmod go-w " + etc("policy.d"));

  ASSERT_EQ(::chmod(etc("policy.d").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((dir_ / "etc").c_str(), 0777), 0);
  auto top = load_policy(options());
  ASSERT_FALSE(top);
  EXPECT_EQ(top.error().path, dir_ / "etc");
  EXPECT_NE(top.error().message.find("is writable by group or other"), std::string::npos);
}

TEST_F(ConfigDir, WrongOwnerIsRefused) {
  write_file(etc("policy.toml"), "on_fail = \"warn\"\n");
  const unsigned me = ::geteuid();
  EXPECT_TRUE(check_policy_permissions(etc("policy.toml"), me));
  const unsigned stranger = me + 4242;
  auto r = check_policy_permissions(etc("policy.toml"), stranger);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().path, etc("policy.toml"));
  EXPECT_EQ(r.error().message, etc("policy.toml") + " is owned by uid " + std::to_string(me) + ", not by uid " +
                                   std::to_string(stranger) + ": run chown root " + etc("policy.toml"));
  auto dir = check_policy_permissions(etc("policy.d"), stranger);
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().message.find("is owned by uid"), std::string::npos);

  ASSERT_EQ(::chmod(etc("policy.toml").c_str(), 0602), 0);
  auto writable = check_policy_permissions(etc("policy.toml"), me);
  ASSERT_FALSE(writable);
  EXPECT_NE(writable.error().message.find("is writable by group or other"), std::string::npos);
}

TEST_F(ConfigDir, FileOwnedBySomeoneElseIsRefusedByLoad) {
  if (!guard::testing::is_root()) UG_SKIP_OR_FAIL("needs root to give a file to another user");
  write_file(etc("policy.toml"), "on_fail = \"warn\"\n");
  ASSERT_EQ(::chown(etc("policy.toml").c_str(), 65534, 65534), 0);
  auto loaded = load_policy(options());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().message,
            etc("policy.toml") + " is owned by uid 65534, not by root (uid 0): run chown root " + etc("policy.toml"));
}

// ---- render ---------------------------------------------------------------------------------

TEST(Render, DefaultsRoundTrip) {
  const std::string text = render_policy(default_policy());
  Policy reloaded = default_policy();
  auto r = apply_policy_toml(reloaded, text, "shown.toml");
  ASSERT_TRUE(r) << r.error().message << "\n" << text;
  expect_same_settings(reloaded, default_policy());
  EXPECT_NE(text.find("keep = 5  # built-in\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# max_age is not set"), std::string::npos) << text;
}

// `policy show` lists every key of the table as a value line (the fields of [[custom]] once an
// entry exists, backup.max_age once set), each check's keys under its [checks.<id>], in
// known_check_ids() order.
TEST(Render, ShowsEveryKeyOfTheTable) {
  Policy p = default_policy();
  const std::string unset = render_policy(p);
  EXPECT_NE(unset.find("# max_age is not set: the backup check is not configured\n"), std::string::npos) << unset;
  ASSERT_TRUE(apply_policy_toml(p,
                                "[backup]\nmax_age = \"1d\"\n"
                                "[[custom]]\nname = \"c\"\ncommand = [\"/bin/true\"]\n",
                                "extra.toml"));
  const std::string text = render_policy(p);
  const std::vector<std::string> keys = policy_keys();
  EXPECT_EQ(keys_in(text, /*commented=*/false), std::set<std::string>(keys.begin(), keys.end())) << text;
  std::size_t last = 0;
  for (const auto& id : known_check_ids()) {
    std::size_t at = text.find("\n[checks." + id + "]\n");
    ASSERT_NE(at, std::string::npos) << id;
    EXPECT_GT(at, last) << id << " is out of known_check_ids() order";
    last = at;
  }
}

TEST_F(ConfigDir, LayeredPolicyRoundTripsWithOrigins) {
  write_file(etc("policy.toml"),
             "on_fail = \"block-reboot\"\n"
             "command_timeout = 5400\n"
             "[checks.package-hashes]\n"
             "conffiles = \"off\"\n"
             "ignore = [\"/usr/share/doc/\"]\n"
             "[services]\n"
             "required = [\"nginx.service\", \"postgresql@15-main.service\"]\n"
             "[snapshot]\n"
             "backend = \"btrfs\"\n"
             "required = true\n"
             "min_free = 1000\n"
             "keep = 2\n"
             "[preflight]\n"
             "lock_timeout = 0\n"
             "min_free_boot = \"3K\"\n"
             "[backup]\n"
             "max_age = 93600\n"
             "command = [\"/usr/local/bin/fresh\", \"--quote=\\\"x\\\"\", \"back\\\\slash\", \"tab\\there\"]\n"
             "[boot_check]\n"
             "rollback = false\n"
             "settle_timeout = \"2d\"\n"
             "[audit]\n"
             "close_gate = false\n");
  write_file(etc("policy.d/50-custom.toml"),
             "[[custom]]\n"
             "name = \"nginx-config\"\n"
             "command = [\"/usr/sbin/nginx\", \"-t\"]\n"
             "timeout = \"61s\"\n"
             "severity = \"info\"\n"
             "[checks.custom]\n"
             "severity = \"warn\"\n");
  auto loaded = load_policy(options());
  ASSERT_TRUE(loaded) << loaded.error().message;
  const std::string text = render_policy(*loaded);

  TempDir out;
  write_file(out / "shown.toml", text, 0644);
  LoadOptions again;
  again.policy_file = out / "shown.toml";
  auto reloaded = load_policy(again);
  ASSERT_TRUE(reloaded) << reloaded.error().message << "\n" << text;
  expect_same_settings(*reloaded, *loaded);
  EXPECT_EQ(reloaded->backup.command[1], "--quote=\"x\"");
  EXPECT_EQ(reloaded->backup.command[2], "back\\slash");

  // What a user reads in `policy show`: each value with where it came from.
  EXPECT_NE(text.find("keep = 2  # from " + etc("policy.toml") + ":12:8\n"), std::string::npos) << text;
  EXPECT_NE(text.find("timeout = \"61s\"  # from " + etc("policy.d/50-custom.toml") + ":4:11\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("max_age = \"26h\"  # from "), std::string::npos) << text;
  EXPECT_NE(text.find("command_timeout = \"90m\"  # from "), std::string::npos) << text;
  EXPECT_NE(text.find("min_free = \"1000B\"  # from "), std::string::npos) << text;
  EXPECT_NE(text.find("min_free_boot = \"3KiB\"  # from "), std::string::npos) << text;
  EXPECT_NE(text.find("backend = \"btrfs\"  # from "), std::string::npos) << text;
  EXPECT_NE(text.find("[audit]\nclose_gate = false  # from " + etc("policy.toml") + ":"), std::string::npos) << text;
  EXPECT_FALSE(reloaded->audit.close_gate);
  std::istringstream lines(text);
  std::string line;
  int values = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#' || line[0] == '[') continue;
    ++values;
    EXPECT_TRUE(line.find("  # built-in") != std::string::npos || line.find("  # from ") != std::string::npos)
        << "value line without its origin: " << line;
  }
  EXPECT_GT(values, 50);
}

}  // namespace
}  // namespace guard::policies
