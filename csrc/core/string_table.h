// Interned strings (kernel names, marker names). Rows carry uint32 ids; the
// table crosses into Python once, as a list. Thread-safe: interning happens on
// CUPTI's buffer-completion thread and from Python (markers), never on the
// launch hot path.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace skipnative {

class StringTable {
 public:
  StringTable();
  uint32_t intern(std::string_view s);
  std::vector<std::string> snapshot() const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> strings_;
  std::unordered_map<std::string, uint32_t> ids_;
};

}  // namespace skipnative
