// Parsers for dpkg's database files. Each takes the file's bytes (never a path), so it can be
// unit-tested and fuzzed; none crashes on any input, and errors name the 1-based line.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace guard::checks {

// The three words of a Status field: "want flag state", e.g. "install ok installed".
enum class Want { unknown, install, hold, deinstall, purge };
enum class DpkgFlag { ok, reinstreq };
enum class DpkgState {
  not_installed,
  config_files,
  half_installed,
  unpacked,
  half_configured,
  triggers_awaited,
  triggers_pending,
  installed,
};

// dpkg's own spelling, e.g. "half-configured".
[[nodiscard]] const char* to_string(DpkgState s);
[[nodiscard]] const char* to_string(Want w);
// True for states whose files are on disk as far as dpkg knows (unpacked and later).
[[nodiscard]] bool has_files(DpkgState s);

// One line of a Conffiles field: " /etc/ssh/sshd_config 1a2b... [obsolete] [remove-on-upgrade]".
// md5 is "newconffile" while a new conffile is unpacked but not yet configured.
struct Conffile {
  std::string path;
  std::string md5;
  bool obsolete = false;
  bool remove_on_upgrade = false;
};

// One paragraph of /var/lib/dpkg/status.
struct PackageRecord {
  std::string name;          // "libc6"
  std::string architecture;  // "amd64", "all"; may be empty for not-installed stubs
  std::string multi_arch;    // "same", "foreign", "allowed" or empty
  std::string version;       // "2.36-9+deb12u4"; empty when not installed
  Want want = Want::unknown;
  DpkgFlag flag = DpkgFlag::ok;
  DpkgState state = DpkgState::not_installed;
  std::vector<Conffile> conffiles;
  std::size_t line = 0;  // line of the paragraph's first field

  // The name dpkg and this tool use for the package: "pkg:arch" for Multi-Arch: same
  // packages (also their info files' stem, e.g. info/libc6:amd64.list), "pkg" otherwise.
  [[nodiscard]] std::string key() const;
};

// Which status-format file is read: dpkg's database (/var/lib/dpkg/status), which dpkg ends
// with a blank line after every stanza, or an entry of its updates journal
// (/var/lib/dpkg/updates/0001), which has no blank line after its stanza.
enum class StatusFile { database, journal };

// Parses a dpkg status file strictly: what dpkg refuses to read is an error, so that a damaged
// database is never taken for a shorter valid one. `origin` names the file in errors, e.g.
// "/var/lib/dpkg/status"; the message starts with "ORIGIN:LINE: ". Refused (dpkg's rules of
// lib/dpkg/parse.c, parsehelp.c and fields.c, in the subset that matters here):
// - a NUL byte; a last line without a newline (the file ends inside a field); for a
//   database, a last stanza without the blank line after it (cut at a line end);
// - a line that is not "Field: value" (no colon, empty or one-letter field name), a line of
//   only blanks, a continuation line before any field, a field given twice in a stanza;
// - a stanza without Package (or with an invalid package name) or Status; a Status that is not
//   "want flag state" of dpkg's words; no Version for a package past half-installed, or an
//   invalid Version (empty part, embedded blank, bad epoch); no Architecture for a package
//   with files on disk (dpkg only warns, but has always written it since 1.16); Multi-Arch:
//   same with Architecture: all; Config-Version with Status installed or not-installed;
//   Triggers-Pending/-Awaited that disagree with the state; a malformed Conffiles line;
// - a second stanza for the same package and architecture.
// Linear in the input; at most 512 fields a stanza.
[[nodiscard]] base::Result<std::vector<PackageRecord>> parse_status(std::string_view bytes,
                                                                    std::string_view origin = "status",
                                                                    StatusFile kind = StatusFile::database);

// One diversion: files named `from` of every package except `package` live at `to`.
// `package` is ":" for a local diversion (dpkg-divert --local), which diverts every package.
// e.g. {from="/bin/sh", to="/bin/sh.distrib", package="dash"}.
struct Diversion {
  std::string from;
  std::string to;
  std::string package;
};

// Parses /var/lib/dpkg/diversions: triples of lines (from, to, package).
[[nodiscard]] base::Result<std::vector<Diversion>> parse_diversions(std::string_view bytes,
                                                                    std::string_view origin = "diversions");

// dpkg's path filters (path-exclude= / path-include= options), in the order read.
// A path is excluded when the last filter whose glob matches it (fnmatch, no flags: '*'
// crosses '/') is an exclude. e.g. exclude "/usr/share/doc/*", include "/usr/share/doc/*/copyright".
class PathFilter {
 public:
  // Adds the filters of one dpkg config file (dpkg.cfg syntax: "option[=| ]value", '#' comments).
  void add_config(std::string_view bytes);
  void add(bool include, std::string pattern);
  // True when dpkg did not unpack `path` (absolute, e.g. "/usr/share/doc/bash/README").
  [[nodiscard]] bool excluded(const std::string& path) const;
  [[nodiscard]] bool empty() const { return filters_.empty(); }

 private:
  struct Filter {
    bool include;
    std::string pattern;
  };
  std::vector<Filter> filters_;
};

// True when dpkg reads a file of this name from a .d config dir (letters, digits, '_', '-'),
// e.g. "docker-apt-speedup" yes, "excludes.conf" or ".hidden" no.
[[nodiscard]] bool is_dpkg_config_name(std::string_view name);

// Parses an info/<pkg>.list file: one absolute path per line; the leading "/." entry becomes
// "/"-less (dropped). Never fails; empty lines are skipped.
[[nodiscard]] std::vector<std::string> parse_list(std::string_view bytes);

// One line of an info/<pkg>.md5sums file: "<32 hex>  usr/bin/bash" -> {md5, "/usr/bin/bash"}.
struct Md5Entry {
  std::string md5;
  std::string path;  // absolute, with the leading '/' added
};

// Parses an md5sums file; an error names the first malformed line.
[[nodiscard]] base::Result<std::vector<Md5Entry>> parse_md5sums(std::string_view bytes,
                                                                std::string_view origin = "md5sums");

}  // namespace guard::checks
