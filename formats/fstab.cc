#include "formats/fstab.h"

namespace guard::formats {

const MountEntry* Fstab::find_target(std::string_view target) const {
  const MountEntry* found = nullptr;
  for (const auto& e : entries)
    if (e.target == target) found = &e;
  return found;
}

std::optional<std::string> Fstab::root_uuid() const {
  const MountEntry* root = find_target("/");
  if (root == nullptr) return std::nullopt;
  return source_tag(root->source, "UUID");
}

base::Result<Fstab> parse_fstab(std::string_view bytes) {
  auto table = MountTable::parse_fstab(bytes);
  if (!table) return base::fail(table.error());
  return Fstab{table->entries(), table->bad_lines()};
}

std::optional<std::string> source_tag(std::string_view source, std::string_view tag) {
  if (source.size() <= tag.size() || source.substr(0, tag.size()) != tag || source[tag.size()] != '=')
    return std::nullopt;
  std::string_view value = source.substr(tag.size() + 1);
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
    value = value.substr(1, value.size() - 2);
  if (value.empty()) return std::nullopt;
  return std::string(value);
}

}  // namespace guard::formats
