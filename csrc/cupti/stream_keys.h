// The launch side of the stream-order join (launch_records = "hook", hook_join =
// "order"; the join itself is core/order_join.h). A wrapped call hands the sink
// its stream handle; this finds which GPU stream that is, as CUPTI names it in
// activity records (device id, stream id), and returns a small key for it that
// the launch record keeps where its correlation id would be.
//
// The first call on a handle in a session asks CUPTI (cuptiGetDeviceId,
// cuptiGetStreamIdEx); later ones on this thread find the key in a small
// per-thread cache. A cached handle is asked again after a stream or context
// was destroyed (the hooks' epoch: the handle may name a new stream) and, for
// the NULL, legacy and per-thread handles, when the thread's current context
// changed. A key names one (device, stream id) for the life of the process.
#pragma once

#include <cupti.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "cupti/launch_hooks.h"

namespace skipnative {
namespace stream_keys {

constexpr uint32_t kNone = 0;               // no stream, or it could not be found
constexpr uint32_t kCaptured = 0xffffffff;  // into a stream capturing a graph: no work
constexpr uint32_t kFailed = 0xfffffffe;    // the call failed: no work
constexpr uint32_t kLastKey = 0xfffffffd;

// What a lookup calls: CUPTI's and the driver's, resolved by the session.
struct Lookup {
  CUptiResult (*stream_id)(CUcontext, CUstream, uint8_t, uint32_t*) = nullptr;
  CUptiResult (*device_id)(CUcontext, uint32_t*) = nullptr;
  CUresult (*current_context)(CUcontext*) = nullptr;
  CUresult (*stream_context)(CUstream, CUcontext*) = nullptr;
};

// Lookups may run from here on (a session starts), with these functions.
// Returns what was open before (for reopen).
const Lookup* open(const Lookup& lookup);
// No lookup asks CUPTI from the return on (before a cuptiFinalize): waits for
// those in flight (callback_state's flags).
void close();
// What open() returned: open again, or closed (the record-path benchmark
// leaves the gate as it found it).
void reopen(const Lookup* before);
// In a forked child: no lookup asks CUPTI there (nothing is in flight to wait
// for: only the forking thread exists).
void after_fork();

// The key of a GPU-work call's stream (kNone where it cannot be found).
uint32_t key(const SkipnativeHookCall& call);

// (device id, stream id) of key k at [k - 1]; a key past the end was handed
// out after this was read.
std::vector<std::pair<uint32_t, uint32_t>> table();

}  // namespace stream_keys
}  // namespace skipnative
