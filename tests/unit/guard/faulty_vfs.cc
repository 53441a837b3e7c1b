#include "tests/unit/guard/faulty_vfs.h"

#include <sqlite3.h>

#include <cstring>
#include <stdexcept>

namespace guard::testing {
namespace {

struct Faults {
  sqlite3_vfs* real = nullptr;
  int commits = 0;     // commits that went through (syncs of a WAL, or of the database file)
  int fail_at = 0;     // 0: none; else the commit number (commits + 1 when it is written) to fail
  bool and_after = false;
  bool fired = false;
  bool failing = false;  // the current commit's writes fail
};
Faults g;

// Our file: the real VFS's file follows it in the same allocation.
struct File {
  sqlite3_file base;
  bool wal;      // a write-ahead log: its sync is the commit
  bool journal;  // a rollback journal: written first in every commit
  bool main_db;  // the database file: with a rollback journal, its sync is the commit
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

File* self(sqlite3_file* f) { return reinterpret_cast<File*>(f); }

bool should_fail() {
  if (g.fail_at == 0) return false;
  if (g.failing) return true;
  if (g.commits + 1 >= g.fail_at && (g.and_after || g.commits + 1 == g.fail_at) && !(g.fired && !g.and_after)) {
    g.failing = true;
    g.fired = true;
    return true;
  }
  return false;
}

int x_close(sqlite3_file* f) {
  int rc = self(f)->real()->pMethods ? self(f)->real()->pMethods->xClose(self(f)->real()) : SQLITE_OK;
  return rc;
}
int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return self(f)->real()->pMethods->xRead(self(f)->real(), buf, n, off);
}
int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if ((self(f)->wal || self(f)->journal) && should_fail()) return SQLITE_IOERR_WRITE;
  return self(f)->real()->pMethods->xWrite(self(f)->real(), buf, n, off);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return self(f)->real()->pMethods->xTruncate(self(f)->real(), size);
}
int x_sync(sqlite3_file* f, int flags) {
  if (self(f)->wal || self(f)->journal) {
    if (g.failing) {
      // The commit whose writes failed never reaches its sync; if it does, fail it too.
      return SQLITE_IOERR_FSYNC;
    }
    int rc = self(f)->real()->pMethods->xSync(self(f)->real(), flags);
    if (rc == SQLITE_OK && self(f)->wal) ++g.commits;
    return rc;
  }
  int rc = self(f)->real()->pMethods->xSync(self(f)->real(), flags);
  if (rc == SQLITE_OK && self(f)->main_db) ++g.commits;
  return rc;
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return self(f)->real()->pMethods->xFileSize(self(f)->real(), size);
}
int x_lock(sqlite3_file* f, int lock) { return self(f)->real()->pMethods->xLock(self(f)->real(), lock); }
int x_unlock(sqlite3_file* f, int lock) {
  // A write transaction ends (committed or rolled back): the next one is judged afresh.
  if (!g.and_after) g.failing = false;
  return self(f)->real()->pMethods->xUnlock(self(f)->real(), lock);
}
int x_check_reserved(sqlite3_file* f, int* out) {
  return self(f)->real()->pMethods->xCheckReservedLock(self(f)->real(), out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
  return self(f)->real()->pMethods->xFileControl(self(f)->real(), op, arg);
}
int x_sector_size(sqlite3_file* f) { return self(f)->real()->pMethods->xSectorSize(self(f)->real()); }
int x_device_characteristics(sqlite3_file* f) {
  return self(f)->real()->pMethods->xDeviceCharacteristics(self(f)->real());
}
int x_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return self(f)->real()->pMethods->xShmMap(self(f)->real(), page, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  if ((flags & SQLITE_SHM_UNLOCK) && !g.and_after) g.failing = false;
  return self(f)->real()->pMethods->xShmLock(self(f)->real(), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { self(f)->real()->pMethods->xShmBarrier(self(f)->real()); }
int x_shm_unmap(sqlite3_file* f, int del) { return self(f)->real()->pMethods->xShmUnmap(self(f)->real(), del); }
int x_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return self(f)->real()->pMethods->xFetch(self(f)->real(), off, n, out);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return self(f)->real()->pMethods->xUnfetch(self(f)->real(), off, p);
}

const sqlite3_io_methods kMethods = {3,           x_close,      x_read,           x_write,
                                     x_truncate,  x_sync,       x_file_size,      x_lock,
                                     x_unlock,    x_check_reserved, x_file_control, x_sector_size,
                                     x_device_characteristics, x_shm_map, x_shm_lock, x_shm_barrier,
                                     x_shm_unmap, x_fetch,      x_unfetch};

int x_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  File* f = self(file);
  std::memset(f, 0, sizeof(File));
  int rc = g.real->xOpen(g.real, name, f->real(), flags, out_flags);
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  f->journal = (flags & SQLITE_OPEN_MAIN_JOURNAL) != 0;
  f->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
  // SQLite calls xClose even when xOpen failed, as long as pMethods is set.
  file->pMethods = f->real()->pMethods ? &kMethods : nullptr;
  (void)vfs;
  return rc;
}
int x_delete(sqlite3_vfs*, const char* name, int sync) { return g.real->xDelete(g.real, name, sync); }
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) { return g.real->xAccess(g.real, name, flags, out); }
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g.real->xFullPathname(g.real, name, n, out);
}
void* x_dl_open(sqlite3_vfs*, const char* name) { return g.real->xDlOpen(g.real, name); }
void x_dl_error(sqlite3_vfs*, int n, char* out) { g.real->xDlError(g.real, n, out); }
void (*x_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) { return g.real->xDlSym(g.real, h, sym); }
void x_dl_close(sqlite3_vfs*, void* h) { g.real->xDlClose(g.real, h); }
int x_randomness(sqlite3_vfs*, int n, char* out) { return g.real->xRandomness(g.real, n, out); }
int x_sleep(sqlite3_vfs*, int us) { return g.real->xSleep(g.real, us); }
int x_current_time(sqlite3_vfs*, double* out) { return g.real->xCurrentTime(g.real, out); }
int x_get_last_error(sqlite3_vfs*, int n, char* out) { return g.real->xGetLastError(g.real, n, out); }
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) { return g.real->xCurrentTimeInt64(g.real, out); }

