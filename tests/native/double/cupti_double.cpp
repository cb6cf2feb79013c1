// A CUPTI test double: exports the CUPTI functions skipnative calls, compiled
// against the real cupti.h, and simulates a GPU behind them.
//
// Launch entry points (skipnative_double_*) call the subscribed callback with
// ENTER and EXIT around a configurable launch-call cost and queue activity
// records from a simulated GPU: per stream, FIFO; a kernel starts at the later
// of its submission (call exit + submit latency) and its predecessor's end.
//
// Time is virtual by default (an atomic ns counter, exported as
// skipnative_double_clock_ns, which skipnative's "library" clock reads), so
// tests can expect exact timestamps. In real-time mode the double runs on
// CLOCK_MONOTONIC, spins for the launch cost and converts the times it writes
// into activity records to the clock of the timestamp callback skipnative
// registered (as CUPTI converts GPU timestamps to the CPU clock).
//
// The simulated GPU runs whether or not activity is enabled (only records
// depend on it), and a stream holds at most `queue_depth` unfinished kernels:
// a launch into a full stream waits inside the call, as the driver's does.
//
// Activity buffers are filled as CUPTI would and held until
// cuptiActivityFlushAll, so a bounded buffer pool runs out at an exact record
// count; records without a buffer are counted as dropped.
#include <cupti.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "sim_cuda.h"

#define DOUBLE_API extern "C" __attribute__((visibility("default")))

namespace {

struct State {
  std::mutex mu;
  uint32_t version = CUPTI_API_VERSION;
  std::atomic<uint64_t> now{1000000};
  bool real_time = false;
  uint64_t launch_cost = 2000;
  uint64_t submit_latency = 1000;
  uint32_t device = 0;

  bool subscribed = false;
  bool held_by_other = false;
  uint64_t flush_delay_ns = 0;   // real time each cuptiActivityFlushAll takes (a slow flush)
  uint32_t incomplete_next = 0;  // GPU records still to write unfinished (end 0, as a forced flush)
  CUpti_CallbackFunc callback = nullptr;
  void* userdata = nullptr;
  std::set<std::pair<int, int>> enabled_callbacks;
  std::set<int> enabled_kinds;
  bool latency = false;
  CUpti_BuffersCallbackRequestFunc request = nullptr;
  CUpti_BuffersCallbackCompleteFunc complete = nullptr;
  CUpti_TimestampCallbackFunc timestamp = nullptr;

  std::atomic<uint32_t> next_correlation{1};
  uint32_t next_graph = 1;
  std::map<uint32_t, uint64_t> stream_free;
  // per CUDA event: when the work before its latest record ends, and that
  // record's cudaEventSyncId
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> events;
  uint64_t next_event_sync = 1;
  std::map<uint32_t, std::deque<uint64_t>> pending;  // per stream: ends of unfinished work
  uint32_t queue_depth = 0;                          // 0: unbounded
  std::set<std::string> names;

  uint8_t* buf = nullptr;
  size_t buf_size = 0, buf_used = 0;
  std::vector<std::pair<uint8_t*, size_t>> full;
  size_t dropped = 0;
  uint64_t records_written = 0;
  uint64_t buffers_requested = 0;
  uint64_t finalized = 0;
  size_t device_buffer_bytes = 0;
  bool zeroed_buffers = false;                // CUPTI_ACTIVITY_ATTR_ZEROED_OUT_ACTIVITY_BUFFER
  bool host_pinned = false;                   // CUPTI_ACTIVITY_ATTR_MEM_ALLOCATION_TYPE_HOST_PINNED
  std::set<std::pair<int, int>> api_records;  // (domain, cbid) with API activity records
  int64_t offset = 0;                         // subscriber clock - CLOCK_MONOTONIC, cached
  uint64_t offset_at = 0;
  CUpti_TimestampCallbackFunc offset_clock = nullptr;
  uint64_t dirty_buffers = 0;  // handed over as zeroed, but not zero
  // Requests answered with no buffer. CUPTI before API version 27 (CUDA 12.9)
  // may crash on that; the double counts it, so tests can tell it happened.
  uint64_t refused_buffers = 0;
  std::string call_log;  // a file to append "pid function" to at each teardown call
  CUptiResult hw_trace_result = CUPTI_ERROR_NOT_SUPPORTED;  // what enabling HW trace returns
  bool hw_trace = false;
  uint32_t flush_period_ms = 0;
  std::atomic<uint64_t> external_pushes{0};
  std::atomic<uint64_t> stream_lookups{0};  // cuptiGetStreamIdEx calls
  uint64_t overhead_launches = 0;           // kernel launches with overhead records
  // cuptiFinalize ran and no session has set CUPTI up since (cuptiSubscribe,
  // cuptiActivityRegisterCallbacks); calls of a stopped capture made meanwhile
  // are counted: CUPTI may crash on a call that races its cuptiFinalize.
  std::atomic<bool> finalized_now{false};
  std::atomic<uint64_t> calls_after_finalize{0};
  // Called at the start of each cuptiActivityEnable (a test's stand-in for work
  // CUPTI's own threads do meanwhile, such as completing a buffer).
  std::atomic<void (*)(int)> on_activity_enable{nullptr};
};

// CUPTI's external correlation stacks: per thread, per kind.
thread_local std::vector<std::pair<int, uint64_t>> t_external;

State& st() {
  static State* s = new State();  // never destroyed: callbacks may outlive static teardown
  return *s;
}

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t now_ns() {
  State& s = st();
  return s.real_time ? monotonic_ns() : s.now.load();
}

void spend(uint64_t ns) {
  State& s = st();
  if (s.real_time) {
    uint64_t until = monotonic_ns() + ns;
    while (monotonic_ns() < until) {
    }
  } else {
    s.now.fetch_add(ns);
  }
}

// What the subscriber's clock reads minus the simulation's (0 in virtual time):
// the tightest of a few bracketed reads (a preempted read would skew it), kept
// for a millisecond (caller holds mu).
int64_t clock_offset(State& s) {
  if (!s.real_time || !s.timestamp) return 0;
  uint64_t now = monotonic_ns();
  if (s.offset_clock == s.timestamp && now - s.offset_at < 1000000) return s.offset;
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 5; ++i) {
    uint64_t a = monotonic_ns(), t = s.timestamp(), b = monotonic_ns();
    if (b - a < best) {
      best = b - a;
      s.offset = int64_t(t) - int64_t(a + (b - a) / 2);
    }
  }
  s.offset_clock = s.timestamp;
  s.offset_at = now;
  return s.offset;
}

