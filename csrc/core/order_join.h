// Joining launch calls to their GPU work without a shared id, by the order in
// which each stream runs it (launch_records = "hook", hook_join = "order": the
// launch hooks take no CUPTI callback and make CUPTI write no API record, so no
// correlation id reaches the launch side).
//
// What makes it exact: a stream runs its work in the order it was enqueued, and
// a launch call enqueues its work while it runs. Per (device, stream), the
// calls sorted by begin and the GPU work sorted by start are the same sequence,
// once the calls that enqueued nothing recorded (a stream capturing into a
// graph, an activity kind not enabled) and the work of calls not recorded (in
// flight across the capture's start) are left out. Where a kernel carries its
// queued timestamp (CUPTI latency timestamps), the time it entered the command
// buffer, that time lies inside its own launch call's span and no other call's
// of that stream (all 53,508 such kernels of the H100 and H200 .skip files in
// bench/results, by at least 0.8 us from either end): each pair is then
// checked, and work queued before a call began, or a call that returned before
// the work was queued, is told apart from a pair. Without it (graph kernels,
// copies and sets have none), pairs follow from order and kind alone.
#pragma once

#include <cstdint>
#include <vector>

namespace skipnative {

// A launch call: its span (ns) and ApiKind, and the stream it enqueued on.
struct OrderLaunch {
  uint64_t t_begin = 0;
  uint64_t t_end = 0;
  uint32_t device = 0;
  uint32_t stream = 0;
  uint8_t kind = 0;        // ApiKind (core/records.h)
  bool on_stream = false;  // device and stream known (a GPU-work call whose stream was found)
  // Outside the capture (made after its stop, and left out with its work once
  // joined): joined like any call, so its work pairs with it and not with a
  // neighbour, but not counted in OrderJoinStats.
  bool outside = false;
};

enum class OpKind : uint8_t { kKernel = 0, kCopy = 1, kSet = 2 };

// One GPU activity record.
struct OrderOp {
  uint64_t t_start = 0;
  uint64_t t_queued = 0;  // 0: unknown
  uint32_t correlation_id = 0;
  uint32_t device = 0;
  uint32_t stream = 0;
  OpKind kind = OpKind::kKernel;
  bool graph = false;  // a graph's node (kernels: graph id != 0)
};

// Which GPU activity kinds were recorded: a call whose work kind was not is
// left out of the join (it has nothing to pair with).
struct OrderRecorded {
  bool kernels = true;
  bool copies = true;
  bool sets = true;
};

// Of the calls not outside, and of all the work.
struct OrderJoinStats {
  uint64_t launches_joined = 0;
  uint64_t launches_unjoined = 0;  // GPU-work calls on a known stream left without work
  uint64_t work_unjoined = 0;      // units of GPU work (one per correlation id) left without a call
  // Of the pairs: those whose queued time lies in their call's span and no
  // other's (checked); in two calls' spans at once (ambiguous: calls on one
  // stream from several threads, overlapping); made by order and kind alone
  // where a call or work near them went unpaired (unverified). The rest are
  // made by order and kind with as many calls as work around them.
  uint64_t pairs_checked = 0;
  uint64_t pairs_ambiguous = 0;
  uint64_t pairs_unverified = 0;
};

// The correlation id of each launch's GPU work (0: none), in `launches` order.
std::vector<uint32_t> join_by_stream_order(const std::vector<OrderLaunch>& launches,
                                           const std::vector<OrderOp>& ops, OrderRecorded recorded,
                                           OrderJoinStats* stats);

}  // namespace skipnative
