// The native core's own unit tests: clock and buffers, no CUDA headers. Built
// with -DSKIPNATIVE_CORE_TESTS=ON, or directly with a cross compiler:
//   aarch64-linux-gnu-g++ -std=c++17 -O2 -Icsrc csrc/core/*.cpp tests/native/core_tests.cpp
// and run under qemu-aarch64 in CI.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "core/alloc_fault.h"
#include "core/clock.h"
#include "core/order_join.h"
#include "core/records.h"
#include "core/string_table.h"
#include "core/thread_buffers.h"

using namespace skipnative;

static void test_clock(const char* kind) {
  ClockParams p = make_clock(kind, nullptr);
  // Monotonic in program order, across many reads.
  uint64_t prev = ticks_to_ns(p, read_ticks(p));
  bool monotonic = true;
  for (int i = 0; i < 1000000; ++i) {
    uint64_t t = ticks_to_ns(p, read_ticks(p));
    if (t < prev) monotonic = false;
    prev = t;
  }
  CHECK(monotonic);
  // Agrees with CLOCK_MONOTONIC_RAW in rate: over ~50 ms, within 0.5%.
  uint64_t a_ns = ticks_to_ns(p, read_ticks(p)), a_raw = monotonic_raw_ns();
  while (monotonic_raw_ns() < a_raw + 50000000ull) {
  }
  uint64_t b_ns = ticks_to_ns(p, read_ticks(p)), b_raw = monotonic_raw_ns();
  double ratio = double(b_ns - a_ns) / double(b_raw - a_raw);
  CHECK(ratio > 0.995 && ratio < 1.005);  // loose: qemu-user delays reads
  // The realtime offset places the clock on the unix axis within 1 ms.
  int64_t unix_est = int64_t(ticks_to_ns(p, read_ticks(p))) + p.realtime_offset_ns;
  int64_t unix_now = int64_t(realtime_ns());
  CHECK(std::llabs(unix_est - unix_now) < 1000000);
  std::printf("clock %s: %.0f ticks/s, rate ratio %.7f\n", clock_kind_name(p.kind),
              p.ticks_per_second, ratio);
}

static void test_buffers_single() {
  LaunchBuffers lb(4, 2, 3);  // 3 chunks of 4 records: 12 records, then drops
  ThreadBuffer* tb = lb.attach(7);
  for (uint32_t i = 0; i < 20; ++i) LaunchBuffers::push(tb, LaunchRecord{i, i + 1, i, 1, 0, 0});
  size_t n = 0;
  uint32_t expect = 0;
  bool ordered = true;
  lb.for_each([&](uint32_t tid, const LaunchRecord* r, uint32_t k) {
    CHECK(tid == 7);
    for (uint32_t i = 0; i < k; ++i) ordered &= r[i].correlation_id == expect++;
    n += k;
  });
  CHECK(ordered);
  CHECK(n == 12);
  CHECK(lb.dropped() == 8 && lb.unallocated() == 0);
}

static void test_buffers_threads() {
  const int threads = 8;
  const uint32_t per = 100000;
  LaunchBuffers lb(1024, 4, 100000);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      ThreadBuffer* tb = lb.attach(uint32_t(100 + t));
      for (uint32_t i = 0; i < per; ++i) LaunchBuffers::push(tb, LaunchRecord{i, i, i, 0, 0, 0});
    });
  for (auto& t : ts) t.join();
  std::vector<uint64_t> per_tid(threads, 0);
  lb.for_each([&](uint32_t tid, const LaunchRecord*, uint32_t k) { per_tid[tid - 100] += k; });
  for (int t = 0; t < threads; ++t) CHECK(per_tid[t] == per);
  CHECK(lb.dropped() == 0);
}

static void test_buffers_cap_zero_chunks_left() {
  LaunchBuffers lb(2, 0, 1);
  ThreadBuffer* a = lb.attach(1);  // takes the only chunk
  ThreadBuffer* b = lb.attach(2);  // none left
  LaunchBuffers::push(a, LaunchRecord{});
  LaunchBuffers::push(b, LaunchRecord{});
  LaunchBuffers::push(b, LaunchRecord{});
  CHECK(lb.dropped() == 2);
}

