// What CUPTI calls: the launch callback (the hot path), the activity-buffer
// callbacks and the timestamp callback, and the process-wide state they read
// (cupti/callback_state.h). The session's lifecycle is in session.cpp.
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

#include "core/alloc_fault.h"
#include "cupti/api_table.h"
#include "cupti/callback_state.h"
#include "cupti/fork_lock.h"
#include "cupti/session.h"
#include "cupti/stream_keys.h"

namespace skipnative {

namespace callback_state {

std::atomic<Session*> session{nullptr};
std::atomic<LaunchBuffers*> buffers{nullptr};
std::atomic<uint64_t> generation{1};
std::atomic<uint64_t> records_without_flag{0};
std::atomic<const ApiKindTable*> kinds{nullptr};
std::atomic<int> buffer_callbacks_running{0};
std::atomic<bool> benchmarking{false};
std::atomic<PushExternalFn> push_external{nullptr};
std::atomic<PopExternalFn> pop_external{nullptr};
thread_local bool flushing_at_stop = false;

namespace {
const ClockParams kNoClock{};  // read before any clock is published (monotonic_raw)
std::mutex clocks_mu;
[[maybe_unused]] const int clocks_mu_fork = hold_across_fork<clocks_mu>();
// never destroyed: CUPTI may call the timestamp callback while static
// destructors run at exit (a thread still timestamping, no cuptiFinalize)
std::unique_ptr<ClockParams>* const clocks_kept = new std::unique_ptr<ClockParams>[kClocksKept];
unsigned clocks_published = 0;
std::atomic<PausePoint> pause_point{nullptr};
}  // namespace

std::atomic<const ClockParams*> current_clock{&kNoClock};
std::atomic<bool> refusal_safe{false};

// CUPTI keeps this registered after stop (until cuptiFinalize): it reads the
// last published clock, which stays valid.
uint64_t CUPTIAPI timestamp_callback() {
  const ClockParams& c = clock();
  return ticks_to_ns(c, read_ticks(c));
}

const ClockParams* publish_clock(const ClockParams& c) {
  std::lock_guard<std::mutex> lock(clocks_mu);
  auto& slot = clocks_kept[clocks_published++ % kClocksKept];
  auto next = std::make_unique<ClockParams>(c);
  current_clock.store(next.get(), std::memory_order_release);
  slot = std::move(next);  // frees the clock published kClocksKept times ago
  return slot.get();
}

void pause_at(const char* where) {
  PausePoint f = pause_point.load(std::memory_order_acquire);
  if (__builtin_expect(f != nullptr, 0)) f(where);
}

}  // namespace callback_state

namespace cs = callback_state;

namespace {

constexpr size_t kOrphanBufferBytes = 1u << 20;

struct Slot {
  ThreadBuffer* tb = nullptr;
  uint64_t generation = 0;
  int32_t depth = 0;  // subscribed API calls open on this thread
};
// initial-exec: the extension is dlopen'ed, and the default TLS model would make
// every hot-path access a __tls_get_addr call. A few small variables fit in the
// static TLS space glibc reserves for such modules.
__attribute__((tls_model("initial-exec"))) thread_local Slot t_slot;
__attribute__((tls_model("initial-exec"))) thread_local uint32_t t_tid = 0;

// Each thread that records launches, or whose hook sink calls CUPTI's push or
// pop, has a flag, set while it is inside one (close_external and
// wait_for_records wait for it). Taken on the thread's first record or hooked
// call and given back at its exit, for a later thread; never freed, so the list
// may be walked at any time.
struct alignas(64) ExternalUser {
  std::atomic<bool> inside{false};
  std::atomic<bool> taken{true};
  ExternalUser* next = nullptr;  // fixed once the flag is on the list
};
std::atomic<ExternalUser*> g_external_users{nullptr};
__attribute__((tls_model("initial-exec"))) thread_local ExternalUser* t_external_user = nullptr;

void give_back_external_user(void* u) {
  static_cast<ExternalUser*>(u)->taken.store(false, std::memory_order_release);
  t_external_user = nullptr;
}
pthread_key_t g_external_user_key;
const bool g_external_user_key_made =
    pthread_key_create(&g_external_user_key, &give_back_external_user) == 0;

// This thread's flag; nullptr out of memory (the caller then pushes nothing).
ExternalUser* external_user() noexcept {
  if (ExternalUser* u = t_external_user) return u;
  if (allocation_fails("launch_flag")) return nullptr;  // test seam, as if none could be had
  ExternalUser* u = g_external_users.load(std::memory_order_seq_cst);
  for (; u != nullptr; u = u->next) {
    bool free_flag = false;
    if (u->taken.compare_exchange_strong(free_flag, true, std::memory_order_acq_rel)) break;
  }
  if (u == nullptr) {
    u = new (std::nothrow) ExternalUser;
    if (u == nullptr) return nullptr;
    u->next = g_external_users.load(std::memory_order_relaxed);
    while (!g_external_users.compare_exchange_weak(u->next, u, std::memory_order_seq_cst)) {
    }
  }
  if (g_external_user_key_made) pthread_setspecific(g_external_user_key, u);
  t_external_user = u;
  return u;
}

inline void record(Slot& slot, const LaunchRecord& r);

}  // namespace

void set_pause_point(PausePoint f) { cs::pause_point.store(f, std::memory_order_release); }

uint32_t current_tid() {
  if (t_tid == 0) t_tid = uint32_t(syscall(SYS_gettid));
  return t_tid;
}

Session* active_session() { return cs::session.load(std::memory_order_acquire); }

void Session::on_api(void*, CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
                     const void* cbdata) {
  const auto* info = static_cast<const CUpti_CallbackData*>(cbdata);
  Slot& slot = t_slot;
  if (info->callbackSite == CUPTI_API_ENTER) {
    const uint64_t gen = cs::generation.load(std::memory_order_relaxed);
    if (__builtin_expect(slot.generation != gen, 0)) {
      slot.generation = gen;
      slot.tb = nullptr;
      slot.depth = 0;
    }
    // Only the outermost call is recorded: the runtime calls the driver's public
    // launch APIs (cudaGraphLaunch -> cuGraphLaunch, cudaLaunchKernel ->
    // cuLaunchKernel), and CUPTI reports the inner call with the same
    // correlation id. correlationData is shared with this call's exit callback.
    *info->correlationData = slot.depth++ == 0 ? read_ticks(cs::clock()) : 0;
    return;
  }
  const uint64_t t_end = read_ticks(cs::clock());
  if (slot.depth > 0) --slot.depth;
  const uint64_t t_begin = *info->correlationData;
  if (t_begin == 0) return;  // nested, or entered before this session
  const uint8_t dom = domain == CUPTI_CB_DOMAIN_DRIVER_API ? 1 : 0;
  record(slot, LaunchRecord{t_begin, t_end, info->correlationId, uint16_t(cbid), dom,
                            cs::kinds.load(std::memory_order_relaxed)->kind(dom, cbid)});
}

namespace {

// Into this thread's launch buffer of the current session, if one is capturing.
// Made with this thread's flag set (a store, then the generation's load, both
// sequentially consistent, against a stop's bump of the generation, then its
// loads of the flags in wait_for_records): a stop never frees buffers a record
// is writing into.
inline void record(Slot& slot, const LaunchRecord& r) {
  ExternalUser* u = external_user();
  if (u == nullptr) {  // out of memory for a 64-byte flag: nothing is safe to write
    cs::records_without_flag.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const bool was_inside = u->inside.exchange(true, std::memory_order_seq_cst);
  if (__builtin_expect(
          slot.tb == nullptr || slot.generation != cs::generation.load(std::memory_order_seq_cst),
          0)) {
    // The generation is read before the buffers, and kept with them: if a stop
    // and a start come between the two reads, the generation is stale and the
    // next call attaches again, to the new session's buffers.
    const uint64_t gen = cs::generation.load(std::memory_order_seq_cst);
    LaunchBuffers* lb = cs::buffers.load(std::memory_order_acquire);
    slot.tb = nullptr;
    if (lb != nullptr) {
      cs::pause_at("attach");
      slot.tb = lb->attach(current_tid());  // nullptr out of memory: counted by attach()
      slot.generation = gen;
    }
  }
  if (slot.tb != nullptr) LaunchBuffers::push(slot.tb, r);
  u->inside.store(was_inside, std::memory_order_release);
}

// The launch hooks' sinks. A hooked call is recorded as a driver call; its
// record's correlation id is what enter() gave it until stop() maps it to
// CUPTI's: the external correlation id pushed around the real call (hook_join
// "external"; 0 where none was pushed, and only a pushed id is popped), or the
// key of the call's stream (hook_join "order", cupti/stream_keys.h).
std::atomic<uint32_t> g_next_external{1};

void record_hooked(uint64_t t_begin, uint64_t t_end, uint32_t id, uint16_t cbid) {
  Slot& slot = t_slot;
  const uint64_t gen = cs::generation.load(std::memory_order_relaxed);
  if (__builtin_expect(slot.generation != gen, 0)) slot.tb = nullptr;
  record(slot, LaunchRecord{t_begin, t_end, id, cbid, 1,
                            cs::kinds.load(std::memory_order_relaxed)->kind(1, cbid)});
}

uint64_t enter_external(const SkipnativeHookCall*, uint32_t* external_id) {
  *external_id = 0;
  if (cs::push_external.load(std::memory_order_relaxed) != nullptr) {
    cs::CuptiUseScope inside;
    auto push = inside ? cs::push_external.load(std::memory_order_seq_cst) : nullptr;
    if (push != nullptr) {
      uint32_t id = g_next_external.fetch_add(1, std::memory_order_relaxed);
      if (id == 0) id = g_next_external.fetch_add(1, std::memory_order_relaxed);
      push(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, id);
      *external_id = id;
    }
  }
  return read_ticks(cs::clock());
}

void exit_external(uint64_t t_begin, uint32_t external_id, uint16_t cbid, int) {
  const uint64_t t_end = read_ticks(cs::clock());
  if (external_id != 0 && t_external_user != nullptr) {
    cs::CuptiUseScope inside;
    uint64_t popped = 0;
    if (auto pop = inside ? cs::pop_external.load(std::memory_order_seq_cst) : nullptr)
      pop(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &popped);
  }
  record_hooked(t_begin, t_end, external_id, cbid);
}

uint64_t enter_order(const SkipnativeHookCall* call, uint32_t* key) {
  *key = stream_keys::kNone;
  if (call->has_stream &&
      enqueues_work(ApiKind(cs::kinds.load(std::memory_order_relaxed)->kind(1, call->cbid))))
    *key = call->captured ? stream_keys::kCaptured : stream_keys::key(*call);
  return read_ticks(cs::clock());
}

void exit_order(uint64_t t_begin, uint32_t key, uint16_t cbid, int result) {
  // a failed call enqueued nothing: out of the join, as a captured one
  if (result != 0 && key != stream_keys::kNone && key != stream_keys::kCaptured)
    key = stream_keys::kFailed;
  record_hooked(t_begin, read_ticks(cs::clock()), key, cbid);
}

const SkipnativeHookSink kExternalSink{&enter_external, &exit_external};
const SkipnativeHookSink kOrderSink{&enter_order, &exit_order};

}  // namespace

const SkipnativeHookSink* hook_sink(HookJoin join) {
  return join == HookJoin::kOrder ? &kOrderSink : &kExternalSink;
}

namespace callback_state {

CuptiUseScope::CuptiUseScope() : flag_(nullptr) {
  if (ExternalUser* u = external_user()) {
    flag_ = &u->inside;
    flag_->store(true, std::memory_order_seq_cst);
  }
}

CuptiUseScope::~CuptiUseScope() {
  if (flag_ != nullptr) flag_->store(false, std::memory_order_release);
}

void open_external(PushExternalFn push, PopExternalFn pop) {
  pop_external.store(pop, std::memory_order_seq_cst);
  push_external.store(push, std::memory_order_seq_cst);
}

void close_external() {
  push_external.store(nullptr, std::memory_order_seq_cst);
  pop_external.store(nullptr, std::memory_order_seq_cst);
  wait_for_records();  // the same flags: no push or pop is in flight either
}

void wait_for_records() {
  for (ExternalUser* u = g_external_users.load(std::memory_order_seq_cst); u != nullptr;
       u = u->next)
    while (u->inside.load(std::memory_order_seq_cst)) std::this_thread::yield();
}

void external_after_fork() {
  // no push or pop from the child: it inherits CUPTI as the parent's threads
  // left it (a lock held at the fork would hang it), and records nothing
  push_external.store(nullptr);
  pop_external.store(nullptr);
  for (ExternalUser* u = g_external_users.load(); u != nullptr; u = u->next) {
    u->inside.store(false);
    if (u != t_external_user) u->taken.store(false);
  }
}

}  // namespace callback_state

// Buffer refusal: a null buffer from the request callback tells CUPTI to drop
// the records it has no room for. CUPTI before API version 27 (CUDA 12.9) can
// crash on it (libkineto: "rejecting buffers can crash CUPTI before 12.9"), so
// there a request past the pool's cap gets a spill buffer instead: CUPTI fills
// it, and its records are counted (records_spilled), not decoded. Only from
// version 27 is a request refused (buffers_refused). Where no memory is left
// for a spill buffer, there is nothing to hand out and the request is refused
// whatever the version; so too below the cap, where a pool buffer cannot be
// allocated (buffers_unallocated: asked once more first where refusing is unsafe).
uint8_t* Session::acquire_buffer() {
  std::lock_guard<std::mutex> lock(buffers_mu_);
  if (handed_out_.size() >= opts_.max_activity_buffers) {
    if (!buffer_refusal_safe(version_)) return spill_buffer();
    ++stats_.buffers_refused;
    return nullptr;
  }
  uint8_t* b;
  if (!free_buffers_.empty()) {
    b = free_buffers_.back();
    free_buffers_.pop_back();
  } else {
    // zeroed (and, from the kernel, not yet touched): CUPTI is told the buffers
    // it gets are zero, so it does not clear them on the launching thread
    auto allocate = [&] {
      return allocation_fails("activity_buffer")
                 ? nullptr
                 : static_cast<uint8_t*>(std::calloc(1, cs::rounded(opts_.activity_buffer_bytes)));
    };
    b = allocate();
    if (b == nullptr && !buffer_refusal_safe(version_)) b = allocate();
    if (b == nullptr) return refuse_unallocated();
  }
  try {
    handed_out_.insert(b);
  } catch (...) {  // out of memory (a C caller: nothing may throw): refused
    std::free(b);
    return refuse_unallocated();
  }
  stats_.max_buffers_in_use = std::max<uint64_t>(stats_.max_buffers_in_use, handed_out_.size());
  return b;
}

uint8_t* Session::refuse_unallocated() {  // caller holds buffers_mu_
  ++stats_.buffers_refused;
  ++stats_.buffers_unallocated;
  return nullptr;
}

void Session::count_cupti_dropped(size_t n) {  // caller holds decode_mu_
  std::lock_guard<std::mutex> lock(buffers_mu_);
  const bool oom =
      stats_.buffers_unallocated && stats_.buffers_unallocated == stats_.buffers_refused;
  (oom ? stats_.records_unallocated : stats_.cupti_dropped) += n;
}

uint8_t* Session::spill_buffer() {  // caller holds buffers_mu_
  auto* b = static_cast<uint8_t*>(std::calloc(1, cs::rounded(opts_.activity_buffer_bytes)));
  if (b == nullptr) {
    ++stats_.buffers_refused;
    return nullptr;
  }
  try {
    spilled_.push_back(b);
  } catch (...) {  // out of memory: refused
    std::free(b);
    ++stats_.buffers_refused;
    return nullptr;
  }
  ++stats_.buffers_spilled;
  return b;
}

Session::BufferOrigin Session::buffer_origin(uint8_t* b) {
  std::lock_guard<std::mutex> lock(buffers_mu_);
  auto it = std::find(spilled_.begin(), spilled_.end(), b);
  if (it != spilled_.end()) {
    spilled_.erase(it);
    return BufferOrigin::kSpill;
  }
  return handed_out_.count(b) ? BufferOrigin::kPool : BufferOrigin::kOther;
}

void Session::release_buffer(uint8_t* b) {
  // Cleared here, off the launching threads (CUPTI completes buffers on its own
  // thread or in a flush); all of it, whatever CUPTI reported as valid. Not at
  // stop, where clearing is wasted: freed instead, never pooled, for CUPTI may
  // still ask for a buffer before the stop's last flush, and is told that the
  // ones it gets are zero (a request then gets a new, zeroed one).
  const bool stopping = stopping_.load(std::memory_order_relaxed);
  if (!stopping) std::memset(b, 0, cs::rounded(opts_.activity_buffer_bytes));
  std::lock_guard<std::mutex> lock(buffers_mu_);
  handed_out_.erase(b);
  if (stopping) {
    std::free(b);
    return;
  }
  try {
    free_buffers_.push_back(b);
  } catch (...) {  // out of memory: not pooled
    std::free(b);
  }
}

void Session::on_buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  cs::BufferCallbackScope running;
  Session* s = cs::session.load();
  *max_records = 0;
  if (s != nullptr) {
    *buffer = s->acquire_buffer();
    *size = *buffer ? cs::rounded(s->opts_.activity_buffer_bytes) : 0;
  } else if (cs::refusal_safe.load()) {
    *buffer = nullptr;
    *size = 0;
  } else {  // no session to deliver to: a buffer that on_buffer_completed frees
    *buffer = static_cast<uint8_t*>(std::calloc(1, kOrphanBufferBytes));
    *size = *buffer ? kOrphanBufferBytes : 0;
  }
}

void Session::on_buffer_completed(CUcontext ctx, uint32_t stream, uint8_t* buffer, size_t,
                                  size_t valid) {
  cs::BufferCallbackScope running;
  Session* s = cs::session.load();
  if (s == nullptr) {
    std::free(buffer);  // delivered after its session stopped
    return;
  }
  cs::pause_at("deliver");
  const bool pinned = s->pin_completion_thread();
  // A buffer from outside this session (an orphan, or an earlier session's) may
  // hold this session's records too (CUPTI fills the buffer it has): decoded,
  // then freed, never put in this session's pool.
  const BufferOrigin origin = buffer != nullptr ? s->buffer_origin(buffer) : BufferOrigin::kOther;
  const bool spilled = origin == BufferOrigin::kSpill;
  {
    std::lock_guard<std::mutex> lock(s->decode_mu_);
    if (pinned) s->stats_.completion_pinned = true;
    DecodeTarget t{&s->kernels_,
                   &s->copies_,
                   &s->names_,
                   s->opts_.max_gpu_records,
                   &s->stats_.gpu_rows_dropped,
                   &s->stats_.records_ignored,
                   &s->name_cache_,
                   s->source_ == LaunchRecords::kActivity ? &s->api_rows_ : nullptr,
                   s->opts_.max_launch_bytes / sizeof(LaunchRow),
                   &s->api_rows_dropped_,
                   s->source_ == LaunchRecords::kHook ? &s->external_ : nullptr,
                   s->opts_.overhead_records ? &s->stats_.cupti_overhead : nullptr,
                   &s->stats_.gpu_rows_incomplete,
                   &s->stats_.records_unallocated,
                   s->opts_.stream_waits ? &s->events_ : nullptr,
                   s->version_ >= kEventSyncIdVersion};
    if (spilled)
      s->stats_.records_spilled += count_records(*s->api_, buffer, valid);
    else if (buffer != nullptr && valid > 0)
      decode_buffer(*s->api_, s->layout_, buffer, valid, t);
    size_t dropped = 0;
    if (s->api_->ActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS)
      s->count_cupti_dropped(dropped);
    ++s->stats_.buffers_completed;
  }
  if (origin == BufferOrigin::kPool)
    s->release_buffer(buffer);
  else
    std::free(buffer);
}

}  // namespace skipnative

namespace skipnative {

// completion_cpu: the thread CUPTI completes buffers on (its own, or a flush's)
// is moved to that CPU once, away from the launching threads' cores. Not the
// thread in stop(): an application thread, which launches again afterwards.
// True when it moved this thread now (the caller counts it, under the decode lock).
bool Session::pin_completion_thread() {
  static thread_local int pinned = -2;
  if (opts_.completion_cpu < 0 || cs::flushing_at_stop || pinned == opts_.completion_cpu)
    return false;
  // a thread that recorded launches is the application's (it completes a buffer
  // in a flush of its own): pinned, it would stay on that CPU for good
  if (t_slot.tb != nullptr || t_external_user != nullptr) return false;
  pinned = opts_.completion_cpu;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(opts_.completion_cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

}  // namespace skipnative
