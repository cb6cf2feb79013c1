// A capture session: the CUPTI subscriber, the launch callbacks, the activity
// buffers and the clock. One session at a time per process (CUPTI allows one
// subscriber); a finished session keeps its results until it is destroyed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/records.h"
#include "core/string_table.h"
#include "core/thread_buffers.h"
#include "cupti/decode.h"
#include "cupti/launch_hooks.h"
#include "cupti/loader.h"
#include "cupti/stream_keys.h"

namespace skipnative {

// Where launch-call times come from: skipnative's enter/exit callbacks, or
// CUPTI's API activity records for the same launch APIs (by cbid; CUPTI takes
// the timestamps, the records arrive with the kernels'), or the launch hooks
// (cupti/launch_hooks.h: the driver's entry points wrapped where libraries
// resolve them; no CUPTI callback; joined to kernels by external correlation).
enum class LaunchRecords : uint8_t { kCallbacks, kActivity, kHook };
inline const char* launch_records_name(LaunchRecords v) {
  return v == LaunchRecords::kActivity ? "activity"
         : v == LaunchRecords::kHook   ? "hook"
                                       : "callbacks";
}

// How a hook capture joins its launches to their GPU work: by CUPTI's external
// correlation records (which CUPTI writes only beside API records, so the
// hooked calls' API records are enabled), or by per-stream order (no CUPTI
// record beyond the GPU activity: core/order_join.h).
enum class HookJoin : uint8_t { kExternal, kOrder };
inline const char* hook_join_name(HookJoin v) {
  return v == HookJoin::kOrder ? "order" : "external";
}

// Which launch-API domains are subscribed: bit 0 runtime API, bit 1 driver API.
struct ApiDomains {
  uint32_t bits = 3;
  bool has(uint32_t domain) const { return bits & (1u << domain); }
};

// The capture options, defined once: X(type, name, default). SessionOptions'
// fields, the Python dict the bindings accept (by these names), the options a
// capture's metadata reports and the defaults Python's Capture signature is
// checked against (tests/unit/test_capture_options.py) all come from this list.
// Python's Capture documents each one.
#define SKIPNATIVE_CAPTURE_OPTIONS(X)                                                              \
  X(std::string, clock, "auto")                                                                    \
  X(bool, latency_timestamps, false)                                                               \
  X(bool, memcpy, true)                                                                            \
  X(bool, memset, true)                                                                            \
  X(bool, kernel_activity, true)  /* CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL */                      \
  X(bool, serial_kernels, false)  /* CUPTI_ACTIVITY_KIND_KERNEL instead (serialises) */            \
  X(bool, launch_callbacks, true) /* enter/exit callbacks on the launch APIs */                    \
  X(LaunchRecords, launch_records, LaunchRecords::kCallbacks)                                      \
  X(HookJoin, hook_join, HookJoin::kExternal)                                                      \
  X(ApiDomains, api_domains, ApiDomains{})                                                         \
  X(std::optional<bool>, finalize, std::nullopt) /* cuptiFinalize at stop; none: auto */           \
  X(size_t, device_buffer_bytes, 0) /* CUPTI_ACTIVITY_ATTR_DEVICE_BUFFER_SIZE; 0: CUPTI's */       \
  X(bool, hw_trace, false)          /* kernel timestamps from the Hardware Event System */         \
  X(bool, overhead_records, false)  /* CUPTI_ACTIVITY_KIND_OVERHEAD, summed by kind */             \
  X(bool, stream_waits, false)      /* CUDA_EVENT + SYNCHRONIZATION: which record a wait is on */  \
  X(bool, device_buffer_host_pinned, false) /* CUPTI's device buffer in pinned host memory */      \
  X(size_t, device_buffer_pre_allocate, 0)  /* ..._PRE_ALLOCATE_VALUE; 0: CUPTI's */               \
  X(size_t, device_buffer_pool_limit, 0)    /* ..._DEVICE_BUFFER_POOL_LIMIT; 0: CUPTI's */         \
  X(size_t, activity_buffer_bytes, 4u << 20)                                                       \
  X(size_t, max_activity_buffers, 64)   /* cap on buffers held at once */                          \
  X(size_t, activity_buffers_pooled, 0) /* zeroed at start, off the launching threads */           \
  X(int, completion_cpu, -1)            /* pin the buffer-completion thread to this CPU; -1: no */ \
  X(size_t, launch_chunk_records, 16384)                                                           \
  X(size_t, max_launch_bytes, 512u << 20)                                                          \
  X(size_t, max_gpu_records, 64u << 20)

// The first CUPTI API version that writes CudaEvent2 / Synchronization2 (CUDA
// 12.8): records that carry cudaEventSyncId, the exact join of a wait to its record.
constexpr uint32_t kEventSyncIdVersion = 26;

// The largest activity buffer a capture asks for (CUPTI fills buffers of a few MB;
// a size near 2^64 would wrap when rounded up to 8 bytes).
constexpr size_t kMaxActivityBufferBytes = size_t(1) << 30;

struct SessionOptions {
#define SKIPNATIVE_OPTION_FIELD(type, name, default_value) type name = default_value;
  SKIPNATIVE_CAPTURE_OPTIONS(SKIPNATIVE_OPTION_FIELD)
#undef SKIPNATIVE_OPTION_FIELD
  // Not capture options: set by the layers above.
  size_t launch_prealloc_chunks = 16;
  std::vector<std::string> wheel_dirs;  // nvidia-cuda-cupti lib folders on sys.path
};

class SessionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SessionStats {
  uint64_t launches_dropped = 0;     // launch records over max_launch_bytes
  uint64_t cupti_dropped = 0;        // CUPTI's count (no buffer space)
  uint64_t buffers_refused = 0;      // buffer requests refused (CUPTI >= 12.9 only; see below)
  uint64_t buffers_unallocated = 0;  // of those, refused for want of memory (and on any CUPTI)
  uint64_t buffers_spilled = 0;      // spill buffers handed out where refusing is unsafe
  uint64_t records_spilled = 0;      // records CUPTI wrote into spill buffers: counted, not kept
  uint64_t gpu_rows_dropped = 0;     // decoded rows over max_gpu_records
  uint64_t gpu_rows_incomplete = 0;  // records delivered unfinished (forced flush at stop)
  uint64_t records_unallocated = 0;  // records lost for want of memory (no cap reached)
  uint64_t records_ignored = 0;      // activity kinds not decoded
  // calls outside the window (begun before start() or after stop() was called,
  // or with no valid timestamps), and the GPU rows (kernels, copies, event
  // rows) of their correlation ids: left out
  uint64_t launches_outside = 0;
  uint64_t gpu_rows_outside = 0;
  uint64_t buffers_completed = 0;
  uint64_t max_buffers_in_use = 0;
  bool buffers_prezeroed = false;  // CUPTI accepted ZEROED_OUT_ACTIVITY_BUFFER
  // hook launches left without their GPU work: no external correlation record
  // (hook_join "external"), or no partner in their stream's order ("order";
  // also the GPU-work calls whose stream could not be found)
  uint64_t launches_unjoined = 0;
  // hook_join "order": calls that enqueued no work (into a stream capturing a
  // graph; failed), units of GPU work left without a call, and the pairs
  // checked by queued time, ambiguous and unverified (core/order_join.h)
  uint64_t launches_captured = 0;
  uint64_t launches_failed = 0;
  uint64_t work_unjoined = 0;
  uint64_t pairs_checked = 0;
  uint64_t pairs_ambiguous = 0;
  uint64_t pairs_unverified = 0;
  // launch_records = "hook" asked for but not possible: why (the capture used
  // the callbacks instead). Empty otherwise.
  std::string launch_hook_fallback;
  // launch_records = "hook": where CUPTI writes the API records that its external
  // correlation records come with ("per call", "driver domain"); empty otherwise.
  std::string hook_api_records;
  bool completion_pinned = false;  // the completion thread runs on completion_cpu
  OverheadTotals cupti_overhead;   // overhead_records: CUPTI's overhead records by kind
  std::vector<std::string> callbacks_unavailable;
};

class Session {
 public:
  explicit Session(SessionOptions opts);
  ~Session();

