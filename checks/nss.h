// The nss check: every source of the glibc databases in /etc/nsswitch.conf maps to an NSS
// module, libnss_<source>.so.2, that ld.so's search finds and that loads with its whole
// dependency tree (glibc's built-in "files" and "dns" aside). glibc treats a source whose
// module does not load as UNAVAIL and moves on: the users and groups it provides vanish, so a
// broken source of passwd, group, shadow, gshadow or initgroups blocks.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "checks/check.h"
#include "checks/elf_resolver.h"

namespace guard::checks {

// One line of nsswitch.conf naming a database glibc knows. e.g. "passwd: files systemd" at
// line 7 -> {line=7, database="passwd", sources={"files", "systemd"}}. `problem` is set when
// the line's specification does not parse (glibc then ignores the file's remaining lines).
struct NssLine {
  std::size_t line = 0;
  std::string database;
  std::vector<std::string> sources;
  std::string text;     // the line without its comment, trimmed
  std::string problem;  // e.g. "unknown status \"SUCESS\" in [SUCESS=return]"
};

// Parses nsswitch.conf bytes like glibc 2.36/2.41 (nss_database.c, nss_action_parse.c).
// Lines for databases glibc does not read (sudoers, automount...) are left out: the programs
// that read them resolve those sources themselves.
[[nodiscard]] std::vector<NssLine> parse_nsswitch(std::string_view text);

// The databases whose sources hold accounts: a source lost there makes logins fail.
[[nodiscard]] bool nss_identity_database(std::string_view database);

class NssCheck final : public Check {
 public:
  [[nodiscard]] std::string_view id() const override { return "nss"; }
  [[nodiscard]] std::string_view summary() const override {
    return "nsswitch.conf sources map to NSS modules that load with all their libraries";
  }
  [[nodiscard]] base::Result<CheckOutput> run(const CheckContext& ctx) const override;
};

// The root-relative paths of the NSS modules nsswitch.conf names and ld.so's search finds.
[[nodiscard]] std::vector<std::string> nss_named_objects(const base::Root& root, LibraryResolver& resolver);

}  // namespace guard::checks
