#include "checks/hash_cache.h"

#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "base/atomic_file.h"
#include "base/unique_fd.h"

namespace guard::checks {
namespace {

constexpr char kMagic[8] = {'U', 'G', 'H', 'A', 'S', 'H', 'C', '\n'};
constexpr std::size_t kMaxPath = 4096;

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

template <typename T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

// Reads fixed-size values off the front of a byte string, failing once it runs out.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}
  template <typename T>
  bool get(T& v) {
    if (rest_.size() < sizeof(T)) return false;
    std::memcpy(&v, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return true;
  }
  bool get_bytes(std::size_t n, std::string_view& v) {
    if (rest_.size() < n) return false;
    v = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  [[nodiscard]] std::size_t left() const { return rest_.size(); }

 private:
  std::string_view rest_;
};

base::Error bad(const std::string& why) { return base::Error{"hash cache", "", 0, why}; }

bool is_hex32(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

FileIdentity FileIdentity::of(const struct stat& st) {
  return FileIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                      static_cast<std::int64_t>(st.st_size), st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                      st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
}

base::Result<RootIdentity> RootIdentity::of(const base::Root& root) {
  RootIdentity id;
  struct stat st {};
  if (::fstat(root.fd(), &st) != 0) return base::fail_errno("fstat", root.path());
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  struct statfs sfs {};
  if (::fstatfs(root.fd(), &sfs) != 0) return base::fail_errno("fstatfs", root.path());
  std::uint32_t words[2];
  std::memcpy(words, &sfs.f_fsid, sizeof(words));
  id.fsid = (static_cast<std::uint64_t>(words[0]) << 32) | words[1];
  if (sfs.f_type == BTRFS_SUPER_MAGIC) {
    // The subvolume holding the root directory: an unprivileged lookup (tree 0, first inode).
    base::UniqueFd dir(::openat(root.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    btrfs_ioctl_ino_lookup_args args{};
    args.treeid = 0;
    args.objectid = BTRFS_FIRST_FREE_OBJECTID;
    if (dir.get() < 0 || ::ioctl(dir.get(), BTRFS_IOC_INO_LOOKUP, &args) != 0)
      return base::fail_errno("BTRFS_IOC_INO_LOOKUP", root.path());
    id.subvolume = args.treeid;
  }
  return id;
}

const CachedHash* HashCache::find(std::string_view path) const {
  auto it = std::lower_bound(entries.begin(), entries.end(), path,
                             [](const CachedHash& e, std::string_view p) { return e.path < p; });
  return it != entries.end() && it->path == path ? &*it : nullptr;
}

std::string serialize_hash_cache(const HashCache& cache) {
  std::string out;
  out.reserve(64 + cache.entries.size() * 128);
  out.append(kMagic, sizeof(kMagic));
  put<std::uint32_t>(out, kHashCacheVersion);
  put<std::uint32_t>(out, 0);
  put(out, cache.root.fsid);
  put(out, cache.root.subvolume);
  put(out, cache.root.dev);
  put(out, cache.root.ino);
  put(out, cache.last_deep);
  put<std::uint64_t>(out, cache.entries.size());
  for (const auto& e : cache.entries) {
    const FileIdentity& i = e.identity;
    for (std::int64_t v : {static_cast<std::int64_t>(i.dev), static_cast<std::int64_t>(i.ino), i.size, i.mtime_sec,
                           i.mtime_nsec, i.ctime_sec, i.ctime_nsec})
      put(out, v);
    out.append(e.md5);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(e.path.size()));
    out.append(e.path);
  }
  put(out, fnv1a(out));
  return out;
}

base::Result<HashCache> parse_hash_cache(std::string_view bytes) {
  if (bytes.size() < sizeof(kMagic) + 8 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
    return base::fail(bad("not a verified-hash cache (no magic)"));
  if (bytes.size() > kMaxHashCacheBytes) return base::fail(bad("larger than a cache this program writes"));
  std::uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - sizeof(stored), sizeof(stored));
  Reader r(bytes.substr(sizeof(kMagic), bytes.size() - sizeof(kMagic) - sizeof(stored)));
  std::uint32_t version = 0, flags = 0;
  if (!r.get(version) || version != kHashCacheVersion)
    return base::fail(bad(fmt::format("format version {}, this program reads {}", version, kHashCacheVersion)));
  if (fnv1a(bytes.substr(0, bytes.size() - sizeof(stored))) != stored)
    return base::fail(bad("checksum mismatch (truncated or damaged)"));
  HashCache c;
  std::uint64_t count = 0;
  if (!r.get(flags) || !r.get(c.root.fsid) || !r.get(c.root.subvolume) || !r.get(c.root.dev) || !r.get(c.root.ino) ||
      !r.get(c.last_deep) || !r.get(count))
    return base::fail(bad("truncated header"));
  if (count > r.left() / (7 * 8 + 32 + 4)) return base::fail(bad("more entries than bytes"));
  c.entries.reserve(count);
  for (std::uint64_t n = 0; n < count; ++n) {
    std::int64_t v[7];
    std::string_view md5, path;
    std::uint32_t len = 0;
    for (auto& x : v) {
      if (!r.get(x)) return base::fail(bad("truncated entry"));
    }
    if (!r.get_bytes(32, md5) || !is_hex32(md5) || !r.get(len) || len == 0 || len > kMaxPath ||
        !r.get_bytes(len, path) || path.front() != '/')
      return base::fail(bad(fmt::format("malformed entry {}", n + 1)));
    if (!c.entries.empty() && !(c.entries.back().path < path)) return base::fail(bad("entries not sorted"));
    c.entries.push_back(CachedHash{std::string(path), std::string(md5),
                                   FileIdentity{static_cast<std::uint64_t>(v[0]), static_cast<std::uint64_t>(v[1]),
                                                v[2], v[3], v[4], v[5], v[6]}});
  }
  if (r.left() != 0) return base::fail(bad("trailing bytes"));
  return c;
}

base::Result<HashCache> read_hash_cache(const std::string& file) {
  base::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (fd.get() < 0) return base::fail_errno("open", file);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return base::fail_errno("fstat", file);
  if (!S_ISREG(st.st_mode)) return base::fail("hash cache", file, "not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxHashCacheBytes)
    return base::fail("hash cache", file, "larger than a cache this program writes");
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::fail_errno("read", file);
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  auto parsed = parse_hash_cache(bytes);
  if (!parsed) {
    base::Error e = parsed.error();
    e.path = file;
    return base::fail(std::move(e));
  }
  return parsed;
}

base::Result<void> write_hash_cache(const std::string& file, const HashCache& cache) {
  return base::write_file_atomic(file, serialize_hash_cache(cache), 0600);
}

}  // namespace guard::checks
