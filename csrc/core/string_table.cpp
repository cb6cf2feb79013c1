#include "core/string_table.h"

namespace skipnative {

StringTable::StringTable() { intern(""); }  // id 0 is the empty string

uint32_t StringTable::intern(std::string_view s) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ids_.find(s);
  if (it != ids_.end()) return it->second;
  uint32_t id = uint32_t(strings_.size());
  strings_.emplace_back(s);
  ids_.emplace(std::string_view(strings_.back()), id);
  return id;
}

std::vector<std::string> StringTable::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::vector<std::string>(strings_.begin(), strings_.end());
}

}  // namespace skipnative
