#include "cupti/session.h"

#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>

#include "cupti/api_table.h"
#include "cupti/callback_state.h"
#include "cupti/fork_lock.h"
#include "cupti/stream_keys.h"

namespace skipnative {

namespace cs = callback_state;

namespace {

// A stopped session's launch buffers stay allocated until the next stop, so a
// callback still in flight when its session stopped never writes freed memory.
std::mutex g_retired_mu;
[[maybe_unused]] const int g_retired_mu_fork = hold_across_fork<g_retired_mu>();
std::unique_ptr<LaunchBuffers> g_retired;

// A session holds CUPTI's subscription (from cuptiSubscribe to cuptiUnsubscribe);
// a child forked meanwhile inherits it.
std::atomic<bool> g_subscribed{false};
std::atomic<bool> g_forked_from_capture{false};

void after_fork_in_child() {
  // A forked child must not write into the parent's session (its copy of the
  // buffers is private, and CUDA is unusable after fork anyway).
  g_forked_from_capture.store(g_subscribed.load());
  cs::session.store(nullptr);
  cs::buffers.store(nullptr);
  cs::generation.fetch_add(1);
  cs::external_after_fork();
  stream_keys::after_fork();
}

std::once_flag g_atfork_once;

SkipnativeHooksAttachFn g_hooks_attach = nullptr;

}  // namespace

bool forked_from_capture() { return g_forked_from_capture.load(); }

Session::Session(SessionOptions opts) : opts_(std::move(opts)) {}

Session::~Session() {
  // In a forked child the session is the parent's: stopping it would tear down
  // the CUPTI state the child inherited. It is left alone (its memory is the
  // child's own copy, freed below, without the lock: a thread of the parent
  // may have held it at the fork, and none is left to release it).
  if (inherited()) {
    for (uint8_t* b : free_buffers_) std::free(b);
    return;
  }
  if (state_ == State::kActive) {
    try {
      stop();
    } catch (...) {
    }
  }
  std::lock_guard<std::mutex> lock(buffers_mu_);
  for (uint8_t* b : free_buffers_) std::free(b);
}

bool Session::inherited() const { return owner_pid_ != 0 && getpid() != owner_pid_; }

void Session::check(CUptiResult r, const char* what) {
  if (r != CUPTI_SUCCESS)
    throw SessionError(std::string(what) + " failed: " + api_->error_string(r));
}
void Session::start() {
  if (inherited())  // and a thread of the parent may have held its lock at the fork
    throw SessionError(
        "this session was started in the parent process; after fork() start a new one in the "
        "child");
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  const State st = state_.load();
  if (st == State::kActive) throw SessionError("this session is already capturing");
  if (st != State::kNew)
    throw SessionError("this session has finished; start a new one for another capture");
  if (opts_.launch_chunk_records > UINT32_MAX)  // a chunk counts its records in 32 bits
    throw SessionError("launch_chunk_records is " + std::to_string(opts_.launch_chunk_records) +
                       "; at most 4294967295");
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
  cs::pause_at("published");
  if (cs::benchmarking.load()) {
    cs::session.store(nullptr);
    wait_for_buffer_callbacks();  // one that read this session is done with it (as below)
    throw SessionError(
        "a record-path benchmark is running in this process; start the capture after it");
  }
  owner_pid_ = getpid();
  cs::refusal_safe.store(buffer_refusal_safe(version_));

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
    source_ = opts_.launch_records;
    if (source_ == LaunchRecords::kHook && !attach_hooks()) source_ = LaunchRecords::kCallbacks;
    if (opts_.hw_trace) check_hw_trace();
    enable_callbacks();
    // The timestamp callback must be in place before any activity kind is enabled.
    check(api_->ActivityRegisterTimestampCallback(&cs::timestamp_callback),
          "cuptiActivityRegisterTimestampCallback");
    set_attributes();
    check(api_->ActivityRegisterCallbacks(&Session::on_buffer_requested,
                                          &Session::on_buffer_completed),
          "cuptiActivityRegisterCallbacks");
    enable_activity();
    pool_buffers();
    flagless_at_start_ = cs::records_without_flag.load();
    start_ticks_ = read_ticks(clock_);
    t_start_ns_ = ticks_to_ns(clock_, start_ticks_);
    // buffers before generation: see callback_state.h
    cs::buffers.store(launch_buffers_.get(), std::memory_order_release);
    cs::generation.fetch_add(1, std::memory_order_release);
    if (source_ == LaunchRecords::kHook) {
      if (opts_.hook_join == HookJoin::kOrder)
        stream_keys::open(stream_lookup_);
      else
        cs::open_external(api_->ActivityPushExternalCorrelationId,
                          api_->ActivityPopExternalCorrelationId);
      g_hooks_attach(hook_sink(opts_.hook_join));
      hooks_attached_ = true;
    }
  } catch (...) {
    teardown_cupti(false);
    // A buffer callback that read this session before the store (CUPTI
    // completes buffers on its own thread at any time) is done with it before
    // the caller may destroy it.
    cs::session.store(nullptr);
    wait_for_buffer_callbacks();
    state_ = State::kStopped;
    throw;
  }
  state_ = State::kActive;
}

