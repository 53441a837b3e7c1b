// /boot capture: when /boot is a separate filesystem a btrfs snapshot of the root does not
// contain it, so its files are copied beside the snapshot and put back on rollback.
#pragma once

#include <string>

#include "base/error.h"

namespace guard::snapshots {

// Copies the files of `boot_dir` (a host path, e.g. "/boot" or "/mnt/top/@/boot") to
// `<store>/<id>.boot/` and writes `<store>/<id>.boot.manifest` ("path size mtime" lines).
// A filesystem mounted below it (the ESP at /boot/efi) is left as an empty directory.
// On failure nothing is left behind.
// `suffix` names the copy: ".boot" for /boot, ".esp" for the ESP (e.g. "<id>.esp/").
[[nodiscard]] base::Result<void> capture_boot(const std::string& boot_dir, const std::string& store,
                                              const std::string& id, const std::string& suffix = ".boot");

// Moves the current entries of `boot_dir` into `<boot_dir>/.upgrade-guard-replaced-<tag>/`
// (never deletes them) and copies the captured `<store>/<id><suffix>/` back. `tag` is unique
// per rollback (its timestamp), so an earlier rollback's aside is never mistaken for this
// one's. Safe to run again after a crash.
[[nodiscard]] base::Result<void> restore_boot(const std::string& boot_dir, const std::string& store,
                                              const std::string& id, const std::string& suffix, const std::string& tag);

// Undoes restore_boot: drops the copies it made and moves the replaced entries back. Does
// nothing when restore_boot never started (no aside directory).
[[nodiscard]] base::Result<void> unrestore_boot(const std::string& boot_dir, const std::string& tag);

// The general form: moves the entries of `target_dir` (a host path) into
// `<target_dir>/<aside>/` and copies the entries of `source_dir` in their place. Mount points
// below `target_dir` stay. Idempotent after a crash. e.g. ("/mnt/root/etc",
// "/var/lib/upgrade-guard/snapshots/<id>/etc", ".upgrade-guard-replaced-<ts>").
[[nodiscard]] base::Result<void> restore_contents(const std::string& target_dir, const std::string& source_dir,
                                                  const std::string& aside);
[[nodiscard]] base::Result<void> unrestore_contents(const std::string& target_dir, const std::string& aside);

}  // namespace guard::snapshots
