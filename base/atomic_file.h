// Writing state so that a crash leaves either the old file or the new one, never a mix.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "base/error.h"

namespace guard::base {

// Writes `data` to a temporary file beside `path`, fsyncs it, renames it over `path` and
// fsyncs the directory. e.g. write_file_atomic("/var/lib/upgrade-guard/gate", "closed\n").
[[nodiscard]] Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);

// The same inside an open directory: `name` is a plain file name in `dir_fd`.
[[nodiscard]] Result<void> write_file_atomic_at(int dir_fd, const std::string& name, std::string_view data,
                                                mode_t mode = 0644, const std::string& display_path = {});

}  // namespace guard::base
