#include "checks/kernels.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/dir.h"
#include "base/regular_file.h"

namespace guard::checks {
namespace {

std::uint32_t le16(std::string_view b, std::size_t off) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(b[off])) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[off + 1])) << 8;
}
std::uint32_t le32(std::string_view b, std::size_t off) {
  return le16(b, off) | le16(b, off + 2) << 16;
}

bool is_leftover(std::string_view version) {
  return version.empty() || version.find(".dpkg-") != std::string_view::npos || version.ends_with(".bak") ||
         version.ends_with(".new") || version.ends_with(".old") || version.ends_with("~");
}

}  // namespace

base::Result<std::vector<InstalledKernel>> installed_kernels(const base::Root& root) {
  std::vector<InstalledKernel> out;
  auto names = base::list_dir(root, "/boot");
  if (!names) return base::fail(names.error());
  for (std::string_view name : *names) {
    if (!name.starts_with("vmlinuz-")) continue;
    std::string version(name.substr(8));
    if (is_leftover(version)) continue;
    std::string image = "/boot/" + std::string(name);
    auto st = root.stat(image);
    if (!st || !S_ISREG(st->st_mode)) continue;
    out.push_back(InstalledKernel{version, image});
  }
  std::sort(out.begin(), out.end(), [](const InstalledKernel& a, const InstalledKernel& b) {
    return ::strverscmp(a.version.c_str(), b.version.c_str()) < 0;
  });
  return out;
}

std::optional<std::string> bzimage_version(std::string_view head) {
  if (head.size() < 0x210 || head.substr(0x202, 4) != "HdrS") return std::nullopt;
  std::uint32_t ptr = le16(head, 0x20E);
  if (ptr == 0) return std::nullopt;
  std::size_t off = std::size_t{ptr} + 0x200;
  if (off >= head.size()) return std::nullopt;
  std::string_view s = head.substr(off, std::min<std::size_t>(256, head.size() - off));
  s = s.substr(0, s.find('\0'));
  s = s.substr(0, s.find(' '));
  if (s.empty()) return std::nullopt;
  return std::string(s);
}

std::optional<std::uint64_t> bzimage_min_size(std::string_view head) {
  if (head.size() < 0x210 || head.substr(0x202, 4) != "HdrS" || le16(head, 0x206) < 0x0204) return std::nullopt;
  std::uint64_t setup_sects = static_cast<unsigned char>(head[0x1F1]);
  if (setup_sects == 0) setup_sects = 4;
  return (setup_sects + 1) * 512 + std::uint64_t{le32(head, 0x1F4)} * 16;
}

std::optional<std::string> uki_uname(std::string_view image) {
  if (image.size() < 0x40 || image.substr(0, 2) != "MZ") return std::nullopt;
  std::size_t pe = le32(image, 0x3c);
  if (pe + 24 > image.size() || image.substr(pe, 4) != std::string_view("PE\0\0", 4)) return std::nullopt;
  std::size_t sections = le16(image, pe + 6);
  std::size_t opt_size = le16(image, pe + 20);
  std::size_t table = pe + 24 + opt_size;
  for (std::size_t i = 0; i < sections; ++i) {
    std::size_t s = table + i * 40;
    if (s + 40 > image.size()) return std::nullopt;
    std::string_view name = image.substr(s, 8);
    name = name.substr(0, name.find('\0'));
    if (name != ".uname") continue;
    std::size_t vsize = le32(image, s + 8);
    std::size_t raw_size = le32(image, s + 16);
    std::size_t raw_ptr = le32(image, s + 20);
    std::size_t len = std::min(vsize, raw_size);
    if (raw_ptr >= image.size()) return std::nullopt;
    std::string_view v = image.substr(raw_ptr, std::min(len, image.size() - raw_ptr));
    v = v.substr(0, v.find('\0'));
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
    if (v.empty()) return std::nullopt;
    return std::string(v);
  }
  return std::nullopt;
}

base::Result<std::string> read_head(const base::Root& root, std::string_view path, std::size_t max_bytes) {
  auto fd = base::open_regular(root, path);
  if (!fd) return base::fail(fd.error());
  std::string buf(max_bytes, '\0');
  std::size_t got = 0;
  while (got < max_bytes) {
    ssize_t n = ::pread(fd->get(), buf.data() + got, max_bytes - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::fail_errno("pread", std::string(path));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  buf.resize(got);
  return buf;
}

}  // namespace guard::checks
