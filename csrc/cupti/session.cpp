#include "cupti/session.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "cupti/api_table.h"
#include "cupti/callback_state.h"

namespace skipnative {

namespace callback_state {

std::atomic<Session*> session{nullptr};
std::atomic<LaunchBuffers*> buffers{nullptr};
std::atomic<uint64_t> generation{1};
std::atomic<const ApiKindTable*> kinds{nullptr};
std::atomic<int> buffer_callbacks_running{0};

namespace {
const ClockParams kNoClock{};  // read before any clock is published (monotonic_raw)
std::mutex clocks_mu;
std::unique_ptr<ClockParams> clocks_kept[kClocksKept];
unsigned clocks_published = 0;
std::atomic<PausePoint> pause_point{nullptr};
}  // namespace

std::atomic<const ClockParams*> current_clock{&kNoClock};

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

// A stopped session's launch buffers stay allocated until the next stop, so a
// callback still in flight when its session stopped never writes freed memory.
std::mutex g_retired_mu;
std::unique_ptr<LaunchBuffers> g_retired;

// Whether a buffer request with no session may be refused: false until a
// session of a CUPTI that tolerates refusal started (see acquire_buffer()).
std::atomic<bool> g_refusal_safe{false};
constexpr size_t kOrphanBufferBytes = 1u << 20;

struct Slot {
  ThreadBuffer* tb = nullptr;
  uint64_t generation = 0;
  int32_t depth = 0;  // subscribed API calls open on this thread
};
// initial-exec: the extension is dlopen'ed, and the default TLS model would make
// every hot-path access a __tls_get_addr call. Two small variables fit in the
// static TLS space glibc reserves for such modules.
__attribute__((tls_model("initial-exec"))) thread_local Slot t_slot;
__attribute__((tls_model("initial-exec"))) thread_local uint32_t t_tid = 0;

// CUPTI keeps this registered after stop (until cuptiFinalize): it reads the
// last published clock, which stays valid.
uint64_t CUPTIAPI timestamp_callback() {
  const ClockParams& c = cs::clock();
  return ticks_to_ns(c, read_ticks(c));
}

void after_fork_in_child() {
  // A forked child must not write into the parent's session (its copy of the
  // buffers is private, and CUDA is unusable after fork anyway).
  cs::session.store(nullptr);
  cs::buffers.store(nullptr);
  cs::generation.fetch_add(1);
}

std::once_flag g_atfork_once;

size_t rounded(size_t bytes) { return (bytes + 7) & ~size_t(7); }

}  // namespace

void set_pause_point(PausePoint f) { cs::pause_point.store(f, std::memory_order_release); }

uint32_t current_tid() {
  if (t_tid == 0) t_tid = uint32_t(syscall(SYS_gettid));
  return t_tid;
}

Session* active_session() { return cs::session.load(std::memory_order_acquire); }

Session::Session(SessionOptions opts) : opts_(std::move(opts)) {}

Session::~Session() {
  // In a forked child the session is the parent's: stopping it would tear down
  // the CUPTI state the child inherited. It is left alone (its memory is the
  // child's own copy, freed below).
  if (state_ == State::kActive && getpid() == owner_pid_) {
    try {
      stop();
    } catch (...) {
    }
  }
  std::lock_guard<std::mutex> lock(buffers_mu_);
  for (uint8_t* b : free_buffers_) std::free(b);
}

void Session::check(CUptiResult r, const char* what) {
  if (r != CUPTI_SUCCESS)
    throw SessionError(std::string(what) + " failed: " + api_->error_string(r));
}

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
  if (__builtin_expect(
          slot.tb == nullptr || slot.generation != cs::generation.load(std::memory_order_relaxed),
          0)) {
    // The generation is read before the buffers, and kept with them: if a stop
    // and a start come between the two reads, the generation is stale and the
    // next call attaches again, to the new session's buffers.
    const uint64_t gen = cs::generation.load(std::memory_order_acquire);
    LaunchBuffers* lb = cs::buffers.load(std::memory_order_acquire);
    if (lb == nullptr) return;
    cs::pause_at("attach");
    slot.tb = lb->attach(current_tid());
    slot.generation = gen;
  }
  const uint8_t dom = domain == CUPTI_CB_DOMAIN_DRIVER_API ? 1 : 0;
  LaunchBuffers::push(slot.tb,
                      LaunchRecord{t_begin, t_end, info->correlationId, uint16_t(cbid), dom,
                                   cs::kinds.load(std::memory_order_relaxed)->kind(dom, cbid)});
}

