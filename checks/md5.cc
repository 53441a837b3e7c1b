#include "checks/md5.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

namespace guard::checks {
namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// Reads, not mmap: measured on Debian 12 roots, hashing from a buffer that stays in the CPU
// cache costs ~25% less CPU than hashing freshly mapped pages (TLB misses, page-table work).
constexpr std::size_t kBufferSize = 1 << 20;

std::string to_hex(const unsigned char* digest, unsigned int len) {
  static const char* hex = "0123456789abcdef";
  std::string out(std::size_t{len} * 2, '0');
  for (std::size_t i = 0; i < len; ++i) {
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
