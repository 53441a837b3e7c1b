// Result<T> and Error: how every library function in upgrade-guard reports failure.
#pragma once

#include <cerrno>
#include <string>
#include <tl/expected.hpp>

namespace guard::base {

// What failed, where, and what a human can do about it. Library code returns it; the CLI
// prints it once. e.g. {what="openat2", path="/etc/fstab", err=ENOENT,
// message="cannot open the root's fstab"}.
struct Error {
  std::string what;     // the call or step that failed, e.g. "openat2", "policy"
  std::string path;     // the file it concerned, as the user knows it; may be empty
  int err = 0;          // errno when a system call failed, else 0
  std::string message;  // an explanation a human can act on; may be empty

  // "cannot open the root's fstab: /etc/fstab: openat2: No such file or directory"
  [[nodiscard]] std::string to_string() const;
};

template <typename T>
using Result = tl::expected<T, Error>;

// Shorthands for `return fail(...)` in functions returning Result<T>.
[[nodiscard]] inline tl::unexpected<Error> fail(Error e) { return tl::unexpected<Error>(std::move(e)); }
[[nodiscard]] inline tl::unexpected<Error> fail(std::string what, std::string path, std::string message) {
  return fail(Error{std::move(what), std::move(path), 0, std::move(message)});
}
// A failed system call: captures errno now unless given.
[[nodiscard]] inline tl::unexpected<Error> fail_errno(std::string what, std::string path, int err = errno,
                                                      std::string message = {}) {
  return fail(Error{std::move(what), std::move(path), err, std::move(message)});
}

}  // namespace guard::base