// Buffer refusal: a null buffer from the request callback tells CUPTI to drop
// the records it has no room for. CUPTI before API version 27 (CUDA 12.9) can
// crash on it (libkineto: "rejecting buffers can crash CUPTI before 12.9"), so
// there a request past the pool's cap gets a spill buffer instead: CUPTI fills
// it, and its records are counted (records_spilled), not decoded. Only from
// version 27 is a request refused (buffers_refused). Where no memory is left
// for a spill buffer, there is nothing to hand out and the request is refused
// whatever the version.
uint8_t* Session::acquire_buffer() {
  std::lock_guard<std::mutex> lock(buffers_mu_);
  if (buffers_outstanding_ >= opts_.max_activity_buffers) {
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
    b = static_cast<uint8_t*>(std::calloc(1, rounded(opts_.activity_buffer_bytes)));
    if (b == nullptr) {
      if (!buffer_refusal_safe(version_)) return spill_buffer();
      ++stats_.buffers_refused;
      return nullptr;
    }
  }
  ++buffers_outstanding_;
  stats_.max_buffers_in_use = std::max<uint64_t>(stats_.max_buffers_in_use, buffers_outstanding_);
  return b;
}

uint8_t* Session::spill_buffer() {  // caller holds buffers_mu_
  auto* b = static_cast<uint8_t*>(std::calloc(1, rounded(opts_.activity_buffer_bytes)));
  if (b == nullptr) {
    ++stats_.buffers_refused;
    return nullptr;
  }
  ++stats_.buffers_spilled;
  spilled_.push_back(b);
  return b;
}

bool Session::take_spilled(uint8_t* b) {
  std::lock_guard<std::mutex> lock(buffers_mu_);
  auto it = std::find(spilled_.begin(), spilled_.end(), b);
  if (it == spilled_.end()) return false;
  spilled_.erase(it);
  return true;
}

void Session::release_buffer(uint8_t* b) {
  // cleared here, off the launching threads (CUPTI completes buffers on its own
  // thread or in a flush); all of it, whatever CUPTI reported as valid. Not at
  // stop: those buffers are not handed out again.
  if (!stopping_.load(std::memory_order_relaxed))
    std::memset(b, 0, rounded(opts_.activity_buffer_bytes));
  std::lock_guard<std::mutex> lock(buffers_mu_);
  --buffers_outstanding_;
  free_buffers_.push_back(b);
}

void Session::on_buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  cs::BufferCallbackScope running;
  Session* s = cs::session.load();
  *max_records = 0;
  if (s != nullptr) {
    *buffer = s->acquire_buffer();
    *size = *buffer ? rounded(s->opts_.activity_buffer_bytes) : 0;
  } else if (g_refusal_safe.load()) {
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
  const bool spilled = buffer != nullptr && s->take_spilled(buffer);
  {
    std::lock_guard<std::mutex> lock(s->decode_mu_);
    DecodeTarget t{&s->kernels_,
                   &s->copies_,
                   &s->names_,
                   s->opts_.max_gpu_records,
                   &s->stats_.gpu_rows_dropped,
                   &s->stats_.records_ignored,
                   &s->name_cache_,
                   s->opts_.launch_records == LaunchRecords::kActivity ? &s->api_rows_ : nullptr,
                   s->opts_.max_launch_bytes / sizeof(LaunchRow),
                   &s->api_rows_dropped_};
    if (spilled)
      s->stats_.records_spilled += count_records(*s->api_, buffer, valid);
    else if (buffer != nullptr && valid > 0)
      decode_buffer(*s->api_, s->layout_, buffer, valid, t);
    size_t dropped = 0;
    if (s->api_->ActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS)
      s->stats_.cupti_dropped += dropped;
    ++s->stats_.buffers_completed;
  }
  if (spilled)
    std::free(buffer);
  else if (buffer != nullptr)
    s->release_buffer(buffer);
}