// A chunk that cannot be allocated below the cap: its records are counted as
// unallocated, not as past the cap (which they are not).
static void test_buffers_out_of_memory() {
  g_allocation_fault.store(
      [](const char* what) { return std::strcmp(what, "launch_chunk") == 0 ? 1 : 0; });
  LaunchBuffers lb(4, 1, 3);  // one chunk allocated up front, two more allowed
  ThreadBuffer* tb = lb.attach(7);
  for (uint32_t i = 0; i < 10; ++i) LaunchBuffers::push(tb, LaunchRecord{i, i + 1, i, 1, 0, 0});
  g_allocation_fault.store(nullptr);
  size_t n = 0;
  lb.for_each([&](uint32_t, const LaunchRecord*, uint32_t k) { n += k; });
  CHECK(n == 4 && lb.dropped() == 0 && lb.unallocated() == 6);
  LaunchBuffers::push(tb, LaunchRecord{});  // memory again: a chunk, kept
  CHECK(lb.dropped() == 0 && lb.unallocated() == 6);
}

// The collector walks the chunk lists while their owners append (a session's
// stop() during launches): it sees whole records, in order, and never fewer
// than it saw before.
// `prealloc` chunks come from the block allocated up front, with no lock, so the
// walk really runs beside the owners; later ones take the collector's lock.
static void test_buffers_read_while_writing(size_t prealloc, bool linger) {
  const int threads = 4;
  const uint32_t per = 500000;
  LaunchBuffers lb(1024, prealloc, 4096);
  std::atomic<int> done{0}, attached{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&lb, &done, &attached, t, per] {
      ThreadBuffer* tb = lb.attach(uint32_t(t));
      attached.fetch_add(1);
      for (uint32_t i = 0; i < per; ++i) {
        LaunchBuffers::push(tb, LaunchRecord{i, uint64_t(i) * 3 + 1, i, uint16_t(t), 0, 0});
        if (i % 4096 == 0) std::this_thread::yield();  // let the reader in
      }
      done.fetch_add(1);
    });
  while (attached.load() < threads) std::this_thread::yield();
  size_t last = 0;
  bool whole = true, grows = true;
  int reads = 0;
  for (bool more = true; more; ++reads) {
    more = done.load() < threads;
    size_t n = 0;
    std::vector<uint32_t> next(threads, 0);
    lb.for_each([&](uint32_t tid, const LaunchRecord* r, uint32_t k) {
      // A chunk seen part-filled is the one its owner is filling: linger, so the
      // owner fills it and moves on before the walk goes further. A walk that
      // read this chunk's count before its `next` would then skip the records
      // stored after that count (a gap, not a prefix).
      // (Only where every chunk is preallocated: the walk holds the collector's
      // lock, which owners past the preallocated block wait for; lingering there
      // starves them, hopelessly so under ThreadSanitizer.)
      if (linger && k < lb.chunk_records())
        std::this_thread::sleep_for(std::chrono::microseconds(300));
      for (uint32_t i = 0; i < k; ++i) {
        const LaunchRecord& x = r[i];
        whole &= x.correlation_id == next[tid]++ && x.t_end == x.t_begin * 3 + 1 && x.cbid == tid;
      }
      n += k;
    });
    grows &= n >= last;
    last = n;
    // The walk holds the collector's lock, which owners past the preallocated
    // block need for a new chunk; a reader that took it again at once would
    // starve them (for many minutes under ThreadSanitizer on an idle machine).
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  for (auto& t : ts) t.join();
  CHECK(whole);
  CHECK(grows);
  CHECK(last == size_t(threads) * per);
  CHECK(lb.dropped() == 0);
  std::printf("buffers: %d reads while %d threads wrote (%zu chunks preallocated)\n", reads,
              threads, prealloc);
}

static void test_string_table() {
  StringTable t;
  uint32_t a = t.intern("gemm"), b = t.intern("relu"), c = t.intern("gemm");
  CHECK(a == c);
  CHECK(a != b);
  CHECK(t.snapshot()[b] == "relu");
  CHECK(t.intern("") == 0);
}

