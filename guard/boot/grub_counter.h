// The GRUB boot counter of a trial boot: a trial boot that never reaches boot-check (a kernel
// panic, a broken initrd) is followed by one boot of the pre-upgrade snapshot. The counter lives
// in GRUB's environment block (/boot/grub/grubenv) and packaging/grub/42_upgrade-guard reads it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/root.h"
#include "checks/grubenv.h"
#include "snapshots/backend.h"

namespace guard::boot {

// The grubenv variables the counter uses (all removed again by disarm_grub_counter):
//   ug_trial=12            a trial is pending (the trial's id)
//   ug_boots_left=1        GRUB sets it to 0 when it boots the trial; still 0 at the next boot
//                          means the trial boot never reached boot-check: boot the fallback
//   ug_fallback_uuid, ug_fallback_linux, ug_fallback_initrd, ug_fallback_rootflags:
//                          the pre-upgrade snapshot's kernel, initrd and root, for the menu
//                          entry that packaging/grub/42_upgrade-guard adds
inline constexpr std::string_view kGrubTrialVar = "ug_trial";
inline constexpr std::string_view kGrubBootsLeftVar = "ug_boots_left";
// Root-relative, where Debian keeps the block.
inline constexpr std::string_view kGrubEnvPath = "/boot/grub/grubenv";
// Root-relative, the block on the ESP (mounted at /boot/efi) of a UEFI machine whose /boot/grub
// is on btrfs, where GRUB cannot write: GRUB writes FAT in place, as Fedora kept its grubenv on
// the ESP. The GRUB script finds it with `search --file /EFI/upgrade-guard/grubenv`.
inline constexpr std::string_view kEspGrubEnvPath = "/boot/efi/EFI/upgrade-guard/grubenv";
// The menu entry id of the fallback, for `set default=`.
inline constexpr std::string_view kGrubFallbackId = "upgrade-guard-fallback";

// The pre-upgrade snapshot as GRUB boots it; paths relative to the btrfs top level, which
// is what GRUB's btrfs driver resolves. e.g. {uuid="3f1c...", linux="/@upgrade-guard/S/boot/
// vmlinuz-6.1.0-18-amd64", initrd="/@upgrade-guard/S/boot/initrd.img-6.1.0-18-amd64",
// rootflags="subvol=@upgrade-guard/S"}.
struct FallbackBoot {
  std::string fs_uuid;
  std::string linux_path;
  std::string initrd_path;
  std::string rootflags;
};

// The newest kernel version among the file names of a boot directory that has both
// vmlinuz-VER and initrd.img-VER. e.g. {"vmlinuz-6.1.0-17-amd64", "initrd.img-6.1.0-17-amd64",
// "vmlinuz-6.1.0-18-amd64"} -> "6.1.0-17-amd64" (18 has no initrd).
[[nodiscard]] std::optional<std::string> newest_bootable_kernel(const std::vector<std::string>& names);

// The fallback entry for snapshot `snapshot_id` of a btrfs layout: the kernel from the
// snapshot's own /boot, or from the copy beside it (`<id>.boot`) when /boot was a separate
// filesystem. e.g. fallback_boot("3f1c...", "20260122-101500-pre-run12", false, "6.1.0-18-amd64").
[[nodiscard]] FallbackBoot fallback_boot(const std::string& fs_uuid, const std::string& snapshot_id,
                                         bool boot_captured, const std::string& kernel_version);

// Arms the counter for trial `trial_id` in `env`, keeping every other variable.
void arm_grub_counter(checks::GrubEnv& env, std::int64_t trial_id, const FallbackBoot& fallback);
// Removes the counter's variables; false when none was there.
bool disarm_grub_counter(checks::GrubEnv& env);

// The kernel command line of the normal entries as update-grub hands it to the scripts in
// /etc/grub.d: GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT of /etc/default/grub, exported
// in the environment by grub-mkconfig (10_linux puts both on its normal entries).
// e.g. {args="console=ttyS0,115200 panic=10", default_args="quiet"}.
struct GrubCmdline {
  std::string args;          // GRUB_CMDLINE_LINUX
  std::string default_args;  // GRUB_CMDLINE_LINUX_DEFAULT
};
// The kernel parameter the fallback entry adds, naming the failed trial: boot-check on the
// fallback boot knows it is one. e.g. "upgrade-guard.fallback=12".
inline constexpr std::string_view kFallbackParam = "upgrade-guard.fallback";

// The GRUB script packaging/grub/42_upgrade-guard prints into grub.cfg (via
// `upgrade-guard boot-check --grub-script`): it counts the trial boot down and, when a trial
// boot never reached boot-check, makes the fallback entry the default for this boot. The
// fallback entry carries `cmdline` (as 10_linux puts it, before the snapshot's root= and
// rootflags=, which win) and upgrade-guard.fallback=<trial id> (boot-check on that boot rolls
// the pinned root back to the snapshot: guard/boot/boot_check.h), and its title names the trial.
[[nodiscard]] std::string render_grub_trial_script(const GrubCmdline& cmdline = {});

// Why GRUB cannot count the boots of `root` (a grub.cfg whose directory is on btrfs, where GRUB
// cannot write its environment block, and no ESP at /boot/efi to keep it on), or nullopt when it
// can or there is no GRUB.
// e.g. "GRUB cannot count boots here: /boot/grub is on btrfs, ...".
[[nodiscard]] std::optional<std::string> boot_counter_impossible(const base::Root& root);

// Where the counter's environment block is for `root`: kGrubEnvPath when /boot/grub is not on
// btrfs; kEspGrubEnvPath when it is and a FAT filesystem is mounted at /boot/efi (UEFI);
// nullopt when neither (no counter possible).
[[nodiscard]] std::optional<std::string> counter_env_path(const base::Root& root);

// Arms the root's GRUB counter for trial `trial_id`, whose rollback target is `snapshot` (its
// kernel and initrd are what the fallback boots). Returns a note saying what was done or why
// not (no grubenv, /boot/grub on btrfs, a snapshot that is not a btrfs subvolume...).
[[nodiscard]] std::string arm_grub(const base::Root& root, std::int64_t trial_id,
                                   const snapshots::SnapshotInfo& snapshot);

// Removes the counter from the root's grubenv and the ESP's; a note saying what was done ("" when
// there was nothing to disarm).
[[nodiscard]] std::string disarm_boot_counter(const base::Root& root);

}  // namespace guard::boot
