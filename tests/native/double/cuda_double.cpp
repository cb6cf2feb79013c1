// A CUDA driver test double (SONAME libcuda.so.1): the driver functions
// skipnative's launch benchmarks and driver probe call, compiled against the
// real cuda.h, on the simulated GPU of the CUPTI test double. Loaded into a
// process before anything dlopens "libcuda.so.1", it is what that dlopen returns.
//
// Kernels found in a module are the PTX's .entry names; a kernel with a
// parameter (the benchmark's spin kernel) runs for its first u64 argument in
// cycles at 2.5 GHz, any other for the configured kernel time. Launches into a
// capturing stream are API calls without GPU work, recorded into the graph.
// Any function can be made to fail with a given error (error paths).
#include <cuda.h>
#include <cupti.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "sim_cuda.h"

#define CUDA_DOUBLE_API extern "C" __attribute__((visibility("default")))

namespace {

std::mutex g_mu;
std::map<std::string, int> g_failures;
uint64_t g_kernel_ns = 2000;
uint32_t g_next_stream = 100;
std::deque<CUfunc_st> g_functions;  // stable addresses, never freed
CUctx_st g_context;

constexpr int kDriver = 1;

CUresult failure(const char* function) {
  return CUresult(skipnative_cuda_double_failure(function));
}

#define CUDA_DOUBLE_FAIL(fn) \
  if (CUresult r_ = failure(fn)) return r_;

}  // namespace

// ------------------------------------------------------------ test controls --

// The next calls of `function` return `code` (0: succeed again).
CUDA_DOUBLE_API void skipnative_cuda_double_fail(const char* function, int code) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (code)
    g_failures[function] = code;
  else
    g_failures.erase(function);
}

CUDA_DOUBLE_API int skipnative_cuda_double_live(int what, int delta) {
  static std::atomic<int> live[3];
  return live[what % 3].fetch_add(delta) + delta;
}

CUDA_DOUBLE_API int skipnative_cuda_double_failure(const char* function) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_failures.find(function);
  return it == g_failures.end() ? 0 : it->second;
}

CUDA_DOUBLE_API void skipnative_cuda_double_set_kernel_ns(uint64_t ns) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_kernel_ns = ns;
}

CUDA_DOUBLE_API uint64_t skipnative_cuda_double_kernel_ns(const CUfunc_st* fn, void** params) {
  if (fn->params > 0 && params && params[0]) {
    uint64_t cycles;
    std::memcpy(&cycles, params[0], sizeof cycles);
    return uint64_t(double(cycles) / 2.5);
  }
  std::lock_guard<std::mutex> lock(g_mu);
  return g_kernel_ns;
}

// The kernel `name` of a PTX text, or null: ".entry name(" with its .param count.
CUDA_DOUBLE_API const CUfunc_st* skipnative_cuda_double_find(const char* ptx, const char* name) {
  std::string text(ptx), entry = std::string(".entry ") + name + "(";
  size_t at = text.find(entry);
  if (at == std::string::npos) return nullptr;
  size_t close = text.find(')', at);
  CUfunc_st fn;
  fn.name = name;
  for (size_t p = text.find(".param", at); p != std::string::npos && p < close;
       p = text.find(".param", p + 1))
    ++fn.params;
  std::lock_guard<std::mutex> lock(g_mu);
  g_functions.push_back(fn);
  return &g_functions.back();
}

// A kernel launch through (domain, cbid); a runtime launch calls the driver's
// cuLaunchKernel inside, as CUDA's runtime does.
// The id of a stream as CUPTI's double gives it (cuptiGetStreamIdEx): its own,
// or 7 for the legacy NULL stream (NULL, CU_STREAM_LEGACY) and 8 for the
// thread's own (CU_STREAM_PER_THREAD), which never capture here.
static uint32_t stream_id(CUstream_st* stream) {
  const auto handle = reinterpret_cast<uintptr_t>(stream);
  return handle > 2 ? stream->id : stream == CU_STREAM_PER_THREAD ? 8 : 7;
}

CUDA_DOUBLE_API void skipnative_cuda_double_launch(int domain, int cbid, const CUfunc_st* fn,
                                                   void** params, CUstream_st* stream) {
  if (reinterpret_cast<uintptr_t>(stream) > 2 && stream->capturing) {
    stream->captured.push_back(fn->name);
    skipnative_double_call(domain, cbid);
    return;
  }
  int inner = domain == kDriver ? -1 : kDriver;
  int inner_cbid = domain == kDriver ? -1 : int(CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel);
  skipnative_double_launch_nested(domain, cbid, inner, inner_cbid, stream_id(stream),
                                  fn->name.c_str(), skipnative_cuda_double_kernel_ns(fn, params));
}

// A dlsym made from inside this library. dlsym resolves RTLD_DEFAULT and
// RTLD_NEXT from its caller's scope, so this is how a library that the loader
// placed in a local scope sees them (the launch hooks' tests). The barrier
// keeps the call from becoming a tail call, which would make the caller ours.
CUDA_DOUBLE_API void* skipnative_cuda_double_dlsym(void* handle, const char* name) {
  void* p = dlsym(handle, name);
  asm volatile("" ::: "memory");
  return p;
}

