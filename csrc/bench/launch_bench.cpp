#include "bench/launch_bench.h"

#include <cuda.h>
#include <dlfcn.h>

#include <chrono>
#include <cstring>

namespace skipnative::bench {

namespace {

// An empty kernel, and one that spins for a number of clock cycles (to fill the
// launch queue behind it). PTX ISA 7.0 for sm_50 is JIT-compiled by any current
// driver for the device at hand.
const char kPtx[] = R"(
.version 7.0
.target sm_50
.address_size 64

.visible .entry skipnative_null()
{
  ret;
}

.visible .entry skipnative_spin(.param .u64 cycles)
{
  .reg .pred %p;
  .reg .b64 %rd<5>;
  ld.param.u64 %rd1, [cycles];
  mov.u64 %rd2, %clock64;
SPIN:
  mov.u64 %rd3, %clock64;
  sub.s64 %rd4, %rd3, %rd2;
  setp.lt.u64 %p, %rd4, %rd1;
  @%p bra SPIN;
  ret;
}
)";

inline double now_ns() {
  return double(std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count());
}

// Runtime API entry points, declared by hand (the runtime's types are plain
// handles and ints; CUstream is cudaStream_t).
struct Dim3 {
  unsigned x, y, z;
};
using RtLibraryLoadData = int (*)(void**, const void*, void*, void*, unsigned, void*, void*,
                                  unsigned);
using RtLibraryGetKernel = int (*)(void**, void*, const char*);
using RtLaunchKernel = int (*)(const void*, Dim3, Dim3, void**, size_t, void*);
using RtLibraryUnload = int (*)(void*);
using RtGetErrorString = const char* (*)(int);
using RtSetDevice = int (*)(int);

}  // namespace

#define SKN_STR2(x) #x
#define SKN_STR(x) SKN_STR2(x)

struct LaunchBench::Fns {
  decltype(&::cuInit) Init;
  decltype(&::cuDeviceGet) DeviceGet;
  decltype(&::cuDeviceGetName) DeviceGetName;
  decltype(&::cuDevicePrimaryCtxRetain) PrimaryCtxRetain;
  decltype(&::cuDevicePrimaryCtxRelease) PrimaryCtxRelease;
  decltype(&::cuCtxSetCurrent) CtxSetCurrent;
  decltype(&::cuModuleLoadData) ModuleLoadData;
  decltype(&::cuModuleUnload) ModuleUnload;
  decltype(&::cuModuleGetFunction) ModuleGetFunction;
  decltype(&::cuLaunchKernel) LaunchKernel;
  decltype(&::cuStreamCreate) StreamCreate;
  decltype(&::cuStreamDestroy) StreamDestroy;
  decltype(&::cuStreamSynchronize) StreamSynchronize;
  decltype(&::cuStreamBeginCapture) StreamBeginCapture;
  decltype(&::cuStreamEndCapture) StreamEndCapture;
  decltype(&::cuGraphInstantiate) GraphInstantiate;
  decltype(&::cuGraphLaunch) GraphLaunch;
  decltype(&::cuGraphExecDestroy) GraphExecDestroy;
  decltype(&::cuGraphDestroy) GraphDestroy;
  decltype(&::cuGetErrorString) GetErrorString;
  RtLibraryLoadData RtLoad = nullptr;
  RtLibraryGetKernel RtGetKernel = nullptr;
  RtLaunchKernel RtLaunch = nullptr;
  RtLibraryUnload RtUnload = nullptr;
  RtGetErrorString RtError = nullptr;
  RtSetDevice RtSet = nullptr;
};

void LaunchBench::check(int r, const char* what) {
  if (r == 0) return;
  const char* s = nullptr;
  if (f_ && f_->GetErrorString) f_->GetErrorString(CUresult(r), &s);
  throw BenchError(std::string(what) + " failed: " + (s ? s : "CUDA error " + std::to_string(r)));
}

