// Record layouts: the hot-path launch record, and the rows a session hands to
// Python as numpy structured arrays (their dtypes are registered from these
// structs in bindings/register_session.cpp, so there is no second definition).
// They are not the .skip file's tables: Python converts them into the trace
// model (skipnative/trace.py), which is what .skip files store.
//
// Times: launch records hold raw clock ticks until the session converts them
// (core/clock.h); every record that leaves a session holds nanoseconds of the
// session clock.
#pragma once

#include <cstdint>

namespace skipnative {

// What a launch-callback API does; decides how the analysis treats it.
enum class ApiKind : uint8_t {
  kKernel = 0,  // single-kernel launch
  kGraph = 1,   // graph launch (many kernels, one correlation id)
  kCopy = 2,    // async memcpy
  kSet = 3,     // async memset
  kSync = 4,    // host synchronisation (stream/device/event sync, sync memcpy)
  kEvent = 5,   // event record / stream wait event (cross-stream dependencies)
  kOther = 6,
};

// Whether a call of this kind enqueues GPU work (a kernel, graph, copy or set).
inline bool enqueues_work(ApiKind k) {
  return k == ApiKind::kKernel || k == ApiKind::kGraph || k == ApiKind::kCopy || k == ApiKind::kSet;
}

// Hot-path record: written once, at the API's exit callback (24 bytes).
struct LaunchRecord {
  uint64_t t_begin;  // ticks at the enter callback
  uint64_t t_end;    // ticks at the exit callback
  uint32_t correlation_id;
  uint16_t cbid;
  uint8_t domain;  // 0 = runtime API, 1 = driver API
  uint8_t kind;    // ApiKind
};
static_assert(sizeof(LaunchRecord) == 24, "LaunchRecord is 24 bytes");

// A launch as it leaves the session (ns, with its thread).
struct LaunchRow {
  uint64_t t_begin;
  uint64_t t_end;
  uint32_t correlation_id;
  uint32_t tid;
  uint16_t cbid;
  uint8_t domain;
  uint8_t kind;
  uint32_t pad;
};
static_assert(sizeof(LaunchRow) == 32, "LaunchRow is 32 bytes");

// A kernel execution (decoded from CUPTI's kernel activity record).
struct KernelRow {
  uint64_t t_start;
  uint64_t t_end;
  uint64_t t_queued;     // 0 unless latency timestamps were enabled
  uint64_t t_submitted;  // 0 unless latency timestamps were enabled
  uint64_t graph_node_id;
  uint32_t correlation_id;
  uint32_t name_id;
  uint32_t device;
  uint32_t stream;
  uint32_t graph_id;
  int32_t grid[3];
  int32_t block[3];
  uint32_t pad;
};
static_assert(sizeof(KernelRow) == 88, "KernelRow is 88 bytes");

// A memcpy or memset execution.
struct CopyRow {
  uint64_t t_start;
  uint64_t t_end;
  uint64_t bytes;
  uint64_t graph_node_id;  // a graph's node: its id (0 otherwise)
  uint32_t correlation_id;
  uint32_t device;
  uint32_t stream;
  uint32_t graph_id;  // a graph's node: the graph's id (0 otherwise)
  uint8_t is_set;     // 0 = memcpy, 1 = memset
  uint8_t copy_kind;  // CUpti_ActivityMemcpyKind for copies
  uint16_t pad;
  uint32_t pad2;
};
static_assert(sizeof(CopyRow) == 56, "CopyRow is 56 bytes");

// A CUDA event record (kind 0) or a stream's wait for one (kind 1), from CUPTI's
// CUDA_EVENT and SYNCHRONIZATION records (capture option stream_waits): enough to
// tell which record each wait is on, so the what-if replay keeps the order.
struct EventRow {
  uint64_t sync_id;  // CUPTI's cudaEventSyncId (12.8+): joins a wait to its record; 0: none
  uint32_t correlation_id;
  uint32_t context_id;
  uint32_t stream;
  uint32_t event_id;
  uint32_t device;  // an event record's device (12.8+); UINT32_MAX: not given
  uint8_t kind;     // 0 = event record, 1 = stream wait event, 2 = stream sync, 3 = event sync
  uint8_t pad[3];
};
static_assert(sizeof(EventRow) == 32, "EventRow is 32 bytes");

// A marker from cap.mark(name).
struct MarkerRow {
  uint64_t t;
  uint32_t name_id;
  uint32_t tid;
};
static_assert(sizeof(MarkerRow) == 16, "MarkerRow is 16 bytes");

}  // namespace skipnative