  void start();
  // Only in the process that started the session: a forked child gets an error
  // (and its destructor leaves the parent's CUPTI state alone).
  void stop();
  // Capturing, or stopping (its tables are not complete yet).
  bool active() const {
    const State st = state_.load(std::memory_order_acquire);
    return st == State::kActive || st == State::kStopping;
  }
  // The launch-record source in use: launch_records, or the callbacks where the
  // hooks could not be attached (stats().launch_hook_fallback says why).
  LaunchRecords launch_source() const { return source_; }
  // Stopped, with every result complete (another thread may read them from here).
  bool finished() const { return state_.load(std::memory_order_acquire) == State::kStopped; }
  void mark(const std::string& name);

  // Results, valid after stop() (the buffer callbacks append to them until then).
  const std::vector<LaunchRow>& launches() const { return launches_; }
  const std::vector<KernelRow>& kernels() const { return kernels_; }
  const std::vector<CopyRow>& copies() const { return copies_; }
  const std::vector<EventRow>& events() const { return events_; }
  const std::vector<MarkerRow>& markers() const { return markers_; }
  std::vector<std::string> strings() const { return names_.snapshot(); }
  const SessionStats& stats() const { return stats_; }
  const ClockParams& clock() const { return clock_; }
  const CuptiApi* api() const { return api_; }
  RecordLayout layout() const { return layout_; }
  uint32_t cupti_version() const { return version_; }
  bool finalized() const { return finalized_; }
  uint64_t t_start_ns() const { return t_start_ns_; }
  uint64_t t_stop_ns() const { return t_stop_ns_; }
  const SessionOptions& options() const { return opts_; }