sqlite3_vfs g_vfs;

}  // namespace

FaultyVfs::FaultyVfs() {
  sqlite3_initialize();
  g = Faults{};
  g.real = sqlite3_vfs_find(nullptr);
  if (g.real == nullptr) throw std::runtime_error("no default SQLite VFS");
  g_vfs = sqlite3_vfs{};
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(sizeof(File)) + g.real->szOsFile;
  g_vfs.mxPathname = g.real->mxPathname;
  g_vfs.zName = "ug-faulty";
  g_vfs.xOpen = x_open;
  g_vfs.xDelete = x_delete;
  g_vfs.xAccess = x_access;
  g_vfs.xFullPathname = x_full_pathname;
  g_vfs.xDlOpen = x_dl_open;
  g_vfs.xDlError = x_dl_error;
  g_vfs.xDlSym = x_dl_sym;
  g_vfs.xDlClose = x_dl_close;
  g_vfs.xRandomness = x_randomness;
  g_vfs.xSleep = x_sleep;
  g_vfs.xCurrentTime = x_current_time;
  g_vfs.xGetLastError = x_get_last_error;
  g_vfs.xCurrentTimeInt64 = x_current_time_int64;
  sqlite3_vfs_register(&g_vfs, 1);
}

FaultyVfs::~FaultyVfs() {
  sqlite3_vfs_unregister(&g_vfs);
  sqlite3_vfs_register(g.real, 1);
}

void FaultyVfs::fail_commit(int n, bool and_after) {
  g.commits = 0;
  g.fail_at = n;
  g.and_after = and_after;
  g.fired = false;
  g.failing = false;
}

void FaultyVfs::heal() {
  g.fail_at = 0;
  g.failing = false;
  g.commits = 0;
}

int FaultyVfs::commits() const { return g.commits; }
bool FaultyVfs::fired() const { return g.fired; }

}  // namespace guard::testing