// ------------------------------------------------------------- driver API --

// As the CUDA driver does: at the first cuInit, the library named by
// CUDA_INJECTION64_PATH is loaded and its InitializeInjection called (once per
// process). A library that does not load, or lacks the entry point, fails cuInit.
static CUresult load_injection() {
  const char* path = std::getenv("CUDA_INJECTION64_PATH");
  if (path == nullptr || *path == '\0') return CUDA_SUCCESS;
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  auto init = h ? reinterpret_cast<int (*)()>(dlsym(h, "InitializeInjection")) : nullptr;
  if (init == nullptr) {
    const char* e = dlerror();
    std::fprintf(stderr, "CUDA driver double: CUDA_INJECTION64_PATH=%s: %s\n", path,
                 e ? e : "no InitializeInjection");
    return CUDA_ERROR_NOT_INITIALIZED;
  }
  init();
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuInit(unsigned int) {
  CUDA_DOUBLE_FAIL("cuInit");
  static std::once_flag once;
  static CUresult injected = CUDA_SUCCESS;
  std::call_once(once, [] { injected = load_injection(); });
  return injected;
}

CUDA_DOUBLE_API CUresult cuDriverGetVersion(int* version) {
  *version = CUDA_VERSION;
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuDeviceGetCount(int* count) {
  CUDA_DOUBLE_FAIL("cuDeviceGetCount");
  *count = 1;
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
  *device = 0;
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuDeviceGetName(char* name, int len, CUdevice device) {
  if (device != 0 || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  std::strncpy(name, "skipnative simulated GPU", size_t(len));
  name[len - 1] = '\0';
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice device) {
  CUDA_DOUBLE_FAIL("cuDevicePrimaryCtxRetain");
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  *ctx = &g_context;
  skipnative_cuda_double_live(1, 1);
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuDevicePrimaryCtxRelease(CUdevice) {
  skipnative_cuda_double_live(1, -1);
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuCtxSetCurrent(CUcontext) { return CUDA_SUCCESS; }

CUDA_DOUBLE_API CUresult cuCtxGetCurrent(CUcontext* ctx) {
  *ctx = &g_context;
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuStreamGetCtx(CUstream, CUcontext* ctx) {
  *ctx = &g_context;
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  CUDA_DOUBLE_FAIL("cuModuleLoadData");
  const char* ptx = static_cast<const char*>(image);
  if (!ptx || !std::strstr(ptx, ".version") || !std::strstr(ptx, ".entry"))
    return CUDA_ERROR_INVALID_IMAGE;
  *module = new CUmod_st{ptx};
  skipnative_cuda_double_live(0, 1);
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuModuleUnload(CUmodule module) {
  delete module;
  skipnative_cuda_double_live(0, -1);
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuModuleGetFunction(CUfunction* fn, CUmodule module, const char* name) {
  const CUfunc_st* f = skipnative_cuda_double_find(module->ptx.c_str(), name);
  if (!f) return CUDA_ERROR_NOT_FOUND;
  *fn = const_cast<CUfunc_st*>(f);
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuStreamCreate(CUstream* stream, unsigned int) {
  std::lock_guard<std::mutex> lock(g_mu);
  *stream = new CUstream_st{g_next_stream++, false, {}};
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuStreamDestroy(CUstream stream) {
  delete stream;
  return CUDA_SUCCESS;
}

// The runtime API call this thread is inside (its cbid), if any: the runtime
// double calls cuLaunchKernel through the pointer cuGetProcAddress gave it, as
// CUDA's runtime does, and that call then simulates the whole runtime call
// (CUPTI's runtime callbacks around the driver's), so a wrapper of the driver
// entry point sees the runtime call's span.
thread_local int t_runtime_cbid = -1;

CUDA_DOUBLE_API void skipnative_cuda_double_runtime_call(int cbid) { t_runtime_cbid = cbid; }

CUDA_DOUBLE_API CUresult cuLaunchKernel(CUfunction f, unsigned, unsigned, unsigned, unsigned,
                                        unsigned, unsigned, unsigned, CUstream stream,
                                        void** params, void**) {
  const int runtime_cbid = t_runtime_cbid;
  t_runtime_cbid = -1;
  CUDA_DOUBLE_FAIL("cuLaunchKernel");
  if (!f) return CUDA_ERROR_INVALID_HANDLE;
  if (f->params > 0 && !params) return CUDA_ERROR_INVALID_VALUE;
  if (runtime_cbid >= 0)
    skipnative_cuda_double_launch(0, runtime_cbid, f, params, stream);
  else
    skipnative_cuda_double_launch(kDriver, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, f, params,
                                  stream);
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuDevicePrimaryCtxGetState(CUdevice device, unsigned int* flags,
                                                    int* active) {
  if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
  *flags = 0;
  *active = skipnative_cuda_double_live(1, 0) > 0;
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuStreamSynchronize(CUstream stream) {
  if (stream && stream->capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  skipnative_double_sync(kDriver, CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize);
  return CUDA_SUCCESS;
}

// One entry point with no per-thread-default-stream variant: asked for with
// CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, it is what cuGetProcAddress returns.
CUDA_DOUBLE_API CUresult cuCtxSynchronize() {
  skipnative_double_sync(kDriver, CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize);
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuStreamBeginCapture(CUstream stream, CUstreamCaptureMode) {
  if (!stream || stream->capturing) return CUDA_ERROR_ILLEGAL_STATE;
  stream->capturing = true;
  stream->captured.clear();
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuStreamIsCapturing(CUstream stream, CUstreamCaptureStatus* status) {
  *status = stream && reinterpret_cast<uintptr_t>(stream) > 2 && stream->capturing
                ? CU_STREAM_CAPTURE_STATUS_ACTIVE
                : CU_STREAM_CAPTURE_STATUS_NONE;
  skipnative_cuda_double_live(2, 1);
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuStreamEndCapture(CUstream stream, CUgraph* graph) {
  if (!stream || !stream->capturing) return CUDA_ERROR_ILLEGAL_STATE;
  stream->capturing = false;
  *graph = new CUgraph_st{stream->captured};
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuGraphInstantiate(CUgraphExec* exec, CUgraph graph, unsigned long long) {
  *exec = new CUgraphExec_st{graph->kernels};
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuGraphLaunch(CUgraphExec exec, CUstream stream) {
  CUDA_DOUBLE_FAIL("cuGraphLaunch");
  if (!exec || !stream) return CUDA_ERROR_INVALID_HANDLE;
  uint64_t ns;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    ns = g_kernel_ns;
  }
  const char* name = exec->kernels.empty() ? "" : exec->kernels.front().c_str();
  skipnative_double_graph_launch(kDriver, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, stream->id, name,
                                 uint32_t(exec->kernels.size()), ns);
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuGraphExecDestroy(CUgraphExec exec) {
  delete exec;
  return CUDA_SUCCESS;
}

CUDA_DOUBLE_API CUresult cuGraphDestroy(CUgraph graph) {
  delete graph;
  return CUDA_SUCCESS;
}

// The entry points a library may ask for by name (cuGetProcAddress): the
// double's own functions; per-thread-default-stream variants are the same here.
namespace {
struct Proc {
  const char* name;
  void* fn;
};
CUresult find_proc(const char* symbol, void** pfn);
}  // namespace

CUDA_DOUBLE_API CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int, cuuint64_t,
                                             CUdriverProcAddressQueryResult* status) {
  CUresult r = find_proc(symbol, pfn);
  if (status)
    *status =
        r == CUDA_SUCCESS ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  return r;
}

#undef cuGetProcAddress  // cuda.h maps it to _v2; the driver exports both
extern "C"
    __attribute__((visibility("default"))) CUresult cuGetProcAddress(const char* symbol, void** pfn,
                                                                     int, cuuint64_t) {
  return find_proc(symbol, pfn);
}

namespace {
CUresult find_proc(const char* symbol, void** pfn) {
  static const Proc procs[] = {
      {"cuInit", reinterpret_cast<void*>(&cuInit)},
      {"cuLaunchKernel", reinterpret_cast<void*>(&cuLaunchKernel)},
      {"cuGraphLaunch", reinterpret_cast<void*>(&cuGraphLaunch)},
      {"cuStreamSynchronize", reinterpret_cast<void*>(&cuStreamSynchronize)},
      {"cuCtxSynchronize", reinterpret_cast<void*>(&cuCtxSynchronize)},
      {"cuGetProcAddress", reinterpret_cast<void*>(&cuGetProcAddress_v2)},
  };
  if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
  for (const Proc& p : procs)
    if (std::strcmp(p.name, symbol) == 0) {
      *pfn = p.fn;
      return CUDA_SUCCESS;
    }
  *pfn = nullptr;
  return CUDA_ERROR_NOT_FOUND;
}
}  // namespace

CUDA_DOUBLE_API CUresult cuGetErrorString(CUresult error, const char** str) {
  switch (error) {
    case CUDA_SUCCESS:
      *str = "no error";
      break;
    case CUDA_ERROR_INVALID_VALUE:
      *str = "invalid argument";
      break;
    case CUDA_ERROR_NO_DEVICE:
      *str = "no CUDA-capable device is detected";
      break;
    case CUDA_ERROR_INVALID_DEVICE:
      *str = "invalid device ordinal";
      break;
    case CUDA_ERROR_INVALID_IMAGE:
      *str = "device kernel image is invalid";
      break;
    case CUDA_ERROR_INVALID_PTX:
      *str = "a PTX JIT compilation failed";
      break;
    case CUDA_ERROR_INVALID_HANDLE:
      *str = "invalid resource handle";
      break;
    case CUDA_ERROR_NOT_FOUND:
      *str = "named symbol not found";
      break;
    case CUDA_ERROR_ILLEGAL_STATE:
      *str = "the operation cannot be performed in the present state";
      break;
    case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED:
      *str = "operation not permitted when stream is capturing";
      break;
    default:
      *str = nullptr;
      return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}
