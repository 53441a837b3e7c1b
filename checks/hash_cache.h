// The verified-hash cache of the package-hashes check: for each package file whose md5 was
// verified, the file's identity when it was (device, inode, size, mtime and ctime to the
// nanosecond). A later run that finds the same identity and expects the same md5 counts the
// file as verified without reading it. Writing a file's content changes its ctime, which no
// caller of utimensat can set back; a file replaced by another gets a new inode or ctime.
//
// The file is bound to one root: its header holds the root directory's device and inode, the
// filesystem id (statfs f_fsid) and, on btrfs, the subvolume id, so a cache written for one
// root (e.g. the subvolume that a rollback replaced) is never used for another. A file that is
// not exactly what this version writes (magic, format version, size, checksum, sorted paths)
// is ignored and rewritten, never trusted.
//
// Not used: the btrfs inode generation (FS_IOC_GETVERSION). It is the transaction that
// created the inode, not the last one that wrote it, so it adds nothing to ctime, and reading
// it costs an open and an ioctl for every file of a run that otherwise only stats them.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"

namespace guard::checks {

// What identifies a file's content without reading it.
struct FileIdentity {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::int64_t size = 0;
  std::int64_t mtime_sec = 0, mtime_nsec = 0;
  std::int64_t ctime_sec = 0, ctime_nsec = 0;

  [[nodiscard]] static FileIdentity of(const struct stat& st);
  bool operator==(const FileIdentity&) const = default;
};

// Which root a cache belongs to.
struct RootIdentity {
  std::uint64_t fsid = 0;
  std::uint64_t subvolume = 0;  // btrfs subvolume id, 0 elsewhere
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;

  [[nodiscard]] static base::Result<RootIdentity> of(const base::Root& root);
  bool operator==(const RootIdentity&) const = default;
};

struct CachedHash {
  std::string path;  // root-relative, where the file was read (e.g. a diverted location)
  std::string md5;   // 32 lowercase hex digits, as verified
  FileIdentity identity;
};

// The cache as read or to be written.
struct HashCache {
  RootIdentity root;
  std::int64_t last_deep = 0;      // unix seconds of the last run that hashed every file
  std::vector<CachedHash> entries;  // sorted by path, unique

  // The entry for `path`, or nullptr.
  [[nodiscard]] const CachedHash* find(std::string_view path) const;
};

// The format version in the header; a cache of any other version is ignored.
inline constexpr std::uint32_t kHashCacheVersion = 1;
// A bigger file is not a cache this program wrote (about 100 bytes an entry).
inline constexpr std::uint64_t kMaxHashCacheBytes = 256ULL << 20;

[[nodiscard]] std::string serialize_hash_cache(const HashCache& cache);
// Parses bytes written by serialize_hash_cache; an error saying why otherwise (bad magic,
// another format version, truncated, checksum mismatch, unsorted entries...).
[[nodiscard]] base::Result<HashCache> parse_hash_cache(std::string_view bytes);

// Reads the host file `file` (at most kMaxHashCacheBytes, a regular file, not followed if a
// symlink); ENOENT when there is none.
[[nodiscard]] base::Result<HashCache> read_hash_cache(const std::string& file);
// Writes it atomically (mode 0600).
[[nodiscard]] base::Result<void> write_hash_cache(const std::string& file, const HashCache& cache);

}  // namespace guard::checks