uint64_t at(int64_t offset, uint64_t t) { return t ? uint64_t(int64_t(t) + offset) : 0; }

// Work of `duration_ns` entering `stream` no earlier than `ready`: returns its
// start and books the stream (caller holds mu).
uint64_t schedule(State& s, uint32_t stream, uint64_t ready, uint64_t duration_ns) {
  uint64_t start = std::max(ready, s.stream_free[stream]);
  s.stream_free[stream] = start + duration_ns;
  if (s.queue_depth) s.pending[stream].push_back(start + duration_ns);
  return start;
}

// How long a launch into `stream` at `now` waits for a free queue slot.
uint64_t queue_wait(uint32_t stream) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.queue_depth) return 0;
  auto& q = s.pending[stream];
  uint64_t now = now_ns();
  while (!q.empty() && q.front() <= now) q.pop_front();
  if (q.size() < s.queue_depth) return 0;
  return q[q.size() - s.queue_depth] - now;
}

size_t record_size(uint32_t version, int kind) {
  bool v13 = version >= 130000;
  switch (kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      return v13 ? sizeof(CUpti_ActivityKernel10) : sizeof(CUpti_ActivityKernel9);
    case CUPTI_ACTIVITY_KIND_MEMCPY:
      return v13 ? sizeof(CUpti_ActivityMemcpy6) : sizeof(CUpti_ActivityMemcpy5);
    case CUPTI_ACTIVITY_KIND_MEMSET:
      return sizeof(CUpti_ActivityMemset4);
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_DRIVER:
      return sizeof(CUpti_ActivityAPI);
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION:
      return sizeof(CUpti_ActivityExternalCorrelation);
    case CUPTI_ACTIVITY_KIND_OVERHEAD:
      return sizeof(CUpti_ActivityOverhead3);
    case CUPTI_ACTIVITY_KIND_CUDA_EVENT:
      return version >= 26 ? sizeof(CUpti_ActivityCudaEvent2) : sizeof(CUpti_ActivityCudaEvent);
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION:
      return version >= 26 ? sizeof(CUpti_ActivitySynchronization2)
                           : sizeof(CUpti_ActivitySynchronization);
    default:
      return sizeof(CUpti_ActivityMarker2);
  }
}

// Reserves room for one record in the current buffer (caller holds mu).
uint8_t* reserve(State& s, size_t size) {
  if (s.buf && s.buf_used + size > s.buf_size) {
    s.full.emplace_back(s.buf, s.buf_used);
    s.buf = nullptr;
  }
  if (!s.buf) {
    if (!s.request) return nullptr;
    uint8_t* b = nullptr;
    size_t sz = 0, max_records = 0;
    ++s.buffers_requested;
    s.request(&b, &sz, &max_records);
    if (!b) ++s.refused_buffers;
    if (!b || sz < size) return nullptr;
    if (!s.zeroed_buffers)
      std::memset(b, 0, sz);  // CUPTI clears a buffer it was not told is zero
    else if (std::any_of(b, b + sz, [](uint8_t x) { return x != 0; }))
      ++s.dirty_buffers;
    s.buf = b;
    s.buf_size = sz;
    s.buf_used = 0;
  }
  uint8_t* p = s.buf + s.buf_used;
  s.buf_used += (size + 7) & ~size_t(7);
  return p;
}

// A record with the fields every GPU activity has, times in the subscriber's clock.
template <class R>
R gpu_record(State& s, CUpti_ActivityKind kind, int64_t off, uint32_t corr, uint32_t stream,
             uint64_t start, uint64_t end) {
  R r;
  std::memset(&r, 0, sizeof(r));
  r.kind = kind;
  r.start = at(off, start);
  r.end = at(off, end);
  if (s.incomplete_next > 0) {  // delivered before it finished: no end yet
    --s.incomplete_next;
    r.end = 0;
  }
  r.deviceId = s.device;
  r.contextId = 1;
  r.streamId = stream;
  r.correlationId = corr;
  return r;
}

// Into the current activity buffer (true), or counted as dropped without room.
template <class R>
bool reserve_and_commit(State& s, const R& r) {
  uint8_t* p = reserve(s, sizeof(R));
  if (!p) {
    ++s.dropped;
    return false;
  }
  std::memcpy(p, &r, sizeof(R));
  ++s.records_written;
  return true;
}
template <class R>
void commit(State& s, const R& r) {
  reserve_and_commit(s, r);
}

// A record written as the double's CUPTI version writes its kind: the first
// record_size() bytes of the newest struct (older versions' structs are its prefix).
template <class R>
void commit_versioned(State& s, const R& r) {
  const size_t n = record_size(s.version, r.kind);
  uint8_t* p = reserve(s, n);
  if (!p) {
    ++s.dropped;
    return;
  }
  std::memcpy(p, &r, n);
  ++s.records_written;
}

// The kernel record kind enabled (KERNEL or CONCURRENT_KERNEL), -1 if neither.
int kernel_kind(const State& s) {
  if (s.enabled_kinds.count(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL))
    return CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
  if (s.enabled_kinds.count(CUPTI_ACTIVITY_KIND_KERNEL)) return CUPTI_ACTIVITY_KIND_KERNEL;
  return -1;
}