void Session::enable_callbacks() {
  CUptiResult r = api_->Subscribe(&subscriber_, &Session::on_api, this);
  if (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
    subscriber_ = nullptr;
    if (forked_from_capture())
      throw SessionError(
          "CUPTI already has a subscriber in this process: the skipnative capture its "
          "parent was running when it forked, inherited. Capture in a child forked after "
          "the parent's capture stopped, or in a process started fresh (multiprocessing "
          "'spawn')");
    throw SessionError(
        "CUPTI already has a subscriber in this process (" + api_->error_string(r) +
        "). torch.profiler (Kineto) subscribes at its first use and keeps the subscription: "
        "run skipnative's capture before any torch.profiler use, or in its own process");
  }
  check(r, "cuptiSubscribe");
  g_subscribed.store(true);
  for (const auto& a : subscribed_apis()) {
    if (!opts_.launch_callbacks || source_ != LaunchRecords::kCallbacks ||
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
  auto set_size = [&](CUpti_ActivityAttribute attr, size_t value, const char* what) {
    if (value == 0) return;
    needs_attributes();
    size_t size = sizeof value;
    check(api_->ActivitySetAttribute(attr, &size, &value), what);
  };
  set_size(CUPTI_ACTIVITY_ATTR_DEVICE_BUFFER_PRE_ALLOCATE_VALUE, opts_.device_buffer_pre_allocate,
           "cuptiActivitySetAttribute(DEVICE_BUFFER_PRE_ALLOCATE_VALUE)");
  set_size(CUPTI_ACTIVITY_ATTR_DEVICE_BUFFER_POOL_LIMIT, opts_.device_buffer_pool_limit,
           "cuptiActivitySetAttribute(DEVICE_BUFFER_POOL_LIMIT)");
  if (opts_.hw_trace) enable_hw_trace();
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
  if (opts_.overhead_records) kinds.push_back(CUPTI_ACTIVITY_KIND_OVERHEAD);
  if (opts_.stream_waits) {
    kinds.push_back(CUPTI_ACTIVITY_KIND_CUDA_EVENT);
    kinds.push_back(CUPTI_ACTIVITY_KIND_SYNCHRONIZATION);
  }
  for (auto k : kinds) {
    check(api_->ActivityEnable(k), "cuptiActivityEnable");
    enabled_kinds_.push_back(k);
  }
  if (source_ == LaunchRecords::kHook && opts_.hook_join == HookJoin::kExternal) {
    check(api_->ActivityEnable(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION),
          "cuptiActivityEnable(EXTERNAL_CORRELATION)");
    enabled_kinds_.push_back(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
    enable_hooked_api_records();
  }
  if (source_ != LaunchRecords::kActivity || !opts_.launch_callbacks) return;
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

// CUPTI writes an external correlation record only ahead of an API activity
// record ("the activity API record will be preceded by" one, per the
// documentation of cuptiActivityPushExternalCorrelationId): without API records
// for the calls the hooks bracket, no launch would join its kernels. They are
// enabled per call where this CUPTI can, for the launch, copy, set and sync
// calls of both domains (a runtime launch's kernel carries the runtime call's
// correlation id, and the hooks' push happens inside it), else for both whole
// domains. The records themselves are not kept: the hooks give the times. What
// they cost is part of what `timing_pass_hook` measures on a GPU.
void Session::enable_hooked_api_records() {
  if (api_->ActivityEnableDriverApi == nullptr || api_->ActivityEnableRuntimeApi == nullptr) {
    for (auto k : {CUPTI_ACTIVITY_KIND_DRIVER, CUPTI_ACTIVITY_KIND_RUNTIME}) {
      check(api_->ActivityEnable(k), "cuptiActivityEnable(DRIVER/RUNTIME)");
      enabled_kinds_.push_back(k);
    }
    stats_.hook_api_records = "whole domains";
    return;
  }
  for (const auto& a : subscribed_apis()) {
    CUptiResult e = a.domain ? api_->ActivityEnableDriverApi(a.cbid, 1)
                             : api_->ActivityEnableRuntimeApi(a.cbid, 1);
    if (e == CUPTI_SUCCESS) api_records_on_.emplace_back(a.domain, a.cbid);
  }
  stats_.hook_api_records = "per call";
}

void Session::teardown_cupti(bool flush) {
  if (hooks_attached_) {
    g_hooks_attach(nullptr);
    hooks_attached_ = false;
  }
  cs::buffers.store(nullptr, std::memory_order_release);
  if (api_ == nullptr) return;
  cs::FlushAtStopScope flushing;
  if (flush) api_->ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  for (auto k : enabled_kinds_) api_->ActivityDisable(k);
  enabled_kinds_.clear();
  for (auto [domain, cbid] : api_records_on_)
    domain ? api_->ActivityEnableDriverApi(cbid, 0) : api_->ActivityEnableRuntimeApi(cbid, 0);
  api_records_on_.clear();
  if (flush) api_->ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  if (opts_.latency_timestamps && api_->ActivityEnableLatencyTimestamps)
    api_->ActivityEnableLatencyTimestamps(0);
  if (hw_trace_on_) {
    api_->ActivityEnableHWTrace(0);
    if (api_->ActivityFlushPeriod) api_->ActivityFlushPeriod(0);
    hw_trace_on_ = false;
  }
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
    g_subscribed.store(false);
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
  if (state_.load() != State::kActive && state_.load() != State::kStopping)
    throw SessionError("this session is not capturing");
  if (getpid() != owner_pid_)
    throw SessionError(
        "this session was started in the parent process; after fork() only the parent can "
        "stop it");
  // One stop() of two racing ones goes on; the other waits here until it is
  // done, so that whoever called it finds the session finished (a `with` block
  // that ends while another thread stops its capture has the trace after it).
  std::lock_guard<std::mutex> lifecycle(lifecycle_mu_);
  State expected = State::kActive;
  if (!state_.compare_exchange_strong(expected, State::kStopping))
    throw SessionError("this session is not capturing");
  {
    // before t_stop is read: every marker kept lies within the capture
    std::lock_guard<std::mutex> lock(markers_mu_);
    markers_closed_ = true;
  }
  stop_ticks_ = read_ticks(clock_);
  t_stop_ns_ = ticks_to_ns(clock_, stop_ticks_);
  cs::pause_at("stopped");  // calls made from here on are after the capture
  stopping_.store(true, std::memory_order_relaxed);
  // Finished only once every result is complete (also if this throws): another
  // thread reads them as soon as finished() says so.
  struct Finish {
    std::atomic<State>& state;
    ~Finish() { state.store(State::kStopped, std::memory_order_release); }
  } finish{state_};
  teardown_cupti(true);
  close_delivery();
  cs::generation.fetch_add(1, std::memory_order_seq_cst);
  cs::wait_for_records();  // a record in flight finishes in this session's buffers
  // Detach CUPTI: merely left attached, it slows every later launch by about a
  // microsecond (measured on an H200; pytorch issue 144455). Work is
  // synchronised and buffers flushed above, as cuptiFinalize requires outside
  // a callback.
  if (should_finalize()) {
    cs::close_external();  // a hooked call still in flight pops nothing from here on
    stream_keys::close();  // nor looks its stream up
    CUptiResult r = api_->Finalize();
    finalized_ = r == CUPTI_SUCCESS;
  }
  collect_launches();
  {
    std::lock_guard<std::mutex> lock(markers_mu_);
    for (auto& m : markers_) m.t = ticks_to_ns(clock_, m.t);
  }
  std::lock_guard<std::mutex> lock(g_retired_mu);
  cs::pause_at("retire");
  g_retired = std::move(launch_buffers_);
}

// After the flush: no buffer callback delivers to this session from here on.
void Session::close_delivery() {
  cs::session.store(nullptr);
  wait_for_buffer_callbacks();
  std::lock_guard<std::mutex> lock(decode_mu_);
  size_t dropped = 0;
  if (api_->ActivityGetNumDroppedRecords(nullptr, 0, &dropped) == CUPTI_SUCCESS)
    count_cupti_dropped(dropped);
}

// With the session pointer cleared: the callbacks already past it are waited
// for, then the decode lock is a barrier for what they wrote.
void Session::wait_for_buffer_callbacks() {
  while (cs::buffer_callbacks_running.load() != 0) std::this_thread::yield();
  std::lock_guard<std::mutex> lock(decode_mu_);
}

void Session::mark(const std::string& name) {
  if (state_.load() != State::kActive) throw SessionError("mark() needs a capturing session");
  if (inherited())  // and its locks may be held by a thread of the parent that is gone
    throw SessionError(
        "this session was started in the parent process; after fork() it records nothing in "
        "the child");
  uint64_t t = read_ticks(clock_);
  uint32_t id = names_.intern(name);
  std::lock_guard<std::mutex> lock(markers_mu_);
  if (markers_closed_) throw SessionError("mark() needs a capturing session");
  markers_.push_back(MarkerRow{t, id, current_tid()});
}

}  // namespace skipnative

namespace skipnative {

// The hooks are usable when libskipnative_hooks.so was loaded before libcuda
// (preloaded) and CUPTI can push external correlation ids; otherwise the
// capture records launches through the callbacks and says why.
bool Session::attach_hooks() {
  auto attach =
      reinterpret_cast<SkipnativeHooksAttachFn>(dlsym(RTLD_DEFAULT, "skipnative_hooks_attach2"));
  auto in_time =
      reinterpret_cast<SkipnativeHooksInTimeFn>(dlsym(RTLD_DEFAULT, "skipnative_hooks_in_time"));
  auto abi = reinterpret_cast<SkipnativeHooksAbiFn>(dlsym(RTLD_DEFAULT, "skipnative_hooks_abi"));
  std::string& why = stats_.launch_hook_fallback;
  if (attach == nullptr || in_time == nullptr)
    why =
        "the launch hooks are not loaded in this process: preload libskipnative_hooks.so "
        "(LD_PRELOAD, see skipnative.launch_hooks_library()) before CUDA is loaded";
  else if (!in_time())
    why =
        "the launch hooks were loaded after libcuda: entry points resolved before them cannot "
        "be wrapped; preload libskipnative_hooks.so before CUDA is loaded";
  else if (abi == nullptr || abi() != SKIPNATIVE_HOOKS_ABI)
    why = "the launch hooks loaded are of another skipnative build (interface version " +
          std::to_string(abi ? abi() : 1) + ", this one is " +
          std::to_string(SKIPNATIVE_HOOKS_ABI) + "): preload skipnative.launch_hooks_library()";
  else if (opts_.hook_join == HookJoin::kExternal &&
           (api_->ActivityPushExternalCorrelationId == nullptr ||
            api_->ActivityPopExternalCorrelationId == nullptr))
    why = "this CUPTI has no cuptiActivityPush/PopExternalCorrelationId";
  else if (opts_.hook_join == HookJoin::kOrder)
    why = order_lookup();
  if (!why.empty()) return false;
  g_hooks_attach = attach;
  return true;
}

// hook_join = "order": the functions a stream lookup calls, or why there are none.
std::string Session::order_lookup() {
  if (api_->GetStreamIdEx == nullptr || api_->GetDeviceId == nullptr)
    return "hook_join='order': this CUPTI has no cuptiGetStreamIdEx/cuptiGetDeviceId";
  void* cuda = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (cuda == nullptr) return "hook_join='order': the CUDA driver (libcuda.so.1) is not loaded";
  stream_lookup_.stream_id = api_->GetStreamIdEx;
  stream_lookup_.device_id = api_->GetDeviceId;
  stream_lookup_.current_context =
      reinterpret_cast<CUresult (*)(CUcontext*)>(dlsym(cuda, "cuCtxGetCurrent"));
  stream_lookup_.stream_context =
      reinterpret_cast<CUresult (*)(CUstream, CUcontext*)>(dlsym(cuda, "cuStreamGetCtx"));
  dlclose(cuda);  // loaded before: this handle only counted a reference
  if (stream_lookup_.current_context == nullptr || stream_lookup_.stream_context == nullptr)
    return "hook_join='order': the CUDA driver has no cuCtxGetCurrent/cuStreamGetCtx";
  return "";
}

// Zeroed host buffers allocated now, not when CUPTI first asks on a launching thread.
void Session::pool_buffers() {
  size_t n = std::min(opts_.activity_buffers_pooled, opts_.max_activity_buffers);
  std::lock_guard<std::mutex> lock(buffers_mu_);
  while (free_buffers_.size() < n) {
    auto* b = static_cast<uint8_t*>(std::calloc(1, cs::rounded(opts_.activity_buffer_bytes)));
    if (b == nullptr) break;
    std::memset(b, 0, cs::rounded(opts_.activity_buffer_bytes));  // touched: paged in now
    free_buffers_.push_back(b);
  }
}

}  // namespace skipnative
