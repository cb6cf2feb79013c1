// libskipnative_hooks.so (its own folder: never linked into the session code):
// the driver's launch entry points, wrapped where
// libraries resolve them. Preloaded (LD_PRELOAD) it interposes dlsym, so a
// dlsym on libcuda (Triton, the launch benchmarks) for a wrapped name returns
// the wrapper, and cuGetProcAddress (cudart and the libraries built on it), whose
// results it wraps the same way. Each wrapper calls the real entry point; while
// a session has attached a sink, it is timed by the sink around the call.
//
// Two wrappers per name (one for dlsym's result, one for cuGetProcAddress's,
// which may differ) and per-thread-default-stream variant; a name resolved
// again to a different implementation is handed out unwrapped and counted.
#include "cupti/launch_hooks.h"

#include <cuda.h>
#include <cupti.h>
#include <dlfcn.h>

#include <atomic>
#include <cstring>
#include <tuple>
#include <type_traits>

#define HOOKS_API extern "C" __attribute__((visibility("default")))

namespace {

std::atomic<const SkipnativeHookSink*> g_sink{nullptr};
std::atomic<uint32_t> g_wrapped{0}, g_unwrapped{0};
int g_in_time = 0;

using DlsymFn = void* (*)(void*, const char*);
DlsymFn real_dlsym() {
  static DlsymFn fn = [] {
    // glibc 2.34 moved dlsym into libc; before it, the symbol has the
    // architecture's base version (x86-64 2.2.5, aarch64 2.17)
    auto f = reinterpret_cast<DlsymFn>(dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34"));
    if (f == nullptr) f = reinterpret_cast<DlsymFn>(dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5"));
    if (f == nullptr) f = reinterpret_cast<DlsymFn>(dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.17"));
    return f;
  }();
  return fn;
}

// The stream argument of an entry point: its first CUstream parameter, or a
// launch config's (cuLaunchKernelEx); none for calls without a stream.
template <class... A>
constexpr int stream_index() {
  constexpr bool is[] = {std::is_same_v<A, CUstream>..., false};
  for (int i = 0; i < int(sizeof...(A)); ++i)
    if (is[i]) return i;
  return -1;
}
template <class... A>
struct FirstIsLaunchConfig : std::false_type {};
template <class... A>
struct FirstIsLaunchConfig<const CUlaunchConfig*, A...> : std::true_type {};

template <class... A>
constexpr bool takes_stream() {
  return stream_index<A...>() >= 0 || FirstIsLaunchConfig<A...>::value;
}
template <class... A>
CUstream stream_of(A... a) {
  constexpr int i = stream_index<A...>();
  if constexpr (i >= 0) {
    return std::get<i>(std::tuple<A...>(a...));
  } else if constexpr (FirstIsLaunchConfig<A...>::value) {
    const CUlaunchConfig* config = std::get<0>(std::tuple<A...>(a...));
    return config ? config->hStream : nullptr;
  } else {
    return nullptr;
  }
}

// Stream captures begun and not yet ended, in the whole process (an upper
// bound: a failed end is not counted off). While there are none, no launch is
// asked whether its stream captures.
std::atomic<int> g_captures{0};
// Bumped after each stream or context destruction: a stream handle known
// before may name another stream from then on.
std::atomic<uint32_t> g_epoch{0};

using IsCapturingFn = CUresult(CUDAAPI*)(CUstream, CUstreamCaptureStatus*);

IsCapturingFn is_capturing(bool per_thread) {
  static std::atomic<IsCapturingFn> fns[2];
  IsCapturingFn f = fns[per_thread].load(std::memory_order_acquire);
  if (f == nullptr) {
    void* h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (h == nullptr) return nullptr;
    f = reinterpret_cast<IsCapturingFn>(
        real_dlsym()(h, per_thread ? "cuStreamIsCapturing_ptsz" : "cuStreamIsCapturing"));
    dlclose(h);
    fns[per_thread].store(f, std::memory_order_release);
  }
  return f;
}

// Whether a call on `stream` enqueues into a graph being captured. The legacy
// NULL stream is not asked: it cannot take part in a capture, and asking it
// while another stream captures may count as using it.
bool capturing(CUstream stream, bool per_thread) {
  const auto handle = reinterpret_cast<uintptr_t>(stream);
  if (g_captures.load(std::memory_order_relaxed) <= 0) return false;
  if ((handle == 0 && !per_thread) || stream == CU_STREAM_LEGACY) return false;
  IsCapturingFn f = is_capturing(per_thread);
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  return f != nullptr && f(stream, &status) == CUDA_SUCCESS &&
         status != CU_STREAM_CAPTURE_STATUS_NONE;
}

// `wrapper` where `slot` takes (or holds) `impl`; impl itself where another
// implementation holds the slot. Entry points handed out are counted.
template <class Fn>
void* wrap_slot(std::atomic<Fn>& slot, void* impl, void* wrapper, bool counted = true) {
  Fn expected = nullptr;
  Fn f = reinterpret_cast<Fn>(impl);
  if (slot.compare_exchange_strong(expected, f) || expected == f) {
    if (counted) g_wrapped.fetch_add(1, std::memory_order_relaxed);
    return wrapper;
  }
  g_unwrapped.fetch_add(1, std::memory_order_relaxed);
  return impl;
}

// One wrapper: the real entry point it calls, and the cbid it records as (a
// constant: resolvers on several threads may hand the wrapper out at once).
template <int I, uint16_t Cbid, bool PerThread, class F>
struct Hook;
template <int I, uint16_t Cbid, bool PerThread, class... A>
struct Hook<I, Cbid, PerThread, CUresult CUDAAPI(A...)> {
  // a launch, copy or set: work for a stream, which a capture takes instead
  static constexpr bool kWork = Cbid != CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize &&
                                Cbid != CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize_ptsz &&
                                Cbid != CUPTI_DRIVER_TRACE_CBID_cuEventRecord &&
                                Cbid != CUPTI_DRIVER_TRACE_CBID_cuEventRecord_ptsz &&
                                Cbid != CUPTI_DRIVER_TRACE_CBID_cuEventRecordWithFlags &&
                                Cbid != CUPTI_DRIVER_TRACE_CBID_cuEventRecordWithFlags_ptsz &&
                                Cbid != CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent &&
                                Cbid != CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent_ptsz;
  using Fn = CUresult(CUDAAPI*)(A...);
  static inline std::atomic<Fn> real{nullptr};
  static CUresult CUDAAPI call(A... a) {
    const Fn fn = real.load(std::memory_order_relaxed);
    const SkipnativeHookSink* s = g_sink.load(std::memory_order_acquire);
    if (__builtin_expect(s == nullptr, 1)) return fn(a...);
    SkipnativeHookCall c{};
    c.cbid = Cbid;
    c.per_thread = PerThread;
    c.epoch = g_epoch.load(std::memory_order_acquire);
    if constexpr (takes_stream<A...>()) {
      c.has_stream = 1;
      c.stream = stream_of(a...);
      if constexpr (kWork) c.captured = capturing(static_cast<CUstream>(c.stream), PerThread);
    }
    uint32_t id = 0;
    const uint64_t t = s->enter(&c, &id);
    const CUresult r = fn(a...);
    s->exit(t, id, Cbid, int(r));
    return r;
  }
  // The wrapper for `impl`, or impl itself where another implementation holds it.
  static void* wrap(void* impl) { return wrap_slot(real, impl, reinterpret_cast<void*>(&call)); }
};

// What a followed (not recorded) call changes once it returned.
enum class Follow { kBeginCapture, kEndCapture, kDestroy };

template <int I, Follow What, class F>
struct Follower;
template <int I, Follow What, class... A>
struct Follower<I, What, CUresult CUDAAPI(A...)> {
  using Fn = CUresult(CUDAAPI*)(A...);
  static inline std::atomic<Fn> real{nullptr};
  static CUresult CUDAAPI call(A... a) {
    // a handle destroyed may be reused by a stream another thread creates
    // before the call returns: cached lookups of it end on both sides
    if constexpr (What == Follow::kDestroy) g_epoch.fetch_add(1, std::memory_order_release);
    const CUresult r = real.load(std::memory_order_relaxed)(a...);
    if constexpr (What == Follow::kBeginCapture) {
      if (r == CUDA_SUCCESS) g_captures.fetch_add(1, std::memory_order_relaxed);
    } else if constexpr (What == Follow::kEndCapture) {
      // the capture is over (its graph returned, or discarded as invalid)
      if (r == CUDA_SUCCESS || r == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED ||
          r == CUDA_ERROR_STREAM_CAPTURE_UNJOINED) {
        int n = g_captures.load(std::memory_order_relaxed);
        while (n > 0 && !g_captures.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) {
        }
      }
    } else {
      g_epoch.fetch_add(1, std::memory_order_release);
    }
    return r;
  }
  static void* wrap(void* impl) { return wrap_slot(real, impl, reinterpret_cast<void*>(&call)); }
};

struct Entry {
  const char* name;  // the exported name (dlsym)
  const char* base;  // the name cuGetProcAddress is asked for
  bool ptsz;         // the per-thread-default-stream variant
  void* (*wrap_dlsym)(void*);
  void* (*wrap_proc)(void*);
};

#define SKIPNATIVE_HOOK_ENTRY(n, name, base, ptsz, type, cbid)                    \
  Entry {                                                                         \
    name, base, ptsz, &Hook<2 * (n), uint16_t(cbid), ptsz, decltype(type)>::wrap, \
        &Hook<2 * (n) + 1, uint16_t(cbid), ptsz, decltype(type)>::wrap            \
  }
#define SKIPNATIVE_HOOK_PAIR(n, fn, type)                                              \
  SKIPNATIVE_HOOK_ENTRY(2 * (n), #fn, #fn, false, type, CUPTI_DRIVER_TRACE_CBID_##fn), \
      SKIPNATIVE_HOOK_ENTRY(2 * (n) + 1, #fn "_ptsz", #fn, true, type,                 \
                            CUPTI_DRIVER_TRACE_CBID_##fn##_ptsz)
#define SKIPNATIVE_HOOK_V2_PAIR(n, fn, type)                                                      \
  SKIPNATIVE_HOOK_ENTRY(2 * (n), #fn "_v2", #fn, false, type, CUPTI_DRIVER_TRACE_CBID_##fn##_v2), \
      SKIPNATIVE_HOOK_ENTRY(2 * (n) + 1, #fn "_v2_ptsz", #fn, true, type,                         \
                            CUPTI_DRIVER_TRACE_CBID_##fn##_v2_ptsz)
#define SKIPNATIVE_HOOK_ONE(n, fn, type) \
  SKIPNATIVE_HOOK_ENTRY(2 * (n), #fn, #fn, false, type, CUPTI_DRIVER_TRACE_CBID_##fn)

// The launch, copy, set, synchronisation and event entry points of the
// driver that skipnative's callbacks record (cupti/api_table.cpp).
const Entry kEntries[] = {
    SKIPNATIVE_HOOK_PAIR(0, cuLaunchKernel, ::cuLaunchKernel),
    SKIPNATIVE_HOOK_PAIR(1, cuLaunchKernelEx, ::cuLaunchKernelEx),
    SKIPNATIVE_HOOK_PAIR(2, cuLaunchCooperativeKernel, ::cuLaunchCooperativeKernel),
    SKIPNATIVE_HOOK_PAIR(3, cuGraphLaunch, ::cuGraphLaunch),
    SKIPNATIVE_HOOK_PAIR(4, cuMemcpyAsync, ::cuMemcpyAsync),
    SKIPNATIVE_HOOK_V2_PAIR(5, cuMemcpyHtoDAsync, ::cuMemcpyHtoDAsync_v2),
    SKIPNATIVE_HOOK_V2_PAIR(6, cuMemcpyDtoHAsync, ::cuMemcpyDtoHAsync_v2),
    SKIPNATIVE_HOOK_V2_PAIR(7, cuMemcpyDtoDAsync, ::cuMemcpyDtoDAsync_v2),
    SKIPNATIVE_HOOK_PAIR(8, cuMemsetD8Async, ::cuMemsetD8Async),
    SKIPNATIVE_HOOK_PAIR(9, cuMemsetD16Async, ::cuMemsetD16Async),
    SKIPNATIVE_HOOK_PAIR(10, cuMemsetD32Async, ::cuMemsetD32Async),
    SKIPNATIVE_HOOK_V2_PAIR(16, cuMemcpy2DAsync, ::cuMemcpy2DAsync_v2),
    SKIPNATIVE_HOOK_V2_PAIR(17, cuMemcpy3DAsync, ::cuMemcpy3DAsync_v2),
    SKIPNATIVE_HOOK_PAIR(18, cuMemcpyPeerAsync, ::cuMemcpyPeerAsync),
    SKIPNATIVE_HOOK_PAIR(19, cuMemsetD2D8Async, ::cuMemsetD2D8Async),
    SKIPNATIVE_HOOK_PAIR(20, cuMemsetD2D16Async, ::cuMemsetD2D16Async),
    SKIPNATIVE_HOOK_PAIR(21, cuMemsetD2D32Async, ::cuMemsetD2D32Async),
    SKIPNATIVE_HOOK_PAIR(11, cuStreamSynchronize, ::cuStreamSynchronize),
    SKIPNATIVE_HOOK_PAIR(12, cuEventRecord, ::cuEventRecord),
    SKIPNATIVE_HOOK_PAIR(13, cuStreamWaitEvent, ::cuStreamWaitEvent),
    SKIPNATIVE_HOOK_PAIR(22, cuEventRecordWithFlags, ::cuEventRecordWithFlags),
    SKIPNATIVE_HOOK_ONE(14, cuCtxSynchronize, ::cuCtxSynchronize),
    SKIPNATIVE_HOOK_ONE(15, cuEventSynchronize, ::cuEventSynchronize),
};

#define SKIPNATIVE_FOLLOW_ENTRY(n, name, base, ptsz, type, what)              \
  Entry {                                                                     \
    name, base, ptsz, &Follower<2 * (n), Follow::what, decltype(type)>::wrap, \
        &Follower<2 * (n) + 1, Follow::what, decltype(type)>::wrap            \
  }

// The calls followed for the stream-order join, not recorded: captures begun
// and ended, streams and contexts destroyed. (The versions before these, for
// CUDA older than 10.1 and 4.0, are not followed.)
const Entry kFollowed[] = {
    SKIPNATIVE_FOLLOW_ENTRY(0, "cuStreamBeginCapture_v2", "cuStreamBeginCapture", false,
                            ::cuStreamBeginCapture_v2, kBeginCapture),
    SKIPNATIVE_FOLLOW_ENTRY(1, "cuStreamBeginCapture_v2_ptsz", "cuStreamBeginCapture", true,
                            ::cuStreamBeginCapture_v2, kBeginCapture),
    SKIPNATIVE_FOLLOW_ENTRY(2, "cuStreamBeginCaptureToGraph", "cuStreamBeginCaptureToGraph", false,
                            ::cuStreamBeginCaptureToGraph, kBeginCapture),
    SKIPNATIVE_FOLLOW_ENTRY(3, "cuStreamBeginCaptureToGraph_ptsz", "cuStreamBeginCaptureToGraph",
                            true, ::cuStreamBeginCaptureToGraph, kBeginCapture),
    SKIPNATIVE_FOLLOW_ENTRY(4, "cuStreamEndCapture", "cuStreamEndCapture", false,
                            ::cuStreamEndCapture, kEndCapture),
    SKIPNATIVE_FOLLOW_ENTRY(5, "cuStreamEndCapture_ptsz", "cuStreamEndCapture", true,
                            ::cuStreamEndCapture, kEndCapture),
    SKIPNATIVE_FOLLOW_ENTRY(6, "cuStreamDestroy_v2", "cuStreamDestroy", false, ::cuStreamDestroy_v2,
                            kDestroy),
    SKIPNATIVE_FOLLOW_ENTRY(7, "cuCtxDestroy_v2", "cuCtxDestroy", false, ::cuCtxDestroy_v2,
                            kDestroy),
    SKIPNATIVE_FOLLOW_ENTRY(8, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease", false,
                            ::cuDevicePrimaryCtxRelease_v2, kDestroy),
    SKIPNATIVE_FOLLOW_ENTRY(9, "cuDevicePrimaryCtxReset_v2", "cuDevicePrimaryCtxReset", false,
                            ::cuDevicePrimaryCtxReset_v2, kDestroy),
};

template <class F>
const Entry* find_entry(F&& match) {
  for (const Entry& e : kEntries)
    if (match(e)) return &e;
  for (const Entry& e : kFollowed)
    if (match(e)) return &e;
  return nullptr;
}

const Entry* by_name(const char* name) {
  if (name == nullptr || name[0] != 'c' || name[1] != 'u') return nullptr;
  return find_entry([&](const Entry& e) { return std::strcmp(e.name, name) == 0; });
}

const Entry* by_query(const char* symbol, bool ptsz) {
  if (symbol == nullptr) return nullptr;
  auto base = [&](const Entry& e) { return std::strcmp(e.base, symbol) == 0; };
  if (const Entry* e = find_entry([&](const Entry& x) { return base(x) && x.ptsz == ptsz; }))
    return e;
  // the per-thread variant of one that has none: the driver returns the legacy one
  return ptsz ? find_entry([&](const Entry& x) { return base(x) && !x.ptsz; }) : nullptr;
}

// Whether `p` lies in the loaded libcuda (the real driver or a library with its SONAME).
bool in_libcuda(void* p) {
  void* h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (h == nullptr) return false;
  void* init = real_dlsym()(h, "cuInit");
  dlclose(h);
  Dl_info a, b;
  return init && dladdr(p, &a) && dladdr(init, &b) && a.dli_fbase == b.dli_fbase;
}

using ProcV2Fn = CUresult(CUDAAPI*)(const char*, void**, int, cuuint64_t,
                                    CUdriverProcAddressQueryResult*);
using ProcV1Fn = CUresult(CUDAAPI*)(const char*, void**, int, cuuint64_t);
std::atomic<ProcV2Fn> g_proc_v2{nullptr};
std::atomic<ProcV1Fn> g_proc_v1{nullptr};

void* wrap_proc_result(const char* symbol, void* impl, int version, cuuint64_t flags);

CUresult CUDAAPI proc_v2(const char* symbol, void** pfn, int version, cuuint64_t flags,
                         CUdriverProcAddressQueryResult* status) {
  CUresult r = g_proc_v2.load()(symbol, pfn, version, flags, status);
  if (r == CUDA_SUCCESS && pfn && *pfn) *pfn = wrap_proc_result(symbol, *pfn, version, flags);
  return r;
}

CUresult CUDAAPI proc_v1(const char* symbol, void** pfn, int version, cuuint64_t flags) {
  CUresult r = g_proc_v1.load()(symbol, pfn, version, flags);
  if (r == CUDA_SUCCESS && pfn && *pfn) *pfn = wrap_proc_result(symbol, *pfn, version, flags);
  return r;
}

void* wrap_proc_result(const char* symbol, void* impl, int version, cuuint64_t flags) {
  if (symbol && std::strcmp(symbol, "cuGetProcAddress") == 0) {
    // asked for itself: the same implementation as one already wrapped, or the
    // one of the version asked for (cuGetProcAddress_v2 from CUDA 12.0)
    if (impl == reinterpret_cast<void*>(g_proc_v2.load())) return reinterpret_cast<void*>(&proc_v2);
    if (impl == reinterpret_cast<void*>(g_proc_v1.load())) return reinterpret_cast<void*>(&proc_v1);
    if (!in_libcuda(impl)) return impl;
    return version >= 12000 ? wrap_slot(g_proc_v2, impl, reinterpret_cast<void*>(&proc_v2), false)
                            : wrap_slot(g_proc_v1, impl, reinterpret_cast<void*>(&proc_v1), false);
  }
  const Entry* e = by_query(symbol, (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0);
  return e ? e->wrap_proc(impl) : impl;
}

__attribute__((constructor)) void on_load() {
  void* h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  g_in_time = h == nullptr;
  if (h) dlclose(h);
}

}  // namespace

namespace {

bool wrapped_name(const char* name) {
  return by_name(name) != nullptr || std::strcmp(name, "cuGetProcAddress_v2") == 0 ||
         std::strcmp(name, "cuGetProcAddress") == 0;
}

bool same_object(void* a, void* b) {
  Dl_info x{}, y{};
  return a && b && dladdr(a, &x) && dladdr(b, &y) && x.dli_fbase == y.dli_fbase;
}

void* lookup_in(DlsymFn real, const char* object, const char* name) {
  void* h = object ? dlopen(object, RTLD_LAZY | RTLD_NOLOAD) : nullptr;
  if (h == nullptr) return nullptr;
  void* p = real(h, name);
  dlclose(h);
  return p;
}

// dlsym of a wrapped name, called from `caller`. The real dlsym resolves
// RTLD_DEFAULT and RTLD_NEXT from its caller's scope, which here is this
// library's (the global scope). A library loaded RTLD_LOCAL has its
// dependencies in its own scope only, so where that finds nothing, or
// (RTLD_NEXT) finds the caller's own definition, RTLD_DEFAULT searches the
// caller's object and its dependencies, and both then the loaded libcuda.
void* lookup_wrapped(DlsymFn real, void* handle, const char* name, void* caller) {
  void* p = real(handle, name);
  if (handle != RTLD_DEFAULT && handle != RTLD_NEXT) return p;
  const bool next = handle == RTLD_NEXT;
  if (p != nullptr && !(next && same_object(p, caller))) return p;
  p = nullptr;
  Dl_info self{};
  if (!next && dladdr(caller, &self)) p = lookup_in(real, self.dli_fname, name);
  if (p == nullptr) p = lookup_in(real, "libcuda.so.1", name);
  return next && same_object(p, caller) ? nullptr : p;
}

}  // namespace

HOOKS_API void* dlsym(void* handle, const char* name) {
  DlsymFn real = real_dlsym();
  if (real == nullptr) return nullptr;
  // Every other name goes to the real dlsym as a tail call, so that it sees
  // the caller's return address, as without the hooks (the build keeps sibling
  // calls on for this file: tests/native/test_launch_hooks.py checks it).
  if (name == nullptr || name[0] != 'c' || name[1] != 'u' || !wrapped_name(name))
    return real(handle, name);
  void* p = lookup_wrapped(real, handle, name, __builtin_return_address(0));
  if (p == nullptr) return p;
  if (std::strcmp(name, "cuGetProcAddress_v2") == 0)
    return in_libcuda(p) ? wrap_slot(g_proc_v2, p, reinterpret_cast<void*>(&proc_v2), false) : p;
  if (std::strcmp(name, "cuGetProcAddress") == 0)
    return in_libcuda(p) ? wrap_slot(g_proc_v1, p, reinterpret_cast<void*>(&proc_v1), false) : p;
  const Entry* e = by_name(name);
  return in_libcuda(p) ? e->wrap_dlsym(p) : p;
}

HOOKS_API void skipnative_hooks_attach2(const SkipnativeHookSink* sink) {
  g_sink.store(sink, std::memory_order_release);
}
HOOKS_API int skipnative_hooks_in_time() { return g_in_time; }
HOOKS_API int skipnative_hooks_abi() { return SKIPNATIVE_HOOKS_ABI; }
HOOKS_API uint32_t skipnative_hooks_wrapped() { return g_wrapped.load(); }
HOOKS_API uint32_t skipnative_hooks_unwrapped() { return g_unwrapped.load(); }
HOOKS_API const char* skipnative_hooks_name(uint32_t i) {
  return i < sizeof kEntries / sizeof kEntries[0] ? kEntries[i].name : nullptr;
}