template <class K>
void write_kernel(State& s, uint32_t corr, uint32_t stream, const char* name, uint64_t start,
                  uint64_t end, uint64_t queued, uint64_t submitted, uint32_t graph_id,
                  uint64_t node_id) {
  const int64_t off = clock_offset(s);
  K k = gpu_record<K>(s, CUpti_ActivityKind(kernel_kind(s)), off, corr, stream, start, end);
  k.completed = k.end;
  k.gridX = 128;
  k.gridY = 1;
  k.gridZ = 1;
  k.blockX = 256;
  k.blockY = 1;
  k.blockZ = 1;
  k.name = name;
  k.queued = s.latency ? at(off, queued) : CUPTI_TIMESTAMP_UNKNOWN;
  k.submitted = s.latency ? at(off, submitted) : CUPTI_TIMESTAMP_UNKNOWN;
  k.graphId = graph_id;
  k.graphNodeId = node_id;
  commit(s, k);
}

// With OVERHEAD enabled, each kernel launch reports CUPTI's instrumentation of
// it (150 ns from the call's begin) and every fourth one a full command buffer,
// whose additional data CUPTI allocates and the client frees (caller holds the lock).
void write_launch_overhead(State& s, uint32_t corr, uint64_t t_begin) {
  if (!s.enabled_kinds.count(CUPTI_ACTIVITY_KIND_OVERHEAD)) return;
  const int64_t off = clock_offset(s);
  CUpti_ActivityOverhead3 o;
  std::memset(&o, 0, sizeof(o));
  o.kind = CUPTI_ACTIVITY_KIND_OVERHEAD;
  o.overheadKind = CUPTI_ACTIVITY_OVERHEAD_CUPTI_INSTRUMENTATION;
  o.objectKind = CUPTI_ACTIVITY_OBJECT_THREAD;
  o.start = at(off, t_begin);
  o.end = o.start + 150;
  o.correlationId = corr;
  commit(s, o);
  if (++s.overhead_launches % 4 != 0) return;
  o.overheadKind = CUPTI_ACTIVITY_OVERHEAD_COMMAND_BUFFER_FULL;
  o.start = o.end = 0;  // not timed
  auto* data = static_cast<CUpti_ActivityOverheadCommandBufferFullData*>(
      std::calloc(1, sizeof(CUpti_ActivityOverheadCommandBufferFullData)));
  o.overheadData = data;
  if (reserve_and_commit(s, o) == false) std::free(data);
}

template <class M>
void write_copy(State& s, uint32_t corr, uint32_t stream, uint64_t bytes, uint64_t start,
                uint64_t end) {
  M m = gpu_record<M>(s, CUPTI_ACTIVITY_KIND_MEMCPY, clock_offset(s), corr, stream, start, end);
  m.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_HTOD;
  m.bytes = bytes;
  commit(s, m);
}

void write_set(State& s, uint32_t corr, uint32_t stream, uint64_t bytes, uint64_t start,
               uint64_t end) {
  auto m = gpu_record<CUpti_ActivityMemset4>(s, CUPTI_ACTIVITY_KIND_MEMSET, clock_offset(s), corr,
                                             stream, start, end);
  m.bytes = bytes;
  commit(s, m);
}

// CUPTI's API activity record of one call, if that API's records are enabled:
// by cbid, or its whole domain's kind (caller holds no lock).
void api_record(int domain, int cbid, uint32_t corr, uint64_t t_begin, uint64_t t_end) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  int kind = domain ? CUPTI_ACTIVITY_KIND_DRIVER : CUPTI_ACTIVITY_KIND_RUNTIME;
  if (!s.api_records.count({domain, cbid}) && !s.enabled_kinds.count(kind)) return;
  const int64_t off = clock_offset(s);
  CUpti_ActivityAPI a;
  std::memset(&a, 0, sizeof(a));
  a.kind = CUpti_ActivityKind(kind);
  a.cbid = CUpti_CallbackId(cbid);
  a.start = at(off, t_begin);
  a.end = at(off, t_end);
  a.processId = uint32_t(getpid());
  a.threadId = uint32_t(syscall(SYS_gettid));
  a.correlationId = corr;
  commit(s, a);
}

// With EXTERNAL_CORRELATION enabled, an API call made while an external id is
// pushed on its thread gets a record of (the innermost id of each kind, its
// correlation id), as CUPTI writes one: before the call's API activity record,
// so only for a call whose API records are enabled (by cbid or its domain's
// kind), as CUPTI documents it (caller holds no lock).
void external_records(uint32_t corr, int domain, int cbid) {
  if (t_external.empty()) return;
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.enabled_kinds.count(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION)) return;
  int kind = domain ? CUPTI_ACTIVITY_KIND_DRIVER : CUPTI_ACTIVITY_KIND_RUNTIME;
  if (!s.api_records.count({domain, cbid}) && !s.enabled_kinds.count(kind)) return;
  std::set<int> seen;
  for (auto it = t_external.rbegin(); it != t_external.rend(); ++it) {
    if (!seen.insert(it->first).second) continue;
    CUpti_ActivityExternalCorrelation e;
    std::memset(&e, 0, sizeof(e));
    e.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
    e.externalKind = CUpti_ExternalCorrelationKind(it->first);
    e.externalId = it->second;
    e.correlationId = corr;
    commit(s, e);
  }
}

