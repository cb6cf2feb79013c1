// A CUDA runtime test double (SONAME libcudart.so.13): the runtime functions
// skipnative's launch benchmarks call, compiled against the real
// cuda_runtime_api.h. A runtime launch calls the driver double's cuLaunchKernel
// path inside it, so CUPTI reports both with one correlation id, as with CUDA.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <cupti.h>
#include <dlfcn.h>

#include <string>

#include "sim_cuda.h"

#define CUDART_DOUBLE_API extern "C" __attribute__((visibility("default")))

// Resolved in the process, from the driver double loaded before this library.
#pragma weak skipnative_cuda_double_failure
#pragma weak skipnative_cuda_double_find
#pragma weak skipnative_cuda_double_launch
#pragma weak skipnative_cuda_double_live
extern "C" void skipnative_cuda_double_runtime_call(int cbid);
#pragma weak skipnative_cuda_double_runtime_call

namespace {
// As CUDA's runtime: the driver's entry points come from cuGetProcAddress,
// itself found with dlsym on libcuda.
using LaunchFn = CUresult (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                              unsigned, unsigned, CUstream, void**, void**);
LaunchFn driver_launch() {
  static LaunchFn fn = [] {
    void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    using ProcFn =
        CUresult (*)(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*);
    auto proc = h ? reinterpret_cast<ProcFn>(dlsym(h, "cuGetProcAddress_v2")) : nullptr;
    void* p = nullptr;
    if (proc) proc("cuLaunchKernel", &p, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, nullptr);
    return reinterpret_cast<LaunchFn>(p);
  }();
  return fn;
}
}  // namespace

struct CUlib_st {
  std::string ptx;
};
struct CUkern_st {
  const CUfunc_st* fn;
};

CUDART_DOUBLE_API cudaError_t cudaSetDevice(int device) {
  if (!skipnative_cuda_double_failure) return cudaErrorInitializationError;  // no driver double
  if (int r = skipnative_cuda_double_failure("cudaSetDevice")) return cudaError_t(r);
  return device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

CUDART_DOUBLE_API cudaError_t cudaLibraryLoadData(cudaLibrary_t* library, const void* code,
                                                  cudaJitOption*, void**, unsigned int,
                                                  cudaLibraryOption*, void**, unsigned int) {
  if (int r = skipnative_cuda_double_failure("cudaLibraryLoadData")) return cudaError_t(r);
  if (!code) return cudaErrorInvalidValue;
  *library = new CUlib_st{static_cast<const char*>(code)};
  skipnative_cuda_double_live(0, 1);
  return cudaSuccess;
}

CUDART_DOUBLE_API cudaError_t cudaLibraryUnload(cudaLibrary_t library) {
  delete library;
  skipnative_cuda_double_live(0, -1);
  return cudaSuccess;
}

CUDART_DOUBLE_API cudaError_t cudaLibraryGetKernel(cudaKernel_t* kernel, cudaLibrary_t library,
                                                   const char* name) {
  const CUfunc_st* fn = skipnative_cuda_double_find(library->ptx.c_str(), name);
  if (!fn) return cudaErrorSymbolNotFound;
  *kernel = new CUkern_st{fn};
  return cudaSuccess;
}

CUDART_DOUBLE_API cudaError_t cudaLaunchKernel(const void* func, dim3, dim3, void** args, size_t,
                                               cudaStream_t stream) {
  if (int r = skipnative_cuda_double_failure("cudaLaunchKernel")) return cudaError_t(r);
  if (!func || !stream) return cudaErrorInvalidResourceHandle;
  const CUfunc_st* fn = static_cast<const CUkern_st*>(func)->fn;
  if (fn->params > 0 && !args) return cudaErrorInvalidValue;
  LaunchFn launch = driver_launch();
  if (!launch || !skipnative_cuda_double_runtime_call) return cudaErrorInitializationError;
  skipnative_cuda_double_runtime_call(CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000);
  CUresult r = launch(const_cast<CUfunc_st*>(fn), 1, 1, 1, 1, 1, 1, 0,
                      reinterpret_cast<CUstream>(stream), args, nullptr);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaError_t(r);
}

CUDART_DOUBLE_API const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorSymbolNotFound:
      return "named symbol not found";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorInitializationError:
      return "initialization error (the CUDA driver test double is not loaded)";
    default:
      return "unrecognized error code";
  }
}
