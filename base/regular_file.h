// Opening a file of a root for reading, refusing what is not a regular file.
#pragma once

#include <sys/types.h>

#include <string_view>

#include "base/error.h"
#include "base/root.h"
#include "base/unique_fd.h"

namespace guard::base {

// Opens `path` inside `root` for reading as a regular file: without blocking (O_NONBLOCK,
// O_NOCTTY), and refusing a FIFO, a device, a socket or a directory in its place with an Error
// naming the path and what it is ("is a FIFO, not a regular file"). Every reader of a file in a
// root opens it through this (or Root::read_file, which uses it), so that no planted special
// file hangs or feeds a check. e.g. open_regular(root, "/boot/initrd.img-6.1.0-18-amd64").
[[nodiscard]] Result<UniqueFd> open_regular(const Root& root, std::string_view path, Follow follow = Follow::yes);

// What a file of this st_mode is, for messages: "a FIFO", "a character device", "a directory"...
[[nodiscard]] std::string_view file_kind(mode_t mode);

}  // namespace guard::base