// Calls the subscriber around `body`, as CUPTI does around an API call.
template <class Body>
uint32_t api_call(int domain, int cbid, uint64_t cost, Body body, int inner_domain = -1,
                  int inner_cbid = -1) {
  State& s = st();
  uint32_t corr = s.next_correlation.fetch_add(1);
  external_records(corr, domain, cbid);
  CUpti_CallbackFunc cb;
  void* ud;
  bool on;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    cb = s.callback;
    ud = s.userdata;
    on = s.subscribed && s.enabled_callbacks.count({domain, cbid});
  }
  uint64_t correlation_data = 0;
  CUpti_CallbackData info;
  std::memset(&info, 0, sizeof(info));
  info.correlationId = corr;
  info.correlationData = &correlation_data;
  info.functionName = "simulated";
  CUpti_CallbackDomain dom = domain ? CUPTI_CB_DOMAIN_DRIVER_API : CUPTI_CB_DOMAIN_RUNTIME_API;
  uint64_t t_begin = now_ns();
  if (on && cb) {
    info.callbackSite = CUPTI_API_ENTER;
    cb(ud, dom, CUpti_CallbackId(cbid), &info);
  }
  if (inner_domain >= 0) {
    // The runtime calls a public driver API inside: CUPTI reports it with the
    // same correlation id and its own correlationData slot.
    bool inner_on;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      inner_on = s.subscribed && s.enabled_callbacks.count({inner_domain, inner_cbid});
    }
    uint64_t inner_data = 0;
    CUpti_CallbackData inner = info;
    inner.correlationData = &inner_data;
    CUpti_CallbackDomain idom =
        inner_domain ? CUPTI_CB_DOMAIN_DRIVER_API : CUPTI_CB_DOMAIN_RUNTIME_API;
    spend(cost / 4);
    uint64_t inner_begin = now_ns();
    if (inner_on && cb) {
      inner.callbackSite = CUPTI_API_ENTER;
      cb(ud, idom, CUpti_CallbackId(inner_cbid), &inner);
    }
    spend(cost / 2);
    if (inner_on && cb) {
      inner.callbackSite = CUPTI_API_EXIT;
      cb(ud, idom, CUpti_CallbackId(inner_cbid), &inner);
    }
    api_record(inner_domain, inner_cbid, corr, inner_begin, now_ns());
    spend(cost - cost / 4 - cost / 2);
  } else {
    spend(cost);
  }
  if (on && cb) {
    info.callbackSite = CUPTI_API_EXIT;
    cb(ud, dom, CUpti_CallbackId(cbid), &info);
  }
  // The call returns after its exit callback; with several threads sharing the
  // virtual clock, read it here so submission never precedes that callback.
  uint64_t t_end = now_ns();
  api_record(domain, cbid, corr, t_begin, t_end);
  body(corr, t_begin, t_end);
  return corr;
}

const char* stable_name(State& s, const char* name) {
  return s.names.insert(name ? name : "").first->c_str();
}

// Appends "pid function" to the call log, if one is set: a forked child's calls
// are seen by its parent (caller holds mu).
void log_call(State& s, const char* function) {
  if (s.call_log.empty()) return;
  int fd = open(s.call_log.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return;
  std::string line = std::to_string(getpid()) + " " + function + "\n";
  ssize_t n = write(fd, line.data(), line.size());
  (void)n;
  close(fd);
}

}  // namespace

// ---------------------------------------------------------------- CUPTI API --

DOUBLE_API CUptiResult cuptiGetVersion(uint32_t* version) {
  *version = st().version;
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiGetResultString(CUptiResult result, const char** str) {
  switch (result) {
    case CUPTI_SUCCESS:
      *str = "CUPTI_SUCCESS";
      break;
    case CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED:
      *str = "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED";
      break;
    case CUPTI_ERROR_INVALID_PARAMETER:
      *str = "CUPTI_ERROR_INVALID_PARAMETER";
      break;
    case CUPTI_ERROR_NOT_SUPPORTED:
      *str = "CUPTI_ERROR_NOT_SUPPORTED";
      break;
    default:
      *str = "CUPTI_ERROR_UNKNOWN";
  }
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiSubscribe(CUpti_SubscriberHandle* subscriber,
                                      CUpti_CallbackFunc callback, void* userdata) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.subscribed || s.held_by_other) return CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
  s.subscribed = true;
  s.finalized_now = false;
  s.callback = callback;
  s.userdata = userdata;
  *subscriber = reinterpret_cast<CUpti_SubscriberHandle>(&s);
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiUnsubscribe(CUpti_SubscriberHandle subscriber) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  log_call(s, "cuptiUnsubscribe");
  if (!s.subscribed || subscriber != reinterpret_cast<CUpti_SubscriberHandle>(&s))
    return CUPTI_ERROR_INVALID_PARAMETER;
  s.subscribed = false;
  s.callback = nullptr;
  s.enabled_callbacks.clear();
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiEnableCallback(uint32_t enable, CUpti_SubscriberHandle subscriber,
                                           CUpti_CallbackDomain domain, CUpti_CallbackId cbid) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.subscribed || subscriber != reinterpret_cast<CUpti_SubscriberHandle>(&s))
    return CUPTI_ERROR_INVALID_PARAMETER;
  std::pair<int, int> key{domain == CUPTI_CB_DOMAIN_DRIVER_API ? 1 : 0, int(cbid)};
  if (enable)
    s.enabled_callbacks.insert(key);
  else
    s.enabled_callbacks.erase(key);
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivityEnable(CUpti_ActivityKind kind) {
  State& s = st();
  if (auto f = s.on_activity_enable.load()) f(int(kind));
  std::lock_guard<std::mutex> lock(s.mu);
  // as CUPTI: the serial and the concurrent kernel kinds exclude each other
  if ((kind == CUPTI_ACTIVITY_KIND_KERNEL &&
       s.enabled_kinds.count(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)) ||
      (kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL &&
       s.enabled_kinds.count(CUPTI_ACTIVITY_KIND_KERNEL)))
    return CUPTI_ERROR_NOT_COMPATIBLE;
  s.enabled_kinds.insert(int(kind));
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivityDisable(CUpti_ActivityKind kind) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  log_call(s, "cuptiActivityDisable");
  s.enabled_kinds.erase(int(kind));
  return CUPTI_SUCCESS;
}

namespace {
CUptiResult set_api_records(int domain, CUpti_CallbackId cbid, uint8_t enable) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  if (enable)
    s.api_records.insert({domain, int(cbid)});
  else
    s.api_records.erase({domain, int(cbid)});
  return CUPTI_SUCCESS;
}
}  // namespace

DOUBLE_API CUptiResult cuptiActivityEnableDriverApi(CUpti_CallbackId cbid, uint8_t enable) {
  return set_api_records(1, cbid, enable);
}