void Session::start() {
  if (state_ == State::kActive) throw SessionError("this session is already capturing");
  if (state_ == State::kStopped)
    throw SessionError("this session has finished; start a new one for another capture");
  std::call_once(g_atfork_once, [] { pthread_atfork(nullptr, nullptr, after_fork_in_child); });

  std::string why;
  api_ = load_cupti(opts_.wheel_dirs, &why);
  if (api_ == nullptr) throw SessionError(why);
  check(api_->GetVersion(&version_), "cuptiGetVersion");
  try {
    layout_ = layout_for_version(version_);
  } catch (const std::runtime_error& e) {
    throw SessionError(e.what());
  }
  Session* expected = nullptr;
  if (!cs::session.compare_exchange_strong(expected, this))
    throw SessionError(
        "another skipnative session is capturing in this process; stop it before starting one");
  owner_pid_ = getpid();
  g_refusal_safe.store(buffer_refusal_safe(version_));

  try {
    cs::kinds.store(&api_kind_table(), std::memory_order_relaxed);
    try {
      clock_ = make_clock(opts_.clock, api_->double_clock);
    } catch (const std::runtime_error& e) {
      throw SessionError(e.what());
    }
    cs::publish_clock(clock_);
    size_t chunk_bytes = opts_.launch_chunk_records * sizeof(LaunchRecord);
    launch_buffers_ = std::make_unique<LaunchBuffers>(
        opts_.launch_chunk_records, opts_.launch_prealloc_chunks,
        std::max<size_t>(opts_.max_launch_bytes / std::max<size_t>(chunk_bytes, 1), 1));
    enable_callbacks();
    // The timestamp callback must be in place before any activity kind is enabled.
    check(api_->ActivityRegisterTimestampCallback(&timestamp_callback),
          "cuptiActivityRegisterTimestampCallback");
    set_attributes();
    check(api_->ActivityRegisterCallbacks(&Session::on_buffer_requested,
                                          &Session::on_buffer_completed),
          "cuptiActivityRegisterCallbacks");
    enable_activity();
    start_ticks_ = read_ticks(clock_);
    t_start_ns_ = ticks_to_ns(clock_, start_ticks_);
    // buffers before generation: see callback_state.h
    cs::buffers.store(launch_buffers_.get(), std::memory_order_release);
    cs::generation.fetch_add(1, std::memory_order_release);
  } catch (...) {
    teardown_cupti(false);
    cs::session.store(nullptr);
    state_ = State::kStopped;
    throw;
  }
  state_ = State::kActive;
}

void Session::enable_callbacks() {
  CUptiResult r = api_->Subscribe(&subscriber_, &Session::on_api, this);
  if (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
    subscriber_ = nullptr;
    throw SessionError(
        "CUPTI already has a subscriber in this process (" + api_->error_string(r) +
        "). torch.profiler (Kineto) subscribes at its first use and keeps the subscription: "
        "run skipnative's capture before any torch.profiler use, or in its own process");
  }
  check(r, "cuptiSubscribe");
  for (const auto& a : subscribed_apis()) {
    if (!opts_.launch_callbacks || opts_.launch_records == LaunchRecords::kActivity ||
        !opts_.api_domains.has(a.domain))
      continue;
    CUptiResult e = api_->EnableCallback(
        1, subscriber_, a.domain ? CUPTI_CB_DOMAIN_DRIVER_API : CUPTI_CB_DOMAIN_RUNTIME_API,
        a.cbid);
    if (e != CUPTI_SUCCESS) stats_.callbacks_unavailable.emplace_back(a.name);
  }
}

void Session::set_attributes() {
  auto needs_attributes = [&] {
    if (api_->ActivitySetAttribute == nullptr)
      throw SessionError("this CUPTI has no cuptiActivitySetAttribute");
  };
  if (opts_.device_buffer_bytes) {
    needs_attributes();
    size_t value = opts_.device_buffer_bytes, size = sizeof value;
    check(api_->ActivitySetAttribute(CUPTI_ACTIVITY_ATTR_DEVICE_BUFFER_SIZE, &size, &value),
          "cuptiActivitySetAttribute(DEVICE_BUFFER_SIZE)");
  }
  if (opts_.device_buffer_host_pinned) {
    needs_attributes();
    uint8_t value = 1;
    size_t size = sizeof value;
    check(api_->ActivitySetAttribute(CUPTI_ACTIVITY_ATTR_MEM_ALLOCATION_TYPE_HOST_PINNED, &size,
                                     &value),
          "cuptiActivitySetAttribute(MEM_ALLOCATION_TYPE_HOST_PINNED)");
    host_pinned_set_ = true;
  }
  if (opts_.hw_trace) {
    if (api_->ActivityEnableHWTrace == nullptr)
      throw SessionError("this CUPTI has no cuptiActivityEnableHWTrace (CUPTI 12.8 or newer)");
    check(api_->ActivityEnableHWTrace(1), "cuptiActivityEnableHWTrace");
  }
  if (api_->ActivitySetAttribute != nullptr) {
    uint8_t zeroed = 1;
    size_t size = sizeof zeroed;
    stats_.buffers_prezeroed =
        api_->ActivitySetAttribute(CUPTI_ACTIVITY_ATTR_ZEROED_OUT_ACTIVITY_BUFFER, &size,
                                   &zeroed) == CUPTI_SUCCESS;
  }
}

