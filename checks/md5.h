// MD5 of open files through OpenSSL EVP: the one file that includes OpenSSL's headers.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace guard::checks {

struct FileDigest {
  std::string md5;   // 32 lowercase hex digits
  bool elf = false;  // the file starts with "\x7fELF"
};

// Reads `fd` from its current offset to the end with 1 MiB reads into a per-thread buffer
// (not mmap: see md5.cc), with a per-thread EVP context, so it is cheap to call from many
// threads, and returns its MD5. `path` only names the file in errors,
// e.g. "/usr/lib/x86_64-linux-gnu/libc.so.6".
[[nodiscard]] base::Result<FileDigest> md5_fd(int fd, const std::string& path);

// MD5 of bytes in memory, e.g. md5_bytes("") == "d41d8cd98f00b204e9800998ecf8427e".
[[nodiscard]] std::string md5_bytes(std::string_view bytes);

}  // namespace guard::checks