DOUBLE_API CUptiResult cuptiActivityEnableRuntimeApi(CUpti_CallbackId cbid, uint8_t enable) {
  return set_api_records(0, cbid, enable);
}

DOUBLE_API CUptiResult cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc request,
                                                      CUpti_BuffersCallbackCompleteFunc complete) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.request = request;
  s.complete = complete;
  s.finalized_now = false;
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivityRegisterTimestampCallback(CUpti_TimestampCallbackFunc f) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.timestamp = f;
  s.offset_clock = nullptr;  // the same function may read another clock now
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivityEnableLatencyTimestamps(uint8_t enable) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.latency = enable != 0;
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivityFlushAll(uint32_t) {
  State& s = st();
  std::vector<std::pair<uint8_t*, size_t>> deliver;
  CUpti_BuffersCallbackCompleteFunc complete;
  uint64_t delay = 0;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    log_call(s, "cuptiActivityFlushAll");
    if (s.buf) {
      s.full.emplace_back(s.buf, s.buf_used);
      s.buf = nullptr;
    }
    deliver.swap(s.full);
    complete = s.complete;
    delay = s.flush_delay_ns;
  }
  if (delay) std::this_thread::sleep_for(std::chrono::nanoseconds(delay));
  for (auto& [b, used] : deliver)
    if (complete) complete(nullptr, 0, b, used, used);
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivityGetNextRecord(uint8_t* buffer, size_t valid,
                                                  CUpti_Activity** record) {
  if (!buffer) return CUPTI_ERROR_INVALID_PARAMETER;
  uint8_t* p;
  if (*record == nullptr) {
    p = buffer;
  } else {
    uint8_t* cur = reinterpret_cast<uint8_t*>(*record);
    p = cur + ((record_size(st().version, (*record)->kind) + 7) & ~size_t(7));
  }
  if (p >= buffer + valid) return CUPTI_ERROR_MAX_LIMIT_REACHED;
  *record = reinterpret_cast<CUpti_Activity*>(p);
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivityGetNumDroppedRecords(CUcontext, uint32_t, size_t* dropped) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  *dropped = s.dropped;
  s.dropped = 0;  // CUPTI resets the count at each query
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivitySetAttribute(CUpti_ActivityAttribute attr, size_t* size,
                                                 void* value) {
  if (!size || !value) return CUPTI_ERROR_INVALID_PARAMETER;
  if (attr == CUPTI_ACTIVITY_ATTR_DEVICE_BUFFER_SIZE && *size == sizeof(size_t))
    st().device_buffer_bytes = *static_cast<size_t*>(value);
  if (attr == CUPTI_ACTIVITY_ATTR_ZEROED_OUT_ACTIVITY_BUFFER) {
    if (*size != sizeof(uint8_t)) return CUPTI_ERROR_INVALID_PARAMETER;
    st().zeroed_buffers = *static_cast<uint8_t*>(value) != 0;
  }
  if (attr == CUPTI_ACTIVITY_ATTR_MEM_ALLOCATION_TYPE_HOST_PINNED) {
    if (*size != sizeof(uint8_t)) return CUPTI_ERROR_INVALID_PARAMETER;
    st().host_pinned = *static_cast<uint8_t*>(value) != 0;
  }
  return CUPTI_SUCCESS;
}

// The simulated GPU is no Blackwell by default: hardware tracing is refused, as
// on Hopper (skipnative_double_set_hw_trace sets what it returns).
DOUBLE_API CUptiResult cuptiActivityEnableHWTrace(uint8_t enable) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!enable) {
    s.hw_trace = false;
    return CUPTI_SUCCESS;
  }
  if (s.hw_trace_result != CUPTI_SUCCESS) return s.hw_trace_result;
  s.hw_trace = true;
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivityFlushPeriod(uint32_t ms) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.flush_period_ms = ms;
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivityPushExternalCorrelationId(CUpti_ExternalCorrelationKind kind,
                                                              uint64_t id) {
  t_external.emplace_back(int(kind), id);
  st().external_pushes++;
  if (st().finalized_now.load()) st().calls_after_finalize++;
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiActivityPopExternalCorrelationId(CUpti_ExternalCorrelationKind kind,
                                                             uint64_t* last) {
  if (st().finalized_now.load()) st().calls_after_finalize++;
  for (auto it = t_external.rbegin(); it != t_external.rend(); ++it)
    if (it->first == int(kind)) {
      if (last) *last = it->second;
      t_external.erase(std::next(it).base());
      return CUPTI_SUCCESS;
    }
  return CUPTI_ERROR_QUEUE_EMPTY;
}

// CUPTI's ids of a stream and of a context's device, as its activity records
// give them: a stream of the driver double is its own id; the legacy and
// per-thread default streams are 7 and 8. Lookups made after a cuptiFinalize
// are counted with the external correlation calls.
DOUBLE_API CUptiResult cuptiGetStreamIdEx(CUcontext, CUstream stream, uint8_t per_thread,
                                          uint32_t* id) {
  if (st().finalized_now.load()) st().calls_after_finalize++;
  if (id == nullptr) return CUPTI_ERROR_INVALID_PARAMETER;
  const auto handle = reinterpret_cast<uintptr_t>(stream);
  if (handle > 2)
    *id = stream->id;
  else
    *id = per_thread || stream == CU_STREAM_PER_THREAD ? 8 : 7;
  st().stream_lookups++;
  return CUPTI_SUCCESS;
}

DOUBLE_API CUptiResult cuptiGetDeviceId(CUcontext, uint32_t* device) {
  if (st().finalized_now.load()) st().calls_after_finalize++;
  if (device == nullptr) return CUPTI_ERROR_INVALID_PARAMETER;
  std::lock_guard<std::mutex> lock(st().mu);
  *device = st().device;
  return CUPTI_SUCCESS;
}

DOUBLE_API uint64_t skipnative_double_stream_lookups() { return st().stream_lookups.load(); }

DOUBLE_API CUptiResult cuptiFinalize() {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  log_call(s, "cuptiFinalize");
  if (s.subscribed) return CUPTI_ERROR_INVALID_OPERATION;  // still in use: refuse, as a check
  ++s.finalized;
  s.finalized_now = true;
  s.timestamp = nullptr;
  s.request = nullptr;
  s.complete = nullptr;
  s.enabled_kinds.clear();
  s.latency = false;
  return CUPTI_SUCCESS;
}

// ------------------------------------------------------------ test controls --

namespace {
// skipnative's own allocations a test makes fail (core/alloc_fault.h): the next n
// of each name (n < 0: every one). Atomics, not the lock: skipnative asks from
// its buffer-request callback, which the double calls holding the lock.
constexpr const char* kAllocations[] = {"launch_thread", "launch_flag", "launch_chunk",
                                        "activity_buffer", "gpu_row"};
std::atomic<int64_t> g_failing[std::size(kAllocations)];
std::atomic<int64_t>* failing(const char* what) {
  for (size_t i = 0; what != nullptr && i < std::size(kAllocations); ++i)
    if (std::strcmp(what, kAllocations[i]) == 0) return &g_failing[i];
  return nullptr;
}
}  // namespace

// The next n allocations named `what` that skipnative makes fail (n < 0: all; 0: none).
// 0: no allocation has that name.
DOUBLE_API int skipnative_double_fail_allocations(const char* what, int64_t n) {
  auto* f = failing(what);
  if (f != nullptr) f->store(n);
  return f != nullptr;
}

// What skipnative asks at each allocation it can fail: nonzero, fail it.
DOUBLE_API int skipnative_double_allocation_fails(const char* what) {
  std::atomic<int64_t>* f = failing(what);
  int64_t n = f ? f->load() : 0;
  while (n != 0)
    if (n < 0 || f->compare_exchange_weak(n, n - 1)) return 1;
  return 0;
}

DOUBLE_API uint64_t skipnative_double_clock_ns() { return now_ns(); }

DOUBLE_API void skipnative_double_reset(uint32_t version) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.version = version;
  s.now = 1000000;
  s.incomplete_next = 0;
  s.real_time = false;
  s.launch_cost = 2000;
  s.submit_latency = 1000;
  s.device = 0;
  s.held_by_other = false;
  s.next_correlation = 1;
  s.overhead_launches = 0;
  s.next_graph = 1;
  s.stream_free.clear();
  s.events.clear();
  s.next_event_sync = 1;
  s.pending.clear();
  s.queue_depth = 0;
  s.dropped = 0;
  s.records_written = 0;
  s.buffers_requested = 0;
  s.finalized = 0;
  s.dirty_buffers = 0;
  s.refused_buffers = 0;
  s.api_records.clear();
  s.hw_trace_result = CUPTI_ERROR_NOT_SUPPORTED;
  s.hw_trace = false;
  s.flush_period_ms = 0;
  s.external_pushes = 0;
  s.finalized_now = false;
  s.calls_after_finalize = 0;
  for (auto& f : g_failing) f.store(0);
}

