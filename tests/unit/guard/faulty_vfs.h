// A SQLite VFS that fails the state store's commits on demand, registered as the process's
// default VFS while it lives: every database the store opens goes through it, and the store's
// code has no test branch at all. It passes everything to the real default VFS; a commit is
// counted at each sync of the database file after its rollback journal (synchronous=FULL syncs
// it once per commit; of a write-ahead log, for a database in WAL), and the journal writes of
// the commit to fail return SQLITE_IOERR_WRITE, as a full or failing disk does.
#pragma once

namespace guard::testing {

class FaultyVfs {
 public:
  FaultyVfs();
  ~FaultyVfs();
  FaultyVfs(const FaultyVfs&) = delete;
  FaultyVfs& operator=(const FaultyVfs&) = delete;

  // The `n`th commit from now fails (1 = the next one); with `and_after`, every later one too
  // (a disk that filled up), else only that one (a passing fault).
  void fail_commit(int n, bool and_after);
  // No more failures; the counters start again.
  void heal();
  // Commits that went through since the last heal() or fail_commit().
  [[nodiscard]] int commits() const;
  // True once a failure was injected.
  [[nodiscard]] bool fired() const;
};

}  // namespace guard::testing
