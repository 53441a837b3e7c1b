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
[[nodiscard]] base::Result<void> capture_boot(const std::string& boot_dir, const std::string& store,
                                              const std::string& id);

// Moves the current entries of `boot_dir` into `<boot_dir>/.upgrade-guard-replaced-<id>/`
// (never deletes them) and copies the captured files back. Safe to run again after a crash.
[[nodiscard]] base::Result<void> restore_boot(const std::string& boot_dir, const std::string& store,
                                              const std::string& id);

// Undoes restore_boot: drops the copies it made and moves the replaced entries back.
[[nodiscard]] base::Result<void> unrestore_boot(const std::string& boot_dir, const std::string& id);

// The general form: moves the entries of `target_dir` (a host path) into
// `<target_dir>/<aside>/` and copies the entries of `source_dir` in their place. Mount points
// below `target_dir` stay. Idempotent after a crash. e.g. ("/mnt/root/etc",
// "/var/lib/upgrade-guard/snapshots/<id>/etc", ".upgrade-guard-replaced-<ts>").
[[nodiscard]] base::Result<void> restore_contents(const std::string& target_dir, const std::string& source_dir,
                                                  const std::string& aside);
[[nodiscard]] base::Result<void> unrestore_contents(const std::string& target_dir, const std::string& aside);

}  // namespace guard::snapshots