// The order join (core/order_join.h): calls and GPU work of one stream paired
// in order, checked by queued times where there are any.
static OrderLaunch call(uint64_t b, uint64_t e, ApiKind kind, uint32_t stream = 7) {
  OrderLaunch l;
  l.t_begin = b;
  l.t_end = e;
  l.kind = uint8_t(kind);
  l.stream = stream;
  l.on_stream = true;
  return l;
}
static OrderOp op(uint32_t corr, uint64_t start, uint64_t queued, OpKind kind = OpKind::kKernel,
                  uint32_t stream = 7, bool graph = false) {
  OrderOp o;
  o.correlation_id = corr;
  o.t_start = start;
  o.t_queued = queued;
  o.kind = kind;
  o.stream = stream;
  o.graph = graph;
  return o;
}

static void test_order_join_pairs_each_stream_in_order() {
  // two streams launched alternately; the work listed out of order
  std::vector<OrderLaunch> calls = {
      call(100, 200, ApiKind::kKernel, 7), call(300, 400, ApiKind::kKernel, 9),
      call(500, 600, ApiKind::kKernel, 7), call(700, 800, ApiKind::kKernel, 9)};
  std::vector<OrderOp> ops = {
      op(14, 900, 750, OpKind::kKernel, 9), op(11, 250, 150, OpKind::kKernel, 7),
      op(13, 650, 550, OpKind::kKernel, 7), op(12, 450, 350, OpKind::kKernel, 9)};
  OrderJoinStats st;
  std::vector<uint32_t> corr = join_by_stream_order(calls, ops, {}, &st);
  CHECK((corr == std::vector<uint32_t>{11, 12, 13, 14}));
  CHECK(st.launches_joined == 4 && st.pairs_checked == 4);
  CHECK(st.launches_unjoined == 0 && st.work_unjoined == 0);
}

static void test_order_join_skips_what_has_no_partner() {
  // the first kernel was queued before any recorded call began (its call was
  // in flight at the start); the second call enqueued nothing recorded (its
  // stream was capturing, say): the queued times say so, and the rest pair
  std::vector<OrderLaunch> calls = {call(100, 200, ApiKind::kKernel),
                                    call(300, 400, ApiKind::kKernel),
                                    call(500, 600, ApiKind::kKernel)};
  std::vector<OrderOp> ops = {op(10, 120, 90), op(11, 210, 150), op(13, 620, 550)};
  OrderJoinStats st;
  std::vector<uint32_t> corr = join_by_stream_order(calls, ops, {}, &st);
  CHECK((corr == std::vector<uint32_t>{11, 0, 13}));
  CHECK(st.launches_joined == 2 && st.launches_unjoined == 1 && st.work_unjoined == 1);
}

static void test_order_join_kinds_without_queued_times() {
  // a graph (three nodes, one correlation id), a set, a copy and a kernel, no
  // queued times: kinds pair them; the copies were not recorded, so the copy
  // call has nothing to pair with and is left out of the join
  std::vector<OrderLaunch> calls = {call(100, 200, ApiKind::kGraph), call(300, 400, ApiKind::kSet),
                                    call(500, 600, ApiKind::kCopy),
                                    call(700, 800, ApiKind::kKernel)};
  std::vector<OrderOp> ops = {
      op(20, 210, 0, OpKind::kKernel, 7, true), op(20, 230, 0, OpKind::kKernel, 7, true),
      op(20, 250, 0, OpKind::kKernel, 7, true), op(21, 410, 0, OpKind::kSet), op(23, 810, 0)};
  OrderRecorded recorded;
  recorded.copies = false;
  OrderJoinStats st;
  std::vector<uint32_t> corr = join_by_stream_order(calls, ops, recorded, &st);
  CHECK((corr == std::vector<uint32_t>{20, 21, 0, 23}));
  CHECK(st.launches_joined == 3 && st.launches_unjoined == 0 && st.work_unjoined == 0);
  CHECK(st.pairs_checked == 0);
  // recorded, the copy call still finds no copy: a set call whose set is
  // missing is skipped because the next call's kind fits the work
  recorded.copies = true;
  ops.erase(ops.begin() + 3);  // the set
  corr = join_by_stream_order(calls, ops, recorded, &st);
  CHECK((corr == std::vector<uint32_t>{20, 0, 0, 23}));
  CHECK(st.launches_unjoined == 2 && st.work_unjoined == 0);
  CHECK(st.pairs_unverified == 2);  // no queued time pins them, and calls went unpaired
  // work that started before the call began is not its own
  std::vector<OrderOp> early = {op(30, 50, 0)};
  corr = join_by_stream_order({call(100, 200, ApiKind::kKernel)}, early, {}, &st);
  CHECK(corr[0] == 0 && st.work_unjoined == 1 && st.launches_unjoined == 1);
}

