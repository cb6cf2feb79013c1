// Shared by the CUDA driver and runtime test doubles: the objects behind their
// handles, and the simulated-GPU entry points of the CUPTI test double they
// drive (every call goes through CUPTI's callbacks there, as a real launch does).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

// The handle types of cuda.h are pointers to structs it only declares.
struct CUmod_st {
  std::string ptx;
};
struct CUfunc_st {
  std::string name;
  int params = 0;  // .param entries: the spin kernel takes its cycle count
};
struct CUstream_st {
  uint32_t id = 0;
  bool capturing = false;
  std::vector<std::string> captured;  // kernel names launched while capturing
};
struct CUgraph_st {
  std::vector<std::string> kernels;
};
struct CUgraphExec_st {
  std::vector<std::string> kernels;
};
struct CUctx_st {
  int device = 0;
};

extern "C" {
uint32_t skipnative_double_launch_nested(int domain, int cbid, int inner_domain, int inner_cbid,
                                         uint32_t stream, const char* name, uint64_t duration_ns);
uint32_t skipnative_double_graph_launch(int domain, int cbid, uint32_t stream, const char* name,
                                        uint32_t n_kernels, uint64_t duration_ns);
uint32_t skipnative_double_sync(int domain, int cbid);
uint32_t skipnative_double_call(int domain, int cbid);

// Exported by the driver double, used by the runtime double.
int skipnative_cuda_double_failure(const char* function);
// Adds `delta` to a count (0: modules and libraries loaded, 1: primary-context
// references held, 2: cuStreamIsCapturing calls made) and returns it.
int skipnative_cuda_double_live(int what, int delta);
uint64_t skipnative_cuda_double_kernel_ns(const CUfunc_st* fn, void** params);
const CUfunc_st* skipnative_cuda_double_find(const char* ptx, const char* name);
void skipnative_cuda_double_launch(int domain, int cbid, const CUfunc_st* fn, void** params,
                                   CUstream_st* stream);
}