void Session::enable_activity() {
  if (opts_.latency_timestamps) {
    if (api_->ActivityEnableLatencyTimestamps == nullptr)
      throw SessionError("this CUPTI has no cuptiActivityEnableLatencyTimestamps");
    check(api_->ActivityEnableLatencyTimestamps(1), "cuptiActivityEnableLatencyTimestamps");
  }
  std::vector<CUpti_ActivityKind> kinds;
  if (opts_.kernel_activity)
    kinds.push_back(opts_.serial_kernels ? CUPTI_ACTIVITY_KIND_KERNEL
                                         : CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  if (opts_.memcpy) kinds.push_back(CUPTI_ACTIVITY_KIND_MEMCPY);
  if (opts_.memset) kinds.push_back(CUPTI_ACTIVITY_KIND_MEMSET);
  for (auto k : kinds) {
    check(api_->ActivityEnable(k), "cuptiActivityEnable");
    enabled_kinds_.push_back(k);
  }
  if (opts_.launch_records != LaunchRecords::kActivity || !opts_.launch_callbacks) return;
  if (api_->ActivityEnableDriverApi == nullptr || api_->ActivityEnableRuntimeApi == nullptr)
    throw SessionError(
        "this CUPTI has no cuptiActivityEnableDriverApi/RuntimeApi, which "
        "launch_records='activity' needs");
  for (const auto& a : subscribed_apis()) {
    if (!opts_.api_domains.has(a.domain)) continue;
    CUptiResult e = a.domain ? api_->ActivityEnableDriverApi(a.cbid, 1)
                             : api_->ActivityEnableRuntimeApi(a.cbid, 1);
    if (e == CUPTI_SUCCESS)
      api_records_on_.emplace_back(a.domain, a.cbid);
    else
      stats_.callbacks_unavailable.emplace_back(a.name);
  }
}

void Session::teardown_cupti(bool flush) {
  cs::buffers.store(nullptr, std::memory_order_release);
  if (api_ == nullptr) return;
  if (flush) api_->ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  for (auto k : enabled_kinds_) api_->ActivityDisable(k);
  enabled_kinds_.clear();
  for (auto [domain, cbid] : api_records_on_)
    domain ? api_->ActivityEnableDriverApi(cbid, 0) : api_->ActivityEnableRuntimeApi(cbid, 0);
  api_records_on_.clear();
  if (flush) api_->ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  if (opts_.latency_timestamps && api_->ActivityEnableLatencyTimestamps)
    api_->ActivityEnableLatencyTimestamps(0);
  if (opts_.hw_trace && api_->ActivityEnableHWTrace) api_->ActivityEnableHWTrace(0);
  if (host_pinned_set_) {  // CUPTI's default, for whoever uses it next
    uint8_t value = 0;
    size_t size = sizeof value;
    api_->ActivitySetAttribute(CUPTI_ACTIVITY_ATTR_MEM_ALLOCATION_TYPE_HOST_PINNED, &size, &value);
    host_pinned_set_ = false;
  }
  if (stats_.buffers_prezeroed) {
    // a later CUPTI user (torch.profiler) hands CUPTI buffers it has not cleared
    uint8_t zeroed = 0;
    size_t size = sizeof zeroed;
    api_->ActivitySetAttribute(CUPTI_ACTIVITY_ATTR_ZEROED_OUT_ACTIVITY_BUFFER, &size, &zeroed);
  }
  if (subscriber_ != nullptr) {
    for (const auto& a : subscribed_apis())
      api_->EnableCallback(0, subscriber_,
                           a.domain ? CUPTI_CB_DOMAIN_DRIVER_API : CUPTI_CB_DOMAIN_RUNTIME_API,
                           a.cbid);
    api_->Unsubscribe(subscriber_);
    subscriber_ = nullptr;
  }
}

bool Session::should_finalize() const {
  if (api_ == nullptr || api_->Finalize == nullptr) return false;
  if (opts_.finalize.has_value()) return *opts_.finalize;
  // auto: CUPTI before 12.6 (API version 24) could crash when re-initialised after
  // cuptiFinalize in processes that use CUDA graphs (pytorch/kineto #1264).
  return version_ >= 24;
}

void Session::stop() {
  if (state_ != State::kActive) throw SessionError("this session is not capturing");
  if (getpid() != owner_pid_)
    throw SessionError(
        "this session was started in the parent process; after fork() only the parent can "
        "stop it");
  t_stop_ns_ = ticks_to_ns(clock_, read_ticks(clock_));
  stopping_.store(true, std::memory_order_relaxed);
  teardown_cupti(true);
  close_delivery();
  cs::generation.fetch_add(1, std::memory_order_release);
  state_ = State::kStopped;
  // Detach CUPTI: merely left attached, it slows every later launch by about a
  // microsecond (measured on an H200; pytorch issue 144455). Work is
  // synchronised and buffers flushed above, as cuptiFinalize requires outside
  // a callback.
  if (should_finalize()) {
    CUptiResult r = api_->Finalize();
    finalized_ = r == CUPTI_SUCCESS;
  }
  collect_launches();
  {
    std::lock_guard<std::mutex> lock(markers_mu_);
    for (auto& m : markers_) m.t = ticks_to_ns(clock_, m.t);
  }
  std::lock_guard<std::mutex> lock(g_retired_mu);
  g_retired = std::move(launch_buffers_);
}

// After the flush: no buffer callback delivers to this session from here on.
// The session pointer is cleared first, then the callbacks already past it are
// waited for, then the decode lock is a barrier for what they wrote.
void Session::close_delivery() {
  cs::session.store(nullptr);
  while (cs::buffer_callbacks_running.load() != 0) std::this_thread::yield();
  std::lock_guard<std::mutex> lock(decode_mu_);
  size_t dropped = 0;
  if (api_->ActivityGetNumDroppedRecords(nullptr, 0, &dropped) == CUPTI_SUCCESS)
    stats_.cupti_dropped += dropped;
}

void Session::collect_launches() {
  stats_.launches_dropped = launch_buffers_->dropped() + api_rows_dropped_;
  launches_.clear();
  size_t total = 0;
  launch_buffers_->for_each([&](uint32_t, const LaunchRecord*, uint32_t n) { total += n; });
  launches_.reserve(total);  // exact: no doubling on the way to millions of rows
  launch_buffers_->for_each([&](uint32_t tid, const LaunchRecord* r, uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) {
      // A call that was already running when the session started has no valid
      // enter timestamp of this session: leave it out.
      if (r[i].t_begin < start_ticks_ || r[i].t_begin > r[i].t_end) {
        ++stats_.launches_outside;
        continue;
      }
      launches_.push_back(LaunchRow{ticks_to_ns(clock_, r[i].t_begin),
                                    ticks_to_ns(clock_, r[i].t_end), r[i].correlation_id, tid,
                                    r[i].cbid, r[i].domain, r[i].kind, 0});
    }
  });
  append_api_rows();
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
  for (const LaunchRow& r : api_rows_) {
    if (r.t_begin < t_start_ns_ || r.t_begin > r.t_end) {
      ++stats_.launches_outside;
      continue;
    }
    if (have && r.tid == tid && r.t_end <= outer_end) continue;  // nested
    launches_.push_back(r);
    tid = r.tid;
    outer_end = r.t_end;
    have = true;
  }
  api_rows_.clear();
}

void Session::mark(const std::string& name) {
  if (state_ != State::kActive) throw SessionError("mark() needs a capturing session");
  uint64_t t = read_ticks(clock_);
  uint32_t id = names_.intern(name);
  std::lock_guard<std::mutex> lock(markers_mu_);
  markers_.push_back(MarkerRow{t, id, current_tid()});
}

}  // namespace skipnative
