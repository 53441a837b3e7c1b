#include "base/mount_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace guard::base {
namespace {

int g_host_namespace = -1;

}  // namespace

Result<void> enter_private_mount_namespace() {
  if (g_host_namespace >= 0) return {};
  int host = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (host < 0) return fail_errno("open", "/proc/self/ns/mnt");
  if (::unshare(CLONE_NEWNS) != 0) {
    int e = errno;
    ::close(host);
    return fail_errno("unshare", "CLONE_NEWNS", e, "cannot enter a private mount namespace");
  }
  // Receive the host's mounts, send none back: the mounts made here stay here.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    int e = errno;
    (void)::setns(host, CLONE_NEWNS);
    ::close(host);
    return fail_errno("mount MS_SLAVE", "/", e, "cannot make the private mount namespace a slave");
  }
  g_host_namespace = host;
  return {};
}

int host_mount_namespace() { return g_host_namespace; }

Result<void> unmount_in_host_namespace(const std::string& path) {
  if (g_host_namespace < 0) {
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
