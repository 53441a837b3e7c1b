// The guard's own mount namespace: mounts it makes for itself (the btrfs top level) vanish with
// the process, however it ends, instead of staying behind in the host's mount table.
#pragma once

#include <string>

#include "base/error.h"

namespace guard::base {

// Moves this process into a mount namespace of its own, a copy of the host's that keeps
// receiving the host's mounts (MS_SLAVE) and sends none back. Must run before the process
// starts a thread (unshare(CLONE_NEWNS) is refused in a multi-threaded process), so main()
// calls it first. Commands started without a chroot go back to the host's namespace before
// exec (SystemCommandRunner), so what apt's maintainer scripts mount stays visible to the
// system. Fails without CAP_SYS_ADMIN or when the process runs chrooted (setns(2) would take
// its commands out of the chroot); the process then stays in the namespace it was given.
[[nodiscard]] Result<void> enter_private_mount_namespace();

// The host's mount namespace as an fd (O_CLOEXEC) for commands to return to, or -1 when this
// process never left it or cannot tell that it is not chrooted (the commands then stay in the
// guard's namespace, inside its root).
[[nodiscard]] int host_mount_namespace();

// Detaches (MNT_DETACH) the mount at `path` in the host's namespace, from a short-lived child
// that joins it; in this process's namespace when it never left the host's.
// e.g. unmount_in_host_namespace("/run/upgrade-guard/top").
[[nodiscard]] Result<void> unmount_in_host_namespace(const std::string& path);

}  // namespace guard::base
