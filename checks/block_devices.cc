#include "checks/block_devices.h"

#include <blkid.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <memory>

namespace guard::checks {
namespace {

struct CacheDeleter {
  void operator()(blkid_struct_cache* c) const { blkid_put_cache(c); }
};
struct FreeDeleter {
  void operator()(char* p) const { ::free(p); }
};
using CharPtr = std::unique_ptr<char, FreeDeleter>;

constexpr std::string_view kTags[] = {"UUID=", "LABEL=", "PARTUUID=", "PARTLABEL="};

}  // namespace

bool is_device_spec(std::string_view spec) {
  for (auto tag : kTags)
    if (spec.starts_with(tag)) return true;
  return spec.starts_with("/dev/");
}

std::optional<std::string> resolve_device(std::string_view spec) {
  if (spec.starts_with("/dev/")) {
    struct stat st {};
    if (::stat(std::string(spec).c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return std::nullopt;
    return std::string(spec);
  }
  std::size_t eq = spec.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  std::string token(spec.substr(0, eq));
  std::string value(spec.substr(eq + 1));
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
    value = value.substr(1, value.size() - 2);
  blkid_cache raw = nullptr;
  // A private cache: never read or write the system's /run/blkid/blkid.tab.
  if (blkid_get_cache(&raw, "/dev/null") != 0) raw = nullptr;
  std::unique_ptr<blkid_struct_cache, CacheDeleter> cache(raw);
  blkid_cache c = cache.get();
  CharPtr dev(blkid_evaluate_tag(token.c_str(), value.c_str(), c != nullptr ? &c : nullptr));
  if (!dev) return std::nullopt;
  struct stat st {};
  if (::stat(dev.get(), &st) != 0 || !S_ISBLK(st.st_mode)) return std::nullopt;
  return std::string(dev.get());
}

}  // namespace guard::checks