// What cuptiActivityEnableHWTrace(1) returns from now on (0: it succeeds).
DOUBLE_API void skipnative_double_set_hw_trace(int result) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.hw_trace_result = CUptiResult(result);
}
DOUBLE_API int skipnative_double_hw_trace() { return st().hw_trace ? 1 : 0; }
DOUBLE_API uint32_t skipnative_double_flush_period() { return st().flush_period_ms; }
DOUBLE_API uint64_t skipnative_double_external_pushes() { return st().external_pushes; }
// External correlation pushes and pops made after a cuptiFinalize, before the
// next session set CUPTI up.
DOUBLE_API uint64_t skipnative_double_calls_after_finalize() { return st().calls_after_finalize; }
// f(kind) at the start of every cuptiActivityEnable from now on (null: none).
DOUBLE_API void skipnative_double_on_activity_enable(void (*f)(int)) {
  st().on_activity_enable.store(f);
}

// Teardown calls (unsubscribe, flush, disable, finalize) are logged to `path`
// from now on ("" or null: not logged).
DOUBLE_API void skipnative_double_log_calls(const char* path) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.call_log = path ? path : "";
}

DOUBLE_API uint64_t skipnative_double_refused_buffers() {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.refused_buffers;
}

DOUBLE_API void skipnative_double_configure(uint64_t launch_cost_ns, uint64_t submit_latency_ns,
                                            uint32_t device, int real_time) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.launch_cost = launch_cost_ns;
  s.submit_latency = submit_latency_ns;
  s.device = device;
  s.real_time = real_time != 0;
}

DOUBLE_API void skipnative_double_advance(uint64_t ns) { spend(ns); }

DOUBLE_API void skipnative_double_incomplete_next(uint32_t n) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.incomplete_next = n;
}

DOUBLE_API void skipnative_double_flush_delay(uint64_t ns) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.flush_delay_ns = ns;
}

DOUBLE_API void skipnative_double_hold_subscriber(int held) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.held_by_other = held != 0;
}

// A single-kernel launch through (domain, cbid), optionally calling the driver's
// (inner_domain, inner_cbid) inside as the runtime does. Returns its correlation id.
DOUBLE_API uint32_t skipnative_double_launch_nested(int domain, int cbid, int inner_domain,
                                                    int inner_cbid, uint32_t stream,
                                                    const char* name, uint64_t duration_ns) {
  return api_call(
      domain, cbid, st().launch_cost + queue_wait(stream),
      [&](uint32_t corr, uint64_t t_begin, uint64_t t_end) {
        State& s = st();
        std::lock_guard<std::mutex> lock(s.mu);
        uint64_t submitted = t_end + s.submit_latency;
        uint64_t start = schedule(s, stream, submitted, duration_ns);
        if (kernel_kind(s) < 0) return;
        write_launch_overhead(s, corr, t_begin);
        const char* n = stable_name(s, name);
        uint64_t queued = t_begin + s.launch_cost / 2;
        uint64_t end = start + duration_ns;
        if (s.version >= 130000)
          write_kernel<CUpti_ActivityKernel10>(s, corr, stream, n, start, end, queued, submitted, 0,
                                               0);
        else
          write_kernel<CUpti_ActivityKernel9>(s, corr, stream, n, start, end, queued, submitted, 0,
                                              0);
      },
      inner_domain, inner_cbid);
}

