// The CUDA APIs a session subscribes to (by cbid, never whole domains), their
// names, and what each does (core/records.h ApiKind).
#pragma once

#include <cstdint>
#include <vector>

#include "core/records.h"

namespace skipnative {

struct ApiInfo {
  uint8_t domain;  // 0 = runtime, 1 = driver
  uint16_t cbid;
  ApiKind kind;
  const char* name;
};

const std::vector<ApiInfo>& subscribed_apis();

// ApiKind of (domain, cbid) for the hot path; kOther when not in the table.
class ApiKindTable {
 public:
  ApiKindTable();
  inline uint8_t kind(uint8_t domain, uint32_t cbid) const {
    const auto& t = table_[domain & 1];
    return cbid < t.size() ? t[cbid] : uint8_t(ApiKind::kOther);
  }

 private:
  std::vector<uint8_t> table_[2];
};

const ApiKindTable& api_kind_table();

}  // namespace skipnative