  // f() with the results above consistent, for a reader on another thread
  // (metadata while the session starts, captures or stops): not while start()
  // or stop() runs, nor while a buffer callback writes the counters. In a
  // forked child, for a session of its parent, without the locks (a thread of
  // the parent may have held one at the fork, and none is left to release it).
  template <class F>
  auto read_consistent(F&& f) const {
    if (inherited()) return f();
    std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
    std::lock_guard<std::mutex> decode(decode_mu_);
    std::lock_guard<std::mutex> buffers(buffers_mu_);
    return f();
  }

  // The launch callback, exposed for the record-path benchmark.
  static void on_api(void* userdata, CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
                     const void* cbdata);

  // Whether a CUPTI of this API version may be refused a buffer (a null buffer
  // from the request callback). See acquire_buffer() in session.cpp.
  static bool buffer_refusal_safe(uint32_t version) { return version >= kSafeRefusalVersion; }
  static constexpr uint32_t kSafeRefusalVersion = 27;  // CUDA 12.9

 private:
  enum class State { kNew, kActive, kStopping, kStopped };

  static void on_buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records);
  static void on_buffer_completed(CUcontext ctx, uint32_t stream, uint8_t* buffer, size_t size,
                                  size_t valid);
  uint8_t* acquire_buffer();
  void release_buffer(uint8_t* b);
  uint8_t* spill_buffer();
  uint8_t* refuse_unallocated();  // a request refused for want of memory
  // CUPTI's count of records it had no buffer for: unallocated where every buffer
  // refused so far was refused for want of memory, else past the cap.
  void count_cupti_dropped(size_t n);
  // Where a completed buffer came from: this session's pool, a spill buffer
  // (taken off the list here), or neither (asked for while no session was
  // capturing, or by an earlier session).
  enum class BufferOrigin { kPool, kSpill, kOther };
  BufferOrigin buffer_origin(uint8_t* b);
  void check(CUptiResult r, const char* what);
  void enable_callbacks();
  void set_attributes();
  void enable_activity();
  void enable_hooked_api_records();
  void teardown_cupti(bool flush);
  void close_delivery();
  void wait_for_buffer_callbacks();
  bool should_finalize() const;
  void collect_launches();
  void append_api_rows();
  void drop_outside();
  void check_hw_trace();
  void enable_hw_trace();
  bool attach_hooks();
  std::string order_lookup();
  void join_by_order();
  void pool_buffers();
  bool pin_completion_thread();
  // In a forked child, a session its parent started.
  bool inherited() const;

