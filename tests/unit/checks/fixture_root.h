// Fixture roots for the checks' unit tests: a minimal merged-/usr x86-64 root with the host's
// libc and dynamic linker copied in, ELF objects compiled at test time, and a hand-built
// ld.so.cache.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "checks/check.h"
#include "tests/common/test_env.h"

namespace guard::testing {

// Copies a host file into the fixture (following links), creating parent directories.
inline void copy_in(const std::string& host, const std::string& dest) {
  std::filesystem::create_directories(std::filesystem::path(dest).parent_path());
  std::filesystem::copy_file(std::filesystem::canonical(host), dest, std::filesystem::copy_options::overwrite_existing);
}

// A merged-/usr root: /bin -> usr/bin, /sbin -> usr/sbin, /lib -> usr/lib, /lib64 -> usr/lib64,
// with libc.so.6 and ld-linux-x86-64.so.2 in /usr/lib/x86_64-linux-gnu and the PT_INTERP
// path /lib64/ld-linux-x86-64.so.2.
inline void make_base_root(const std::string& root) {
  for (const char* d : {"usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu", "usr/lib64", "etc", "opt"})
    make_dirs(root + "/" + d);
  make_symlink("usr/bin", root + "/bin");
  make_symlink("usr/sbin", root + "/sbin");
  make_symlink("usr/lib", root + "/lib");
  make_symlink("usr/lib64", root + "/lib64");
  copy_in("/lib/x86_64-linux-gnu/libc.so.6", root + "/usr/lib/x86_64-linux-gnu/libc.so.6");
  copy_in("/lib64/ld-linux-x86-64.so.2", root + "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
  make_symlink("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", root + "/usr/lib64/ld-linux-x86-64.so.2");
}

// Compiles a shared library with `soname` into `out`; `versions` is a version script or "".
inline void build_lib(const std::string& out, const std::string& soname, const std::string& source,
                      const std::string& versions = "", std::vector<std::string> extra = {}) {
  std::vector<std::string> flags{"-shared", "-fPIC", "-Wl,-soname," + soname};
  if (!versions.empty()) {
    write_file(out + ".map", versions);
    flags.push_back("-Wl,--version-script," + out + ".map");
  }
  flags.insert(flags.end(), extra.begin(), extra.end());
  std::string log;
  ASSERT_TRUE(compile_c(source, out, flags, &log)) << log;
}

inline void build_exe(const std::string& out, const std::string& source, std::vector<std::string> flags) {
  std::string log;
  ASSERT_TRUE(compile_c(source, out, flags, &log)) << log;
}

// One entry of a hand-built cache.
struct CacheSpec {
  std::string soname;
  std::string path;
  std::int32_t flags = 0x0303;
  int hwcaps = -1;  // index into the hwcaps names, -1 for a plain entry
};

// Builds "glibc-ld.so.cache1.1" bytes (with an old "ld.so-1.7.0" header in front when `old`).
inline std::string build_cache(const std::vector<CacheSpec>& entries, const std::vector<std::string>& hwcaps = {},
                               bool old = false) {
  auto put32 = [](std::string& s, std::size_t at, std::uint32_t v) { std::memcpy(&s[at], &v, 4); };
  auto put64 = [](std::string& s, std::size_t at, std::uint64_t v) { std::memcpy(&s[at], &v, 8); };
  const std::size_t header = 48, esize = 24;
  std::string strings;
  std::size_t strings_at = header + entries.size() * esize;
  auto add_string = [&](const std::string& str) {
    std::size_t off = strings_at + strings.size();
    strings += str;
    strings.push_back('\0');
    return static_cast<std::uint32_t>(off);
  };
  std::string cache(header + entries.size() * esize, '\0');
  std::memcpy(&cache[0], "glibc-ld.so.cache1.1", 20);
  put32(cache, 20, static_cast<std::uint32_t>(entries.size()));
  cache[28] = 2;  // little endian
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::size_t e = header + i * esize;
    put32(cache, e, static_cast<std::uint32_t>(entries[i].flags));
    put32(cache, e + 4, add_string(entries[i].soname));
    put32(cache, e + 8, add_string(entries[i].path));
    if (entries[i].hwcaps >= 0) put64(cache, e + 16, (1ULL << 62) | static_cast<std::uint32_t>(entries[i].hwcaps));
  }
  std::vector<std::uint32_t> hw_offsets;
  for (const auto& h : hwcaps) hw_offsets.push_back(add_string(h));
  put32(cache, 24, static_cast<std::uint32_t>(strings.size()));
  cache += strings;
  if (!hwcaps.empty()) {
    while (cache.size() % 4 != 0) cache.push_back('\0');
    std::size_t ext = cache.size();
    put32(cache, 32, static_cast<std::uint32_t>(ext));
    cache.resize(ext + 8 + 16 + 4 * hwcaps.size(), '\0');
    put32(cache, ext, static_cast<std::uint32_t>(-358342284));
    put32(cache, ext + 4, 1);
    put32(cache, ext + 8, 1);  // tag: glibc-hwcaps
    put32(cache, ext + 16, static_cast<std::uint32_t>(ext + 24));
    put32(cache, ext + 20, static_cast<std::uint32_t>(4 * hwcaps.size()));
    for (std::size_t i = 0; i < hw_offsets.size(); ++i) put32(cache, ext + 24 + 4 * i, hw_offsets[i]);
  }
  if (!old) return cache;
  std::string prefix(16, '\0');
  std::memcpy(&prefix[0], "ld.so-1.7.0", 11);
  put32(prefix, 12, 0);
  return prefix + cache;
}

// Runs one check on `root` with a default policy.
inline std::vector<checks::Finding> run_one(const checks::Check& check, const std::string& root_dir,
                                            std::uint64_t* items = nullptr) {
  auto root = base::Root::open(root_dir);
  EXPECT_TRUE(root.has_value());
  if (!root) return {};
  policies::Policy policy;
  checks::CheckContext ctx{*root, policy, {}, nullptr, false, {}, {}, {}};
  auto out = check.run(ctx);
  EXPECT_TRUE(out.has_value()) << (out ? "" : out.error().to_string());
  if (!out) return {};
  if (items != nullptr) *items = out->items;
  return out->findings;
}

inline const checks::Finding* find_finding(const std::vector<checks::Finding>& fs, const std::string& path,
                                           const std::string& id_prefix = "") {
  for (const auto& f : fs)
    if (f.path == path && f.id.rfind(id_prefix, 0) == 0) return &f;
  return nullptr;
}

inline std::string dump(const std::vector<checks::Finding>& fs) {
  std::string out;
  for (const auto& f : fs)
    out += std::string(policies::to_string(f.severity)) + " " + f.path + " [" + f.id + "] " + f.message + "\n";
  return out;
}

inline std::size_t blocking(const std::vector<checks::Finding>& fs) {
  std::size_t n = 0;
  for (const auto& f : fs) n += f.severity == policies::Severity::block ? 1 : 0;
  return n;
}

}  // namespace guard::testing
