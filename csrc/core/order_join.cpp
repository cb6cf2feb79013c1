#include "core/order_join.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <numeric>

#include "core/records.h"

namespace skipnative {

namespace {

// The GPU work of one call on one stream: its ops of one correlation id (a
// single kernel, copy or set, or a graph's nodes).
struct Work {
  uint64_t t_start = std::numeric_limits<uint64_t>::max();  // its first op's start
  uint64_t t_queued = 0;  // its first kernel's queued time; 0: unknown
  uint32_t correlation_id = 0;
  uint32_t device = 0, stream = 0;
  uint32_t kernels = 0, copies = 0, sets = 0;
  bool graph = false;
};

bool is_work_call(uint8_t kind, OrderRecorded r) {
  switch (ApiKind(kind)) {
    case ApiKind::kKernel:
      return r.kernels;
    case ApiKind::kGraph:
      return r.kernels || r.copies || r.sets;
    case ApiKind::kCopy:
      return r.copies;
    case ApiKind::kSet:
      return r.sets;
    default:
      return false;
  }
}

// Whether work of this shape is what a call of this kind enqueues.
bool fits(uint8_t kind, const Work& w) {
  const uint32_t n = w.kernels + w.copies + w.sets;
  switch (ApiKind(kind)) {
    case ApiKind::kKernel:
      return w.kernels == 1 && n == 1 && !w.graph;
    case ApiKind::kGraph:  // its nodes share the graph launch's correlation id
      return w.graph || n > 1;
    case ApiKind::kCopy:
      return w.copies == 1 && n == 1;
    case ApiKind::kSet:
      return w.sets == 1 && n == 1;
    default:
      return false;
  }
}

enum class Place { kBefore, kInside, kAfter, kUnknown };

// Where work lies against a call: queued before the call began (another
// call's), inside its span (its own), after it returned (a later call's); with
// no queued time, only work that started before the call began is told apart.
Place place(const Work& w, const OrderLaunch& l) {
  if (w.t_queued != 0) {
    if (w.t_queued < l.t_begin) return Place::kBefore;
    if (w.t_queued > l.t_end) return Place::kAfter;
    return Place::kInside;
  }
  return w.t_start < l.t_begin ? Place::kBefore : Place::kUnknown;
}

enum class Step { kPair, kSkipCall, kSkipWork };

// The call calls[i] against the next work `w` of its stream, which lies at `p`
// against it; calls[i + 1 .. end) follow on that stream.
Step decide(const std::vector<OrderLaunch>& launches, const std::vector<size_t>& calls, size_t i,
            size_t end, const Work& w, Place p) {
  if (p == Place::kBefore) return Step::kSkipWork;  // a call not recorded (in flight at start)
  if (p == Place::kAfter) return Step::kSkipCall;   // the call enqueued nothing recorded
  if (p == Place::kInside || fits(launches[calls[i]].kind, w)) return Step::kPair;
  // Kinds disagree and no queued time says whose the work is. The call
  // enqueued nothing recorded if a later call, one that began before the work
  // started (its own call did), is of a kind that fits it.
  for (size_t k = i + 1; k < end && launches[calls[k]].t_begin <= w.t_start; ++k)
    if (fits(launches[calls[k]].kind, w)) return Step::kSkipCall;
  return Step::kSkipWork;
}

// Pairs one stream's calls (calls[i .. i_end), by begin) with its work
// (works[j .. j_end), in the order the stream ran it).
//
// A pair whose queued time lies in its call's span and no other's is checked,
// and anchors the two sequences: between two anchors, pairs made by order and
// kind alone are exact when nothing there went unpaired (as many calls as work),
// and are counted unverified otherwise (a call or work missing there may have
// shifted them). A queued time inside two calls' spans (calls on one stream
// from several threads, overlapping) does not say which of them enqueued it.
void join_stream(const std::vector<OrderLaunch>& launches, const std::vector<size_t>& calls,
                 size_t i, size_t i_end, const std::vector<Work>& works, size_t j, size_t j_end,
                 std::vector<uint32_t>& corr, OrderJoinStats& st) {
  uint64_t by_order = 0, skipped = 0;  // since the last anchor
  uint64_t max_end_before = 0;         // the latest end of the calls before calls[i]
  auto end_segment = [&] {
    st.pairs_unverified += skipped ? by_order : 0;
    by_order = skipped = 0;
  };
  auto pass_call = [&] { max_end_before = std::max(max_end_before, launches[calls[i++]].t_end); };
  while (i < i_end && j < j_end) {
    const Place p = place(works[j], launches[calls[i]]);
    switch (decide(launches, calls, i, i_end, works[j], p)) {
      case Step::kPair: {
        corr[calls[i]] = works[j].correlation_id;
        const uint64_t n = launches[calls[i]].outside ? 0 : 1;
        st.launches_joined += n;
        const uint64_t q = works[j].t_queued;
        if (p != Place::kInside) {
          by_order += n;
        } else if (max_end_before >= q || (i + 1 < i_end && launches[calls[i + 1]].t_begin <= q)) {
          st.pairs_ambiguous += n;
        } else {
          st.pairs_checked += n;
          end_segment();
        }
        pass_call();
        ++j;
        break;
      }
      case Step::kSkipCall:
        st.launches_unjoined += launches[calls[i]].outside ? 0 : 1;
        ++skipped;
        pass_call();
        break;
      case Step::kSkipWork:
        ++st.work_unjoined;
        ++skipped;
        ++j;
        break;
    }
  }
  for (size_t k = i; k < i_end; ++k) st.launches_unjoined += launches[calls[k]].outside ? 0 : 1;
  st.work_unjoined += j_end - j;
  skipped += (i_end - i) + (j_end - j);
  end_segment();
}

bool stream_before(uint32_t da, uint32_t sa, uint32_t db, uint32_t sb) {
  return da != db ? da < db : sa < sb;
}

std::vector<Work> works_by_stream(const std::vector<OrderOp>& ops) {
  std::vector<size_t> order(ops.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const OrderOp &x = ops[a], &y = ops[b];
    if (x.device != y.device || x.stream != y.stream)
      return stream_before(x.device, x.stream, y.device, y.stream);
    if (x.correlation_id != y.correlation_id) return x.correlation_id < y.correlation_id;
    return x.t_start != y.t_start ? x.t_start < y.t_start : a < b;
  });
  std::vector<Work> works;
  for (size_t k : order) {
    const OrderOp& op = ops[k];
    if (works.empty() || works.back().device != op.device || works.back().stream != op.stream ||
        works.back().correlation_id != op.correlation_id) {
      works.emplace_back();
      works.back().device = op.device;
      works.back().stream = op.stream;
      works.back().correlation_id = op.correlation_id;
    }
    Work& w = works.back();
    if (op.t_start < w.t_start) w.t_start = op.t_start;
    if (op.kind == OpKind::kKernel && w.t_queued == 0) w.t_queued = op.t_queued;
    w.kernels += op.kind == OpKind::kKernel;
    w.copies += op.kind == OpKind::kCopy;
    w.sets += op.kind == OpKind::kSet;
    w.graph = w.graph || op.graph;
  }
  // each stream's work in the order the stream ran it
  std::sort(works.begin(), works.end(), [](const Work& x, const Work& y) {
    if (x.device != y.device || x.stream != y.stream)
      return stream_before(x.device, x.stream, y.device, y.stream);
    return x.t_start != y.t_start ? x.t_start < y.t_start : x.correlation_id < y.correlation_id;
  });
  return works;
}

}  // namespace

