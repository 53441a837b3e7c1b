#include "base/mount_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace guard::base {
namespace {

int g_host_namespace = -1;

bool g_children_to_host = false;

enum class Chroot { no, yes, unknown };

// Whether this process runs chrooted: its "/" is not its mount namespace's root (that of PID 1
// in the same namespaces). setns(2) into a mount namespace also resets the root directory, so a
// chrooted guard must keep its commands in its own namespace, inside its chroot. Unknown when
// PID 1's root cannot be looked at (PID 1 in another mount namespace: a container, a chroot
// inside another namespace).
Chroot chrooted() {
  struct stat self {}, init {};
  if (::stat("/", &self) != 0 || ::stat("/proc/1/root/", &init) != 0) return Chroot::unknown;
  return self.st_dev != init.st_dev || self.st_ino != init.st_ino ? Chroot::yes : Chroot::no;
}

}  // namespace

Result<void> enter_private_mount_namespace() {
  if (g_host_namespace >= 0) return {};
  // Chrooted, "/" may not be a mount point, which MS_SLAVE below needs, and setns(2) back would
  // leave the chroot: stay in the namespace we were given.
  const Chroot chroot_state = chrooted();
  if (chroot_state == Chroot::yes)
    return fail("unshare", "/", "running chrooted: staying in the current mount namespace");
  int host = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (host < 0) return fail_errno("open", "/proc/self/ns/mnt");
  // setns(2) also resets the root and working directories: kept to be put back if we return.
  int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  int cwd = ::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  auto close_all = [&] {
    for (int fd : {host, root, cwd})
      if (fd >= 0) ::close(fd);
  };
  if (root < 0 || cwd < 0) {
    int e = errno;
    close_all();
    return fail_errno("open", "/", e, "cannot hold the root directory");
  }
  if (::unshare(CLONE_NEWNS) != 0) {
    int e = errno;
    close_all();
    return fail_errno("unshare", "CLONE_NEWNS", e, "cannot enter a private mount namespace");
  }
  // Receive the host's mounts, send none back: the mounts made here stay here.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    int e = errno;
    // Back to the host's: mounts made in a copy that is not a slave would propagate there.
    // And back into the same root and working directory, which setns(2) reset.
    if (::setns(host, CLONE_NEWNS) != 0 || ::fchdir(root) != 0 || ::chroot(".") != 0 || ::fchdir(cwd) != 0) {
      std::fprintf(stderr, "upgrade-guard: cannot return to the mount namespace and root it started in\n");
      ::_exit(4);
    }
    close_all();
    return fail_errno("mount MS_SLAVE", "/", e, "cannot make the private mount namespace a slave");
  }
  g_host_namespace = host;
  // Commands go back to the host's namespace only when that cannot take them out of a chroot.
  g_children_to_host = chroot_state == Chroot::no;
  ::close(root);
  ::close(cwd);
  return {};
}

int host_mount_namespace() { return g_children_to_host ? g_host_namespace : -1; }

Result<void> unmount_in_host_namespace(const std::string& path) {
  if (host_mount_namespace() < 0) {
    if (::umount2(path.c_str(), MNT_DETACH) != 0) return fail_errno("umount2", path);
    return {};
  }
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork", path);
  if (pid == 0) {
    // Only system calls between fork and _exit: the parent may have threads.
    if (::setns(g_host_namespace, CLONE_NEWNS) != 0) ::_exit(200);
    ::_exit(::umount2(path.c_str(), MNT_DETACH) == 0 ? 0 : (errno & 0x7f));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fail_errno("waitpid", path);
  }
  if (!WIFEXITED(status)) return fail("umount2", path, "the child that unmounts in the host namespace died");
  int code = WEXITSTATUS(status);
  if (code == 200) return fail("setns", path, "cannot join the host's mount namespace");
  if (code != 0) return fail_errno("umount2", path, code, "cannot unmount it in the host's mount namespace");
  return {};
}

}  // namespace guard::base
