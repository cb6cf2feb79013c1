// Decodes CUPTI activity buffers into skipnative rows. Layouts differ between
// CUPTI versions, so the record structs are chosen by the version found at run
// time: CUDA 13.x (API version >= 130000) writes Kernel10 / Memcpy6, CUDA 12.x
// writes Kernel9 / Memcpy5; both write Memset4.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/records.h"
#include "core/string_table.h"
#include "cupti/loader.h"

namespace skipnative {

enum class RecordLayout : uint8_t { kCuda12 = 12, kCuda13 = 13 };

// The layout for a CUPTI API version; throws for versions before CUDA 12.
RecordLayout layout_for_version(uint32_t version);

// CUPTI's overhead records (CUPTI_ACTIVITY_KIND_OVERHEAD) of one kind, summed.
struct OverheadTotal {
  uint64_t count = 0;
  uint64_t ns = 0;  // end - start, where CUPTI timed it
};
using OverheadTotals = std::map<uint32_t, OverheadTotal>;  // CUpti_ActivityOverheadKind ->

// CUPTI's name of an overhead kind ("CUPTI_INSTRUMENTATION", ...; "KIND_<n>" unknown).
std::string overhead_kind_name(uint32_t kind);

struct DecodeTarget {
  std::vector<KernelRow>* kernels;
  std::vector<CopyRow>* copies;
  StringTable* names;
  size_t max_rows;            // cap on kernels + copies kept
  uint64_t* rows_dropped;     // rows over the cap
  uint64_t* records_ignored;  // other activity kinds
  std::unordered_map<const char*, std::pair<uint32_t, std::string>>* name_cache;
  // Launch rows from CUPTI's API activity records (launch_records = activity);
  // nullptr: such records are ignored.
  std::vector<LaunchRow>* api_rows = nullptr;
  size_t max_api_rows = 0;  // rows beyond it are counted, not kept
  uint64_t* api_rows_dropped = nullptr;
  // External correlation records (launch_records = hook): external id ->
  // CUPTI's correlation id; nullptr: ignored.
  std::unordered_map<uint32_t, uint32_t>* external = nullptr;
  // CUPTI's overhead records, summed by kind; nullptr: ignored.
  OverheadTotals* overhead = nullptr;
  // GPU records delivered unfinished (a forced flush at stop: no end yet),
  // counted, not kept; nullptr: not counted.
  uint64_t* rows_incomplete = nullptr;
  // Records whose row could not be stored for want of memory; nullptr: counted
  // as over the cap (rows_dropped, api_rows_dropped).
  uint64_t* rows_unallocated = nullptr;
  // Event records and stream waits (capture option stream_waits), counted
  // against max_rows with the kernels and copies; nullptr: ignored.
  std::vector<EventRow>* events = nullptr;
  // Whether CUPTI writes CudaEvent2 / Synchronization2 (12.8 and newer, with
  // cudaEventSyncId and the event's device); older ones write their prefix.
  bool event_sync_ids = false;
};

// The number of records in a buffer (one not decoded: its records are counted;
// what CUPTI allocated for them is freed).
uint64_t count_records(const CuptiApi& api, uint8_t* buffer, size_t valid);

// Walks one completed buffer.
void decode_buffer(const CuptiApi& api, RecordLayout layout, uint8_t* buffer, size_t valid,
                   DecodeTarget& out);

}  // namespace skipnative