static void test_order_join_says_which_pairs_it_cannot_vouch_for() {
  // order only: the first call's copy was not recorded, so every later call
  // takes its successor's work; the count says the pairs are unverified
  std::vector<OrderLaunch> calls = {call(100, 200, ApiKind::kCopy), call(300, 400, ApiKind::kCopy),
                                    call(500, 600, ApiKind::kCopy)};
  std::vector<OrderOp> ops = {op(602, 410, 0, OpKind::kCopy), op(603, 610, 0, OpKind::kCopy)};
  OrderJoinStats st;
  std::vector<uint32_t> corr = join_by_stream_order(calls, ops, {}, &st);
  CHECK((corr == std::vector<uint32_t>{602, 603, 0}));  // shifted: no time says otherwise
  CHECK(st.pairs_unverified == 2 && st.pairs_checked == 0 && st.launches_unjoined == 1);
  // a checked pair in between anchors the two sequences: the pairs after it,
  // with as many calls as work, are not in doubt
  calls.push_back(call(700, 800, ApiKind::kKernel));
  calls.push_back(call(900, 1000, ApiKind::kCopy));
  ops.push_back(op(604, 820, 750));
  ops.push_back(op(605, 1010, 0, OpKind::kCopy));
  corr = join_by_stream_order(calls, ops, {}, &st);
  CHECK((corr == std::vector<uint32_t>{602, 603, 0, 604, 605}));
  CHECK(st.pairs_checked == 1 && st.pairs_unverified == 2 && st.launches_joined == 4);
  // two threads' calls on one stream, overlapping: both queued times lie in
  // both spans, so neither pair is checked
  std::vector<OrderLaunch> both = {call(0, 10, ApiKind::kKernel), call(1, 11, ApiKind::kKernel)};
  std::vector<OrderOp> work = {op(100, 20, 5), op(200, 30, 9)};
  corr = join_by_stream_order(both, work, {}, &st);
  CHECK(st.pairs_ambiguous == 2 && st.pairs_checked == 0 && st.launches_joined == 2);
  // a graph whose one recorded node is a copy is the graph launch's work
  std::vector<OrderLaunch> g = {call(0, 10, ApiKind::kGraph), call(20, 30, ApiKind::kCopy)};
  std::vector<OrderOp> gw = {op(401, 12, 0, OpKind::kCopy, 7, true), op(402, 32, 0, OpKind::kCopy)};
  corr = join_by_stream_order(g, gw, {}, &st);
  CHECK((corr == std::vector<uint32_t>{401, 402}));
}

int main() {
  test_clock("auto");
  test_clock("monotonic_raw");
  test_buffers_single();
  test_buffers_threads();
  test_buffers_read_while_writing(8, false);
  test_buffers_read_while_writing(2048, true);  // every chunk preallocated: no lock taken
  test_buffers_cap_zero_chunks_left();
  test_buffers_out_of_memory();
  test_string_table();
  test_order_join_pairs_each_stream_in_order();
  test_order_join_skips_what_has_no_partner();
  test_order_join_kinds_without_queued_times();
  test_order_join_says_which_pairs_it_cannot_vouch_for();
  if (failures) {
    std::printf("core tests: %d failed\n", failures);
    return 1;
  }
  std::printf("core tests: all passed\n");
  return 0;
}
