#include "checks/dpkg_version.h"

namespace guard::checks {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// dpkg's character weight in a non-digit run: '~' < end < letters < everything else.
int order(std::string_view s, std::size_t i) {
  if (i >= s.size()) return 0;
  char c = s[i];
  if (is_digit(c)) return 0;
  if (is_alpha(c)) return static_cast<unsigned char>(c);
  if (c == '~') return -1;
  return static_cast<unsigned char>(c) + 256;
}

int verrevcmp(std::string_view a, std::string_view b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    while ((i < a.size() && !is_digit(a[i])) || (j < b.size() && !is_digit(b[j]))) {
      int ac = order(a, i), bc = order(b, j);
      if (ac != bc) return ac - bc;
      ++i;
      ++j;
    }
    while (i < a.size() && a[i] == '0') ++i;
    while (j < b.size() && b[j] == '0') ++j;
    int first_diff = 0;
    while (i < a.size() && j < b.size() && is_digit(a[i]) && is_digit(b[j])) {
      if (first_diff == 0) first_diff = a[i] - b[j];
      ++i;
      ++j;
    }
    if (i < a.size() && is_digit(a[i])) return 1;
    if (j < b.size() && is_digit(b[j])) return -1;
    if (first_diff != 0) return first_diff;
  }
  return 0;
}

struct Parts {
  std::string_view epoch, upstream, revision;
};

Parts split_version(std::string_view v) {
  Parts p;
  std::size_t colon = v.find(':');
  if (colon != std::string_view::npos) {
    p.epoch = v.substr(0, colon);
    v.remove_prefix(colon + 1);
  }
  std::size_t dash = v.rfind('-');
  if (dash != std::string_view::npos) {
    p.revision = v.substr(dash + 1);
    v = v.substr(0, dash);
  }
  p.upstream = v;
  return p;
}

// The epoch compared as a number of any length: strip leading zeros, longer is larger.
int compare_epoch(std::string_view a, std::string_view b) {
  while (!a.empty() && a.front() == '0') a.remove_prefix(1);
  while (!b.empty() && b.front() == '0') b.remove_prefix(1);
  bool a_num = true, b_num = true;
  for (char c : a) a_num = a_num && is_digit(c);
  for (char c : b) b_num = b_num && is_digit(c);
  if (!a_num || !b_num) return verrevcmp(a, b);  // not a number: still a total order
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b);
}

}  // namespace

int compare_versions(std::string_view a, std::string_view b) {
  Parts pa = split_version(a), pb = split_version(b);
  if (int r = compare_epoch(pa.epoch, pb.epoch); r != 0) return r;
  if (int r = verrevcmp(pa.upstream, pb.upstream); r != 0) return r;
  return verrevcmp(pa.revision, pb.revision);
}

}  // namespace guard::checks
