// What stop() keeps of a session's rows: the launch calls made in its window,
// joined to their GPU work, and that work; calls outside the window are left
// out with their GPU work (counted).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/order_join.h"
#include "cupti/api_table.h"
#include "cupti/callback_state.h"
#include "cupti/session.h"
#include "cupti/stream_keys.h"

namespace skipnative {

namespace {

// LaunchRow::pad, until the rows leave: a valid call made outside the window.
// It is joined with the others (its GPU work pairs with it, not with the next
// call on its stream), then left out with that work.
constexpr uint32_t kOutside = 1;

// Removes the rows whose correlation id is in `ids` (sorted); returns how many.
template <class Row>
uint64_t erase_correlated(std::vector<Row>& rows, const std::vector<uint32_t>& ids) {
  const size_t before = rows.size();
  rows.erase(std::remove_if(rows.begin(), rows.end(),
                            [&](const Row& r) {
                              return r.correlation_id != 0 &&
                                     std::binary_search(ids.begin(), ids.end(), r.correlation_id);
                            }),
             rows.end());
  return before - rows.size();
}

}  // namespace

void Session::collect_launches() {
  stats_.launches_dropped = launch_buffers_->dropped() + api_rows_dropped_;
  stats_.records_unallocated += launch_buffers_->unallocated();
  stats_.records_unallocated += callback_state::records_without_flag.load() - flagless_at_start_;
  launches_.clear();
  size_t total = 0;
  launch_buffers_->for_each([&](uint32_t, const LaunchRecord*, uint32_t n) { total += n; });
  launches_.reserve(total);  // exact: no doubling on the way to millions of rows
  const bool order = source_ == LaunchRecords::kHook && opts_.hook_join == HookJoin::kOrder;
  launch_buffers_->for_each([&](uint32_t tid, const LaunchRecord* r, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) {
      const bool before = r[i].t_begin < start_ticks_;
      // No valid timestamps: nothing to join it by. Nor, for the order join, a
      // call already running at start: its work may not be recorded here (an
      // earlier session's), and first in its stream's order it would take the
      // work of the next call, a kept one.
      if (r[i].t_begin > r[i].t_end || (before && order)) {
        ++stats_.launches_outside;
        continue;
      }
      const bool outside = before || r[i].t_begin > stop_ticks_;
      uint32_t corr = r[i].correlation_id;
      if (source_ == LaunchRecords::kHook && opts_.hook_join == HookJoin::kExternal) {
        // an external id until here
        auto it = external_.find(corr);
        corr = it == external_.end() ? 0 : it->second;
        if (corr == 0 && !outside) ++stats_.launches_unjoined;
      }
      launches_.push_back(LaunchRow{ticks_to_ns(clock_, r[i].t_begin),
                                    ticks_to_ns(clock_, r[i].t_end), corr, tid, r[i].cbid,
                                    r[i].domain, r[i].kind, outside ? kOutside : 0});
    }
  });
  external_.clear();
  if (order) join_by_order();
  append_api_rows();
  drop_outside();
  std::sort(launches_.begin(), launches_.end(), [](const LaunchRow& a, const LaunchRow& b) {
    return a.t_begin != b.t_begin ? a.t_begin < b.t_begin : a.correlation_id < b.correlation_id;
  });
}

void Session::append_api_rows() {
  // A runtime launch calls a driver launch inside it: as with the callbacks
  // (which skip nested calls), the outer call is the launch. Per thread, drop
  // a row that lies within an earlier row's span.
  std::sort(api_rows_.begin(), api_rows_.end(), [](const LaunchRow& a, const LaunchRow& b) {
    if (a.tid != b.tid) return a.tid < b.tid;
    return a.t_begin != b.t_begin ? a.t_begin < b.t_begin : a.t_end > b.t_end;
  });
  uint32_t tid = 0;
  uint64_t outer_end = 0;
  bool have = false;
  for (LaunchRow r : api_rows_) {
    if (r.t_begin > r.t_end) {
      ++stats_.launches_outside;
      continue;
    }
    if (have && r.tid == tid && r.t_end <= outer_end) continue;  // nested
    r.pad = r.t_begin < t_start_ns_ || r.t_begin > t_stop_ns_ ? kOutside : 0;
    launches_.push_back(r);
    tid = r.tid;
    outer_end = r.t_end;
    have = true;
  }
  api_rows_.clear();
}

