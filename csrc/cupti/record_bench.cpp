// Benchmarks of the launch-record path without a GPU: the clock read alone,
// and enter/exit callback pairs through Session::on_api into launch buffers.
#include <chrono>

#include "cupti/callback_state.h"
#include "cupti/session.h"
#include "cupti/stream_keys.h"

namespace skipnative {

namespace cs = callback_state;

namespace {

// The launch path's process-wide state, held by one benchmark for its whole
// run: refused while a session captures (or another benchmark runs), and no
// session starts until it is given back (see callback_state::benchmarking).
struct BenchClaim {
  BenchClaim() {
    if (cs::benchmarking.exchange(true))
      throw SessionError("another record-path benchmark is running; benchmark refused");
    if (active_session() != nullptr) {
      cs::benchmarking.store(false);
      throw SessionError("a session is capturing; benchmark refused");
    }
  }
  ~BenchClaim() { cs::benchmarking.store(false); }
  BenchClaim(const BenchClaim&) = delete;
  BenchClaim& operator=(const BenchClaim&) = delete;
};

// The benchmark's launch buffers (on its stack) are given up as a stop gives
// up a session's: a record in flight on another thread (a callback of a
// session that stopped without finalizing) finishes before they are freed.
void release_buffers() {
  cs::buffers.store(nullptr, std::memory_order_release);
  cs::generation.fetch_add(1, std::memory_order_seq_cst);
  cs::wait_for_records();
}

}  // namespace

double bench_clock_read(size_t n, const std::string& clock) {
  ClockParams p = make_clock(clock, nullptr);
  uint64_t sink = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) sink += read_ticks(p);
  auto t1 = std::chrono::steady_clock::now();
  asm volatile("" ::"r"(sink));
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(n);
}

double bench_record_path(size_t n, const std::string& clock) {
  BenchClaim claim;
  cs::kinds.store(&api_kind_table(), std::memory_order_relaxed);
  cs::publish_clock(make_clock(clock, nullptr));
  size_t chunk = 16384;
  LaunchBuffers lb(chunk, n / chunk + 2, n / chunk + 2);
  cs::buffers.store(&lb, std::memory_order_release);
  cs::generation.fetch_add(1, std::memory_order_release);
  uint64_t corr_data = 0;
  CUpti_CallbackData info{};
  info.correlationData = &corr_data;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) {
    info.correlationId = uint32_t(i);
    info.callbackSite = CUPTI_API_ENTER;
    Session::on_api(nullptr, CUPTI_CB_DOMAIN_RUNTIME_API,
                    CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &info);
    info.callbackSite = CUPTI_API_EXIT;
    Session::on_api(nullptr, CUPTI_CB_DOMAIN_RUNTIME_API,
                    CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &info);
  }
  auto t1 = std::chrono::steady_clock::now();
  release_buffers();
  size_t stored = 0;
  lb.for_each([&](uint32_t, const LaunchRecord*, uint32_t k) { stored += k; });
  if (stored < n) throw SessionError("record-path benchmark lost records");
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(n);
}

namespace {

// Stand-ins for the stream lookup's CUPTI and driver functions: the benchmark
// measures a call on a stream already looked up (the per-thread cache), as
// every call but the first on a stream is.
CUptiResult bench_stream_id(CUcontext, CUstream, uint8_t, uint32_t* id) {
  *id = 0xfffffffe;
  return CUPTI_SUCCESS;
}
CUptiResult bench_device_id(CUcontext, uint32_t* id) {
  *id = 0xfffffffe;
  return CUPTI_SUCCESS;
}
CUresult bench_stream_context(CUstream, CUcontext* c) {
  *c = nullptr;
  return CUDA_SUCCESS;
}

}  // namespace

double bench_hook_path(size_t n, const std::string& clock, const std::string& join) {
  if (join != "external" && join != "order")
    throw SessionError("hook_join: expected 'external' or 'order', not '" + join + "'");
  BenchClaim claim;
  cs::kinds.store(&api_kind_table(), std::memory_order_relaxed);
  cs::publish_clock(make_clock(clock, nullptr));
  const cs::PushExternalFn push = cs::push_external.load();
  const cs::PopExternalFn pop = cs::pop_external.load();
  const CuptiApi* api = loaded_cupti();
  const stream_keys::Lookup* lookup_before = nullptr;
  if (join == "order")
    lookup_before =
        stream_keys::open({&bench_stream_id, &bench_device_id, nullptr, &bench_stream_context});
  else if (api != nullptr)  // the push and pop a session makes
    cs::open_external(api->ActivityPushExternalCorrelationId,
                      api->ActivityPopExternalCorrelationId);
  size_t chunk = 16384;
  LaunchBuffers lb(chunk, n / chunk + 2, n / chunk + 2);
  cs::buffers.store(&lb, std::memory_order_release);
  cs::generation.fetch_add(1, std::memory_order_release);
  const SkipnativeHookSink* sink =
      hook_sink(join == "order" ? HookJoin::kOrder : HookJoin::kExternal);
  static int stream;  // a handle no stream has
  SkipnativeHookCall call{};
  call.cbid = CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel;
  call.has_stream = 1;
  call.stream = &stream;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) {
    uint32_t id = 0;
    uint64_t t = sink->enter(&call, &id);
    sink->exit(t, id, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, 0);
  }
  auto t1 = std::chrono::steady_clock::now();
  release_buffers();
  if (join == "order")
    stream_keys::reopen(lookup_before);
  else if (push != nullptr)  // the gate as it was: closed after a cuptiFinalize
    cs::open_external(push, pop);
  else
    cs::close_external();
  size_t stored = 0;
  lb.for_each([&](uint32_t, const LaunchRecord*, uint32_t k) { stored += k; });
  if (stored < n) throw SessionError("hook-path benchmark lost records");
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(n);
}

}  // namespace skipnative