LaunchBench::LaunchBench(int device, const std::vector<std::string>& runtime_dirs) : f_(new Fns{}) {
  cuda_ = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (!cuda_) {
    const char* e = dlerror();
    throw BenchError(std::string("no CUDA driver (") + (e ? e : "libcuda.so.1 not found") + ")");
  }
  std::string missing;
#define SKN_RESOLVE(field, fn)                                                  \
  f_->field = reinterpret_cast<decltype(f_->field)>(dlsym(cuda_, SKN_STR(fn))); \
  if (!f_->field) missing += std::string(missing.empty() ? "" : ", ") + SKN_STR(fn);
  SKN_RESOLVE(Init, cuInit)
  SKN_RESOLVE(DeviceGet, cuDeviceGet)
  SKN_RESOLVE(DeviceGetName, cuDeviceGetName)
  SKN_RESOLVE(PrimaryCtxRetain, cuDevicePrimaryCtxRetain)
  SKN_RESOLVE(PrimaryCtxRelease, cuDevicePrimaryCtxRelease)
  SKN_RESOLVE(CtxSetCurrent, cuCtxSetCurrent)
  SKN_RESOLVE(ModuleLoadData, cuModuleLoadData)
  SKN_RESOLVE(ModuleUnload, cuModuleUnload)
  SKN_RESOLVE(ModuleGetFunction, cuModuleGetFunction)
  SKN_RESOLVE(LaunchKernel, cuLaunchKernel)
  SKN_RESOLVE(StreamCreate, cuStreamCreate)
  SKN_RESOLVE(StreamDestroy, cuStreamDestroy)
  SKN_RESOLVE(StreamSynchronize, cuStreamSynchronize)
  SKN_RESOLVE(StreamBeginCapture, cuStreamBeginCapture)
  SKN_RESOLVE(StreamEndCapture, cuStreamEndCapture)
  SKN_RESOLVE(GraphInstantiate, cuGraphInstantiate)
  SKN_RESOLVE(GraphLaunch, cuGraphLaunch)
  SKN_RESOLVE(GraphExecDestroy, cuGraphExecDestroy)
  SKN_RESOLVE(GraphDestroy, cuGraphDestroy)
  SKN_RESOLVE(GetErrorString, cuGetErrorString)
#undef SKN_RESOLVE
  if (!missing.empty()) throw BenchError("libcuda.so.1 lacks " + missing);

  check(f_->Init(0), "cuInit");
  CUdevice dev;
  check(f_->DeviceGet(&dev, device), "cuDeviceGet");
  char name[256] = {0};
  f_->DeviceGetName(name, sizeof name - 1, dev);
  device_name_ = name;
  CUcontext ctx;
  check(f_->PrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  ctx_ = ctx;
  device_ = dev;
  check(f_->CtxSetCurrent(ctx), "cuCtxSetCurrent");
  CUmodule mod;
  check(f_->ModuleLoadData(&mod, kPtx), "cuModuleLoadData");
  module_ = mod;
  CUfunction fn;
  check(f_->ModuleGetFunction(&fn, mod, "skipnative_null"), "cuModuleGetFunction");
  fn_null_ = fn;
  check(f_->ModuleGetFunction(&fn, mod, "skipnative_spin"), "cuModuleGetFunction");
  fn_spin_ = fn;
  CUstream s;
  check(f_->StreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  stream_ = s;

  // The runtime: the copy already in the process (torch's), else one of the
  // given folders (the nvidia-cuda-runtime wheel), else the system's.
  std::vector<std::string> candidates;
  for (const char* so : {"libcudart.so.13", "libcudart.so.12"}) {
    if (void* h = dlopen(so, RTLD_NOW | RTLD_NOLOAD)) {
      runtime_ = h;
      runtime_path_ = so;
      break;
    }
  }
  if (!runtime_) {
    for (const auto& d : runtime_dirs)
      for (const char* so : {"libcudart.so.13", "libcudart.so.12"})
        candidates.push_back(d + "/" + so);
    candidates.push_back("libcudart.so.13");
    candidates.push_back("libcudart.so.12");
    for (const auto& c : candidates)
      if ((runtime_ = dlopen(c.c_str(), RTLD_NOW | RTLD_GLOBAL))) {
        runtime_path_ = c;
        break;
      }
  }
  if (runtime_) {
    f_->RtLoad = reinterpret_cast<RtLibraryLoadData>(dlsym(runtime_, "cudaLibraryLoadData"));
    f_->RtGetKernel = reinterpret_cast<RtLibraryGetKernel>(dlsym(runtime_, "cudaLibraryGetKernel"));
    f_->RtLaunch = reinterpret_cast<RtLaunchKernel>(dlsym(runtime_, "cudaLaunchKernel"));
    f_->RtError = reinterpret_cast<RtGetErrorString>(dlsym(runtime_, "cudaGetErrorString"));
    f_->RtSet = reinterpret_cast<RtSetDevice>(dlsym(runtime_, "cudaSetDevice"));
    f_->RtUnload = reinterpret_cast<RtLibraryUnload>(dlsym(runtime_, "cudaLibraryUnload"));
    if (f_->RtLoad && f_->RtGetKernel && f_->RtLaunch && f_->RtSet && f_->RtSet(device) == 0 &&
        f_->RtLoad(&rt_library_, kPtx, nullptr, nullptr, 0, nullptr, nullptr, 0) == 0 &&
        f_->RtGetKernel(&rt_kernel_, rt_library_, "skipnative_null") == 0) {
      f_->CtxSetCurrent(ctx);  // the runtime uses the same primary context
    } else {
      runtime_ = nullptr;  // no usable runtime: driver-only measurements
      runtime_path_.clear();
    }
  }
}

LaunchBench::~LaunchBench() {
  if (keep_loaded_) {
    if (f_ && stream_) f_->StreamSynchronize(CUstream(stream_));
    return;  // f_ too: the process's end takes all of it
  }
  if (f_ && stream_) {
    f_->StreamSynchronize(CUstream(stream_));
    f_->StreamDestroy(CUstream(stream_));
  }
  if (f_ && module_) f_->ModuleUnload(CUmodule(module_));
  if (f_ && rt_library_ && f_->RtUnload) f_->RtUnload(rt_library_);
  if (f_ && ctx_) f_->PrimaryCtxRelease(CUdevice(device_));
  delete f_;
}

void LaunchBench::launch(Api api) {
  if (api == Api::kDriver) {
    check(f_->LaunchKernel(CUfunction(fn_null_), 1, 1, 1, 1, 1, 1, 0, CUstream(stream_), nullptr,
                           nullptr),
          "cuLaunchKernel");
  } else {
    if (!runtime_) throw BenchError("no usable libcudart: runtime launches unavailable");
    int r = f_->RtLaunch(rt_kernel_, Dim3{1, 1, 1}, Dim3{1, 1, 1}, nullptr, 0, stream_);
    if (r != 0)
      throw BenchError(std::string("cudaLaunchKernel failed: ") +
                       (f_->RtError ? f_->RtError(r) : std::to_string(r)));
  }
}

void LaunchBench::sync() { check(f_->StreamSynchronize(CUstream(stream_)), "cuStreamSynchronize"); }

std::vector<double> LaunchBench::launch_call(Api api, int n, int drain) {
  std::vector<double> out;
  out.reserve(size_t(n));
  for (int i = 0; i < n; ++i) {
    if (drain > 0 && i % drain == 0) sync();
    double t = now_ns();
    launch(api);
    out.push_back(now_ns() - t);
  }
  sync();
  return out;
}

std::vector<double> LaunchBench::roundtrip(Api api, int n) {
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    double t = now_ns();
    launch(api);
    sync();
    out.push_back(now_ns() - t);
  }
  return out;
}

std::vector<double> LaunchBench::throughput(Api api, int n, int reps) {
  std::vector<double> out;
  for (int r = 0; r < reps; ++r) {
    sync();
    double t = now_ns();
    for (int i = 0; i < n; ++i) launch(api);
    out.push_back((now_ns() - t) / n);
    sync();
  }
  return out;
}

std::vector<double> LaunchBench::queue_probe(Api api, int max_launches, double spin_ms) {
  sync();
  // ~spin_ms at up to 2.5 GHz of SM clock; only "long enough" matters
  unsigned long long cycles = (unsigned long long)(spin_ms * 2.5e6);
  void* args[] = {&cycles};
  check(
      f_->LaunchKernel(CUfunction(fn_spin_), 1, 1, 1, 1, 1, 1, 0, CUstream(stream_), args, nullptr),
      "cuLaunchKernel(spin)");
  std::vector<double> out;
  for (int i = 0; i < max_launches; ++i) {
    double t = now_ns();
    launch(api);
    out.push_back(now_ns() - t);
  }
  sync();
  return out;
}

std::vector<double> LaunchBench::graph_launch(int n_kernels, int reps) {
  sync();
  check(f_->StreamBeginCapture(CUstream(stream_), CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
        "cuStreamBeginCapture");
  for (int i = 0; i < n_kernels; ++i) launch(Api::kDriver);
  CUgraph graph;
  check(f_->StreamEndCapture(CUstream(stream_), &graph), "cuStreamEndCapture");
  CUgraphExec exec;
  check(f_->GraphInstantiate(&exec, graph, 0), "cuGraphInstantiate");
  std::vector<double> out;
  for (int r = 0; r < reps + 1; ++r) {
    double t = now_ns();
    check(f_->GraphLaunch(exec, CUstream(stream_)), "cuGraphLaunch");
    sync();
    if (r > 0) out.push_back(now_ns() - t);  // the first replay uploads the graph
  }
  f_->GraphExecDestroy(exec);
  f_->GraphDestroy(graph);
  return out;
}

std::vector<double> LaunchBench::stream_launches(int n_kernels, int reps) {
  std::vector<double> out;
  for (int r = 0; r < reps; ++r) {
    sync();
    double t = now_ns();
    for (int i = 0; i < n_kernels; ++i) launch(Api::kDriver);
    sync();
    out.push_back(now_ns() - t);
  }
  return out;
}

void LaunchBench::idle_launches(Api api, int n) {
  for (int i = 0; i < n; ++i) {
    launch(api);
    sync();
  }
}

const char* null_kernel_ptx() { return kPtx; }

}  // namespace skipnative::bench
