#include <unistd.h>

#include <cstdio>
#include <exception>

#include "base/mount_namespace.h"
#include "guard/cli/cli.h"

int main(int argc, char** argv) {
  // First, while the process has one thread: the mounts the guard makes for itself (the btrfs
  // top level) live in a namespace that dies with the process, so a guard killed at any
  // moment leaves none behind. Without the privilege it stays in the host's (and cannot mount).
  if (::geteuid() == 0) (void)guard::base::enter_private_mount_namespace();
  try {
    return guard::cli::run_cli(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "upgrade-guard: internal error: %s\n", e.what());
    return guard::kExitEnvironment;
  }
}
