#include "cupti/api_table.h"

#include <cupti.h>

namespace skipnative {

// Launch, copy/set, synchronisation and event APIs of both the runtime and the
// driver. Names are the API names without the version suffix of the cbid
// (cudaLaunchKernel, cuLaunchKernel_ptsz), as Kineto writes them.
const std::vector<ApiInfo>& subscribed_apis() {
  static const std::vector<ApiInfo> apis = {
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, ApiKind::kKernel, "cudaLaunchKernel"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000, ApiKind::kKernel, "cudaLaunchKernel_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060, ApiKind::kKernel, "cudaLaunchKernelExC"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060, ApiKind::kKernel, "cudaLaunchKernelExC_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000, ApiKind::kKernel, "cudaLaunchCooperativeKernel"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000, ApiKind::kKernel, "cudaLaunchCooperativeKernel_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernelMultiDevice_v9000, ApiKind::kKernel, "cudaLaunchCooperativeKernelMultiDevice"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, ApiKind::kGraph, "cudaGraphLaunch"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_ptsz_v10000, ApiKind::kGraph, "cudaGraphLaunch_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020, ApiKind::kCopy, "cudaMemcpyAsync"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_ptsz_v7000, ApiKind::kCopy, "cudaMemcpyAsync_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2DAsync_v3020, ApiKind::kCopy, "cudaMemcpy2DAsync"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2DAsync_ptsz_v7000, ApiKind::kCopy, "cudaMemcpy2DAsync_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy3DAsync_v3020, ApiKind::kCopy, "cudaMemcpy3DAsync"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy3DAsync_ptsz_v7000, ApiKind::kCopy, "cudaMemcpy3DAsync_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyPeerAsync_v4000, ApiKind::kCopy, "cudaMemcpyPeerAsync"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbolAsync_v3020, ApiKind::kCopy, "cudaMemcpyToSymbolAsync"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbolAsync_ptsz_v7000, ApiKind::kCopy, "cudaMemcpyToSymbolAsync_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbolAsync_v3020, ApiKind::kCopy, "cudaMemcpyFromSymbolAsync"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbolAsync_ptsz_v7000, ApiKind::kCopy, "cudaMemcpyFromSymbolAsync_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020, ApiKind::kSet, "cudaMemsetAsync"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_ptsz_v7000, ApiKind::kSet, "cudaMemsetAsync_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemset2DAsync_v3020, ApiKind::kSet, "cudaMemset2DAsync"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemset2DAsync_ptsz_v7000, ApiKind::kSet, "cudaMemset2DAsync_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemset3DAsync_v3020, ApiKind::kSet, "cudaMemset3DAsync"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemset3DAsync_ptsz_v7000, ApiKind::kSet, "cudaMemset3DAsync_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020, ApiKind::kSync, "cudaStreamSynchronize"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_ptsz_v7000, ApiKind::kSync, "cudaStreamSynchronize_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020, ApiKind::kSync, "cudaDeviceSynchronize"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaEventSynchronize_v3020, ApiKind::kSync, "cudaEventSynchronize"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020, ApiKind::kSync, "cudaMemcpy"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_ptds_v7000, ApiKind::kSync, "cudaMemcpy_ptds"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020, ApiKind::kSync, "cudaMemset"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemset_ptds_v7000, ApiKind::kSync, "cudaMemset_ptds"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbol_v3020, ApiKind::kSync, "cudaMemcpyToSymbol"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbol_v3020, ApiKind::kSync, "cudaMemcpyFromSymbol"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaEventRecord_v3020, ApiKind::kEvent, "cudaEventRecord"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaEventRecord_ptsz_v7000, ApiKind::kEvent, "cudaEventRecord_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaEventRecordWithFlags_v11010, ApiKind::kEvent, "cudaEventRecordWithFlags"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaEventRecordWithFlags_ptsz_v11010, ApiKind::kEvent, "cudaEventRecordWithFlags_ptsz"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaStreamWaitEvent_v3020, ApiKind::kEvent, "cudaStreamWaitEvent"},
      {0, CUPTI_RUNTIME_TRACE_CBID_cudaStreamWaitEvent_ptsz_v7000, ApiKind::kEvent, "cudaStreamWaitEvent_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, ApiKind::kKernel, "cuLaunchKernel"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz, ApiKind::kKernel, "cuLaunchKernel_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx, ApiKind::kKernel, "cuLaunchKernelEx"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz, ApiKind::kKernel, "cuLaunchKernelEx_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel, ApiKind::kKernel, "cuLaunchCooperativeKernel"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz, ApiKind::kKernel, "cuLaunchCooperativeKernel_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, ApiKind::kGraph, "cuGraphLaunch"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz, ApiKind::kGraph, "cuGraphLaunch_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync, ApiKind::kCopy, "cuMemcpyAsync"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync_ptsz, ApiKind::kCopy, "cuMemcpyAsync_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2, ApiKind::kCopy, "cuMemcpyHtoDAsync_v2"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2_ptsz, ApiKind::kCopy, "cuMemcpyHtoDAsync_v2_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2, ApiKind::kCopy, "cuMemcpyDtoHAsync_v2"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2_ptsz, ApiKind::kCopy, "cuMemcpyDtoHAsync_v2_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoDAsync_v2, ApiKind::kCopy, "cuMemcpyDtoDAsync_v2"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoDAsync_v2_ptsz, ApiKind::kCopy, "cuMemcpyDtoDAsync_v2_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpy2DAsync_v2, ApiKind::kCopy, "cuMemcpy2DAsync_v2"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpy3DAsync_v2, ApiKind::kCopy, "cuMemcpy3DAsync_v2"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemcpyPeerAsync, ApiKind::kCopy, "cuMemcpyPeerAsync"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemsetD8Async, ApiKind::kSet, "cuMemsetD8Async"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemsetD8Async_ptsz, ApiKind::kSet, "cuMemsetD8Async_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemsetD16Async, ApiKind::kSet, "cuMemsetD16Async"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemsetD16Async_ptsz, ApiKind::kSet, "cuMemsetD16Async_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemsetD32Async, ApiKind::kSet, "cuMemsetD32Async"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemsetD32Async_ptsz, ApiKind::kSet, "cuMemsetD32Async_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D8Async, ApiKind::kSet, "cuMemsetD2D8Async"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D16Async, ApiKind::kSet, "cuMemsetD2D16Async"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D32Async, ApiKind::kSet, "cuMemsetD2D32Async"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize, ApiKind::kSync, "cuStreamSynchronize"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize_ptsz, ApiKind::kSync, "cuStreamSynchronize_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize, ApiKind::kSync, "cuCtxSynchronize"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuEventSynchronize, ApiKind::kSync, "cuEventSynchronize"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuEventRecord, ApiKind::kEvent, "cuEventRecord"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuEventRecord_ptsz, ApiKind::kEvent, "cuEventRecord_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuEventRecordWithFlags, ApiKind::kEvent, "cuEventRecordWithFlags"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuEventRecordWithFlags_ptsz, ApiKind::kEvent, "cuEventRecordWithFlags_ptsz"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent, ApiKind::kEvent, "cuStreamWaitEvent"},
      {1, CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent_ptsz, ApiKind::kEvent, "cuStreamWaitEvent_ptsz"},
  };
  return apis;
}

ApiKindTable::ApiKindTable() {
  table_[0].assign(CUPTI_RUNTIME_TRACE_CBID_SIZE, uint8_t(ApiKind::kOther));
  table_[1].assign(CUPTI_DRIVER_TRACE_CBID_SIZE, uint8_t(ApiKind::kOther));
  for (const auto& a : subscribed_apis()) table_[a.domain][a.cbid] = uint8_t(a.kind);
}

const ApiKindTable& api_kind_table() {
  static const ApiKindTable t;
  return t;
}

}  // namespace skipnative