DOUBLE_API uint32_t skipnative_double_launch(int domain, int cbid, uint32_t stream,
                                             const char* name, uint64_t duration_ns) {
  return skipnative_double_launch_nested(domain, cbid, -1, -1, stream, name, duration_ns);
}

// Many launches in one call (stress tests): kernel i gets names[i % n_names].
DOUBLE_API uint64_t skipnative_double_launch_many(uint64_t count, int domain, int cbid,
                                                  uint32_t stream, const char* name,
                                                  uint64_t duration_ns) {
  for (uint64_t i = 0; i < count; ++i)
    skipnative_double_launch(domain, cbid, stream, name, duration_ns);
  return count;
}

// A graph launch of n kernels (run back to back on `stream`, one correlation id;
// one queue slot).
DOUBLE_API uint32_t skipnative_double_graph_launch(int domain, int cbid, uint32_t stream,
                                                   const char* name, uint32_t n_kernels,
                                                   uint64_t duration_ns) {
  uint64_t cost = st().launch_cost + queue_wait(stream);
  return api_call(domain, cbid, cost, [&](uint32_t corr, uint64_t, uint64_t t_end) {
    State& s = st();
    std::lock_guard<std::mutex> lock(s.mu);
    uint64_t t = schedule(s, stream, t_end + s.submit_latency, n_kernels * duration_ns);
    if (kernel_kind(s) < 0) return;
    uint32_t graph = s.next_graph++;
    const char* n = stable_name(s, name);
    for (uint32_t i = 0; i < n_kernels; ++i) {
      if (s.version >= 130000)
        write_kernel<CUpti_ActivityKernel10>(s, corr, stream, n, t, t + duration_ns, 0, 0, graph,
                                             i + 1);
      else
        write_kernel<CUpti_ActivityKernel9>(s, corr, stream, n, t, t + duration_ns, 0, 0, graph,
                                            i + 1);
      t += duration_ns;
    }
  });
}

// An async memcpy (is_set = 0) or memset (is_set = 1).
DOUBLE_API uint32_t skipnative_double_copy(int domain, int cbid, uint32_t stream, uint64_t bytes,
                                           uint64_t duration_ns, int is_set) {
  uint64_t cost = st().launch_cost + queue_wait(stream);
  return api_call(domain, cbid, cost, [&](uint32_t corr, uint64_t, uint64_t t_end) {
    State& s = st();
    std::lock_guard<std::mutex> lock(s.mu);
    uint64_t start = schedule(s, stream, t_end + s.submit_latency, duration_ns);
    int kind = is_set ? CUPTI_ACTIVITY_KIND_MEMSET : CUPTI_ACTIVITY_KIND_MEMCPY;
    if (!s.enabled_kinds.count(kind)) return;
    if (is_set)
      write_set(s, corr, stream, bytes, start, start + duration_ns);
    else if (s.version >= 130000)
      write_copy<CUpti_ActivityMemcpy6>(s, corr, stream, bytes, start, start + duration_ns);
    else
      write_copy<CUpti_ActivityMemcpy5>(s, corr, stream, bytes, start, start + duration_ns);
  });
}

// An API call that does no GPU work (e.g. a launch into a capturing stream).
DOUBLE_API uint32_t skipnative_double_call(int domain, int cbid) {
  return api_call(domain, cbid, st().launch_cost, [](uint32_t, uint64_t, uint64_t) {});
}

// cudaEventRecord(event, stream): the event completes when the work queued on
// `stream` so far has ended. A CUDA_EVENT record (CudaEvent2 with its
// cudaEventSyncId from CUPTI 12.8, API version 26; the first version before).
DOUBLE_API uint32_t skipnative_double_event_record(int domain, int cbid, uint32_t stream,
                                                   uint32_t event) {
  return api_call(domain, cbid, st().launch_cost, [&](uint32_t corr, uint64_t, uint64_t) {
    State& s = st();
    std::lock_guard<std::mutex> lock(s.mu);
    const uint64_t sync = s.next_event_sync++;
    s.events[event] = {s.stream_free[stream], sync};
    if (!s.enabled_kinds.count(CUPTI_ACTIVITY_KIND_CUDA_EVENT)) return;
    CUpti_ActivityCudaEvent2 r;
    std::memset(&r, 0, sizeof(r));
    r.kind = CUPTI_ACTIVITY_KIND_CUDA_EVENT;
    r.correlationId = corr;
    r.contextId = 1;
    r.streamId = stream;
    r.eventId = event;
    r.deviceId = s.device;
    r.cudaEventSyncId = sync;
    commit_versioned(s, r);
  });
}

namespace {
// A SYNCHRONIZATION record of `type` for call `corr` on `stream` (caller holds s.mu).
void commit_synchronization(State& s, CUpti_ActivitySynchronizationType type, uint32_t corr,
                            uint64_t t_begin, uint64_t t_end, uint32_t stream, uint32_t event,
                            uint64_t sync_id) {
  if (!s.enabled_kinds.count(CUPTI_ACTIVITY_KIND_SYNCHRONIZATION)) return;
  CUpti_ActivitySynchronization2 r;
  std::memset(&r, 0, sizeof(r));
  r.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
  r.type = type;
  const int64_t off = clock_offset(s);
  r.start = at(off, t_begin);
  r.end = at(off, t_end);
  r.correlationId = corr;
  r.contextId = 1;
  r.streamId = stream;
  r.cudaEventId = event;
  r.cudaEventSyncId = sync_id;
  commit_versioned(s, r);
}
}  // namespace