// One rule for both ends of the window: a call that began before start() or
// after stop() was called is not part of the capture, and neither is the GPU
// work it launched. (Another thread's calls go on being recorded while stop()
// flushes; a call already running at start() began in no session's window.)
void Session::drop_outside() {
  std::vector<uint32_t> ids;
  size_t kept = 0;
  for (LaunchRow& r : launches_) {
    if (r.pad == kOutside) {
      ++stats_.launches_outside;
      if (r.correlation_id != 0) ids.push_back(r.correlation_id);
      continue;
    }
    launches_[kept++] = r;
  }
  launches_.resize(kept);
  if (ids.empty()) return;
  std::sort(ids.begin(), ids.end());
  // Correlation ids are unique per call within a process, so a row left out
  // here belongs to no call kept.
  stats_.gpu_rows_outside += erase_correlated(kernels_, ids);
  stats_.gpu_rows_outside += erase_correlated(copies_, ids);
  stats_.gpu_rows_outside += erase_correlated(events_, ids);
}

namespace {

// A kernel, copy or set row as the order join sees it.
template <class Row>
OrderOp order_op(const Row& r, OpKind kind, uint64_t t_queued) {
  OrderOp o;
  o.t_start = r.t_start;
  o.t_queued = t_queued;
  o.correlation_id = r.correlation_id;
  o.device = r.device;
  o.stream = r.stream;
  o.kind = kind;
  o.graph = r.graph_id != 0;
  return o;
}

}  // namespace

// hook_join = "order": the launch rows hold their stream's key until here
// (cupti/stream_keys.h); each gets the correlation id of the GPU work its
// stream's order pairs it with (core/order_join.h).
void Session::join_by_order() {
  const auto streams = stream_keys::table();
  std::vector<OrderLaunch> calls(launches_.size());
  for (size_t i = 0; i < launches_.size(); ++i) {
    const LaunchRow& r = launches_[i];
    OrderLaunch& l = calls[i];
    l.t_begin = r.t_begin;
    l.t_end = r.t_end;
    l.kind = r.kind;
    l.outside = r.pad == kOutside;
    const uint32_t key = r.correlation_id;
    const uint64_t n = l.outside ? 0 : 1;  // counted: a call of the capture's
    if (key == stream_keys::kCaptured) {
      stats_.launches_captured += n;
    } else if (key == stream_keys::kFailed) {
      stats_.launches_failed += n;
    } else if (key != stream_keys::kNone && key <= streams.size()) {
      l.on_stream = true;
      l.device = streams[key - 1].first;
      l.stream = streams[key - 1].second;
    } else if (enqueues_work(ApiKind(r.kind))) {
      stats_.launches_unjoined += n;  // a GPU-work call whose stream was not found
    }
  }
  std::vector<OrderOp> ops;
  ops.reserve(kernels_.size() + copies_.size());
  for (const KernelRow& k : kernels_) ops.push_back(order_op(k, OpKind::kKernel, k.t_queued));
  for (const CopyRow& c : copies_)
    ops.push_back(order_op(c, c.is_set ? OpKind::kSet : OpKind::kCopy, 0));
  OrderJoinStats st;
  const std::vector<uint32_t> corr = join_by_stream_order(
      calls, ops, OrderRecorded{opts_.kernel_activity, opts_.memcpy, opts_.memset}, &st);
  for (size_t i = 0; i < launches_.size(); ++i) launches_[i].correlation_id = corr[i];
  stats_.launches_unjoined += st.launches_unjoined;
  stats_.work_unjoined = st.work_unjoined;
  stats_.pairs_checked = st.pairs_checked;
  stats_.pairs_ambiguous = st.pairs_ambiguous;
  stats_.pairs_unverified = st.pairs_unverified;
}

}  // namespace skipnative