std::vector<uint32_t> join_by_stream_order(const std::vector<OrderLaunch>& launches,
                                           const std::vector<OrderOp>& ops, OrderRecorded recorded,
                                           OrderJoinStats* stats) {
  OrderJoinStats st;
  std::vector<uint32_t> corr(launches.size(), 0);
  const std::vector<Work> works = works_by_stream(ops);

  std::vector<size_t> calls;  // the calls that enqueue recorded work, per stream by begin
  for (size_t i = 0; i < launches.size(); ++i)
    if (launches[i].on_stream && is_work_call(launches[i].kind, recorded)) calls.push_back(i);
  std::sort(calls.begin(), calls.end(), [&](size_t a, size_t b) {
    const OrderLaunch &x = launches[a], &y = launches[b];
    if (x.device != y.device || x.stream != y.stream)
      return stream_before(x.device, x.stream, y.device, y.stream);
    return x.t_begin != y.t_begin ? x.t_begin < y.t_begin : a < b;
  });

  size_t i = 0, j = 0;
  while (i < calls.size() || j < works.size()) {
    // the next stream either side has
    const bool have_call = i < calls.size(), have_work = j < works.size();
    uint32_t dev, str;
    if (have_call &&
        (!have_work || !stream_before(works[j].device, works[j].stream, launches[calls[i]].device,
                                      launches[calls[i]].stream))) {
      dev = launches[calls[i]].device;
      str = launches[calls[i]].stream;
    } else {
      dev = works[j].device;
      str = works[j].stream;
    }
    size_t i_end = i, j_end = j;
    while (i_end < calls.size() && launches[calls[i_end]].device == dev &&
           launches[calls[i_end]].stream == str)
      ++i_end;
    while (j_end < works.size() && works[j_end].device == dev && works[j_end].stream == str)
      ++j_end;
    join_stream(launches, calls, i, i_end, works, j, j_end, corr, st);
    i = i_end;
    j = j_end;
  }
  if (stats != nullptr) *stats = st;
  return corr;
}

}  // namespace skipnative
