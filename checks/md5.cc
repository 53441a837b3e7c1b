#include "checks/md5.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

namespace guard::checks {
namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

constexpr std::size_t kBufferSize = 1 << 20;
constexpr std::size_t kMapThreshold = 256 << 10;
constexpr std::size_t kMapWindow = 8 << 20;  // a multiple of the page size

std::string to_hex(const unsigned char* digest, unsigned int len) {
  static const char* hex = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace

base::Result<FileDigest> md5_fd(int fd, const std::string& path) {
  thread_local MdCtxPtr ctx(EVP_MD_CTX_new());
  thread_local std::vector<unsigned char> buffer(kBufferSize);
  if (!ctx) return base::fail("EVP_MD_CTX_new", path, "OpenSSL could not allocate a digest context");
  if (EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1)
    return base::fail("EVP_DigestInit_ex", path, "OpenSSL has no MD5 digest");
  FileDigest out;
  // Large files are mapped window by window rather than copied through the buffer: less
  // system time, and at most one window resident per thread.
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= static_cast<off_t>(kMapThreshold) &&
      ::lseek(fd, 0, SEEK_CUR) == 0) {
    auto size = static_cast<std::size_t>(st.st_size);
    bool mapped = true;
    for (std::size_t offset = 0; offset < size && mapped; offset += kMapWindow) {
      std::size_t len = std::min(kMapWindow, size - offset);
      void* map = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, static_cast<off_t>(offset));
      if (map == MAP_FAILED) {
        if (offset != 0) return base::fail_errno("mmap", path);
        mapped = false;  // e.g. a filesystem without mmap: read it instead
        break;
      }
      const auto* bytes = static_cast<const unsigned char*>(map);
      if (offset == 0) out.elf = len >= 4 && std::memcmp(bytes, "\x7f" "ELF", 4) == 0;
      int ok = EVP_DigestUpdate(ctx.get(), bytes, len);
      ::munmap(map, len);
      if (ok != 1) return base::fail("EVP_DigestUpdate", path, "MD5 update failed");
    }
    if (mapped) {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) return base::fail("EVP_DigestFinal_ex", path, "MD5 failed");
      out.md5 = to_hex(digest, len);
      return out;
    }
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  bool first = true;
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::fail_errno("read", path);
    }
    if (n == 0) break;
    if (first) {
      out.elf = n >= 4 && std::memcmp(buffer.data(), "\x7f" "ELF", 4) == 0;
      first = false;
    }
    if (EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(n)) != 1)
      return base::fail("EVP_DigestUpdate", path, "MD5 update failed");
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) return base::fail("EVP_DigestFinal_ex", path, "MD5 failed");
  out.md5 = to_hex(digest, len);
  return out;
}

std::string md5_bytes(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_md5(), nullptr);
  return to_hex(digest, len);
}

}  // namespace guard::checks