  SessionOptions opts_;
  std::atomic<State> state_{State::kNew};
  // Held by start() and stop() throughout: what they write is read whole
  // (read_consistent) or not at all.
  mutable std::mutex lifecycle_mu_;
  const CuptiApi* api_ = nullptr;
  RecordLayout layout_ = RecordLayout::kCuda13;
  uint32_t version_ = 0;
  bool finalized_ = false;
  std::atomic<int> owner_pid_{0};      // the process that started the session
  bool host_pinned_set_ = false;       // MEM_ALLOCATION_TYPE_HOST_PINNED set by this session
  std::atomic<bool> stopping_{false};  // buffers completed now are not reused
  CUpti_SubscriberHandle subscriber_ = nullptr;
  ClockParams clock_;
  uint64_t t_start_ns_ = 0, t_stop_ns_ = 0;
  uint64_t start_ticks_ = 0, stop_ticks_ = 0;
  uint64_t flagless_at_start_ = 0;  // callback_state::records_without_flag then
  std::vector<CUpti_ActivityKind> enabled_kinds_;

  std::unique_ptr<LaunchBuffers> launch_buffers_;
  StringTable names_;

  mutable std::mutex buffers_mu_;
  std::vector<uint8_t*> free_buffers_;
  std::vector<uint8_t*> spilled_;            // spill buffers CUPTI holds now
  std::unordered_set<uint8_t*> handed_out_;  // pool buffers CUPTI holds now

  mutable std::mutex decode_mu_;
  std::unordered_map<const char*, std::pair<uint32_t, std::string>> name_cache_;
  std::vector<KernelRow> kernels_;
  std::vector<CopyRow> copies_;
  std::vector<EventRow> events_;  // stream_waits: event records and stream waits

  std::mutex markers_mu_;
  std::vector<MarkerRow> markers_;  // ticks until stop(), then ns
  bool markers_closed_ = false;     // stop() began: mark() is refused

  std::vector<LaunchRow> launches_;
  std::vector<LaunchRow> api_rows_;  // from API activity records (launch_activity)
  uint64_t api_rows_dropped_ = 0;    // over max_launch_bytes
  std::vector<std::pair<uint8_t, uint16_t>> api_records_on_;  // (domain, cbid) enabled
  bool hooks_attached_ = false;
  bool hw_trace_on_ = false;
  LaunchRecords source_ = LaunchRecords::kCallbacks;
  std::unordered_map<uint32_t, uint32_t> external_;  // hook id -> correlation id
  stream_keys::Lookup stream_lookup_;                // hook_join = "order"
  SessionStats stats_;
};

// The session the callbacks write to, if any.
Session* active_session();

// This process was forked while a session of its parent was capturing: CUPTI's
// subscriber here is that session's, inherited (what a refused start says).
bool forked_from_capture();

// Test seam: f(where) is called where a callback has read shared state and not
// yet used it: "attach" (a thread joins the launch buffers; once per thread per
// session) and "deliver" (a completed activity buffer, before decoding), and
// where stop() holds a process-wide lock: "retire" (the launch buffers kept
// for callbacks still in flight), and "stopped" (stop() has read its time and
// records on: a call made here is after the capture). Never on the per-record
// path. nullptr: none (the default).
using PausePoint = void (*)(const char* where);
void set_pause_point(PausePoint f);

// The record path measured without a GPU: n enter/exit callback pairs through
// Session::on_api into a fresh LaunchBuffers. Returns ns per record. Refused
// while a session captures, and no session starts while it (or
// bench_hook_path) runs. (cupti/record_bench.cpp)
double bench_record_path(size_t n, const std::string& clock);

// The launch-hook path measured without a GPU: n sink enter/exit pairs (what a
// wrapped driver call adds: two clock reads, the record, and for join
// "external" the external correlation push and pop when a CUPTI is loaded, for
// "order" the lookup of the call's stream, cached) into a fresh LaunchBuffers.
// ns per call.
double bench_hook_path(size_t n, const std::string& clock, const std::string& join);

// The sink the launch hooks call into for a join (cupti/callbacks.cpp).
const ::SkipnativeHookSink* hook_sink(HookJoin join);

// ns per clock read of the given kind (bare read_ticks).
double bench_clock_read(size_t n, const std::string& clock);

// This thread's OS id.
uint32_t current_tid();

}  // namespace skipnative