// cudaStreamWaitEvent(stream, event): work queued on `stream` from now on starts
// after the event's recorded work has ended. A SYNCHRONIZATION record of type
// STREAM_WAIT_EVENT (Synchronization2 with the record's cudaEventSyncId from API
// version 26; the first version before).
DOUBLE_API uint32_t skipnative_double_stream_wait_event(int domain, int cbid, uint32_t stream,
                                                        uint32_t event) {
  return api_call(
      domain, cbid, st().launch_cost, [&](uint32_t corr, uint64_t t_begin, uint64_t t_end) {
        State& s = st();
        std::lock_guard<std::mutex> lock(s.mu);
        auto it = s.events.find(event);
        if (it != s.events.end())
          s.stream_free[stream] = std::max(s.stream_free[stream], it->second.first);
        commit_synchronization(
            s, CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT, corr, t_begin, t_end, stream,
            event, it != s.events.end() ? it->second.second : CUPTI_SYNCHRONIZATION_INVALID_VALUE);
      });
}

// At most `depth` unfinished kernels per stream (0: unbounded).
DOUBLE_API void skipnative_double_set_queue_depth(uint32_t depth) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.queue_depth = depth;
  s.pending.clear();
}

// A synchronising call: returns when every simulated stream is idle.
DOUBLE_API uint32_t skipnative_double_sync(int domain, int cbid) {
  State& s = st();
  uint64_t idle;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    idle = 0;
    for (auto& [stream, t] : s.stream_free) idle = std::max(idle, t);
  }
  uint64_t t = now_ns() + s.launch_cost;
  uint64_t cost = s.launch_cost + (idle > t ? idle - t : 0);
  return api_call(domain, cbid, cost, [](uint32_t, uint64_t, uint64_t) {});
}

// cudaStreamSynchronize(stream): returns when `stream` is idle (other streams may
// run on). A SYNCHRONIZATION record of type STREAM_SYNCHRONIZE.
DOUBLE_API uint32_t skipnative_double_stream_sync(int domain, int cbid, uint32_t stream) {
  State& s = st();
  uint64_t idle;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.stream_free.find(stream);
    idle = it == s.stream_free.end() ? 0 : it->second;
  }
  uint64_t t = now_ns() + s.launch_cost;
  uint64_t cost = s.launch_cost + (idle > t ? idle - t : 0);
  return api_call(domain, cbid, cost, [&](uint32_t corr, uint64_t t_begin, uint64_t t_end) {
    std::lock_guard<std::mutex> lock(s.mu);
    commit_synchronization(s, CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE, corr, t_begin,
                           t_end, stream, CUPTI_SYNCHRONIZATION_INVALID_VALUE,
                           CUPTI_SYNCHRONIZATION_INVALID_VALUE);
  });
}

// cudaEventSynchronize(event): returns when the work recorded by the event's
// latest record has ended (at once for an event never recorded). A
// SYNCHRONIZATION record of type EVENT_SYNCHRONIZE, with no stream (CUPTI names
// none) and the record's cudaEventSyncId as a stream wait has.
DOUBLE_API uint32_t skipnative_double_event_sync(int domain, int cbid, uint32_t event) {
  State& s = st();
  uint64_t idle = 0, sync = CUPTI_SYNCHRONIZATION_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.events.find(event);
    if (it != s.events.end()) std::tie(idle, sync) = it->second;
  }
  uint64_t t = now_ns() + s.launch_cost;
  uint64_t cost = s.launch_cost + (idle > t ? idle - t : 0);
  return api_call(domain, cbid, cost, [&](uint32_t corr, uint64_t t_begin, uint64_t t_end) {
    std::lock_guard<std::mutex> lock(s.mu);
    commit_synchronization(s, CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_EVENT_SYNCHRONIZE, corr, t_begin,
                           t_end, CUPTI_SYNCHRONIZATION_INVALID_VALUE, event, sync);
  });
}

DOUBLE_API int skipnative_double_subscribed() {
  std::lock_guard<std::mutex> lock(st().mu);
  return st().subscribed ? 1 : 0;
}
DOUBLE_API int skipnative_double_enabled_callbacks() {
  std::lock_guard<std::mutex> lock(st().mu);
  return int(st().enabled_callbacks.size());
}
DOUBLE_API int skipnative_double_enabled_kinds() {
  std::lock_guard<std::mutex> lock(st().mu);
  return int(st().enabled_kinds.size());
}
DOUBLE_API int skipnative_double_latency_enabled() { return st().latency ? 1 : 0; }
DOUBLE_API int skipnative_double_has_timestamp_callback() { return st().timestamp ? 1 : 0; }
// Calls the registered timestamp callback, as CUPTI does from its own threads.
DOUBLE_API uint64_t skipnative_double_call_timestamp_callback() {
  CUpti_TimestampCallbackFunc f;
  {
    std::lock_guard<std::mutex> lock(st().mu);
    f = st().timestamp;
  }
  return f ? f() : 0;
}
DOUBLE_API uint64_t skipnative_double_records_written() { return st().records_written; }
DOUBLE_API uint64_t skipnative_double_buffers_requested() { return st().buffers_requested; }
DOUBLE_API uint64_t skipnative_double_finalized() {
  std::lock_guard<std::mutex> lock(st().mu);
  return st().finalized;
}
DOUBLE_API uint64_t skipnative_double_device_buffer_bytes() { return st().device_buffer_bytes; }
DOUBLE_API int skipnative_double_zeroed_buffers() { return st().zeroed_buffers ? 1 : 0; }
DOUBLE_API int skipnative_double_host_pinned() { return st().host_pinned ? 1 : 0; }
DOUBLE_API uint64_t skipnative_double_callbacks_enabled() {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.enabled_callbacks.size();
}
DOUBLE_API uint64_t skipnative_double_api_records_enabled() {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.api_records.size();
}
DOUBLE_API int skipnative_double_kind_enabled(int kind) {
  State& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.enabled_kinds.count(kind) ? 1 : 0;
}
DOUBLE_API uint64_t skipnative_double_dirty_buffers() { return st().dirty_buffers; }
