// Interned strings (kernel, op and marker names). Rows carry uint32 ids; the
// table crosses into Python once, as a list. Thread-safe: interning happens on
// CUPTI's buffer-completion thread, in the trace reader and from Python
// (markers), never on the launch hot path.
#pragma once

#include <cstdint>
#include <deque>
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

 private:
  mutable std::mutex mu_;
  std::deque<std::string> strings_;  // stable storage: the map's keys view into it
  std::unordered_map<std::string_view, uint32_t> ids_;
};

}  // namespace skipnative
