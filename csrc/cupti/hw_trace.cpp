// hw_trace = True: kernel timestamps from the Hardware Event System (HES,
// cuptiActivityEnableHWTrace, CUPTI 12.8+, Blackwell only). As CUPTI documents
// it: called once the driver is initialised and before a CUDA context exists,
// never with latency timestamps (not supported with HW trace), with periodic
// flushing (HES writes into a fixed hardware buffer that drops records when it
// is not drained), and not under MPS, MIG, confidential computing, vGPU, SLI or
// WSL (CUPTI refuses those with their own error codes, reported here by name).
// CUPTI before 13.4 Update 1 leaks and can crash with HES: refused.
#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "cupti/session.h"

namespace skipnative {

namespace {

constexpr uint32_t kHwTraceSafeVersion = 130400;  // CUPTI 13.4 (Update 1: see below)
constexpr uint32_t kHwTraceFlushPeriodMs = 100;

bool mps_client() {
  if (const char* d = std::getenv("CUDA_MPS_PIPE_DIRECTORY"); d && *d) return true;
  struct stat st;
  return stat("/tmp/nvidia-mps/control", &st) == 0;  // the default pipe of a running daemon
}

bool mig_visible() {
  const char* v = std::getenv("CUDA_VISIBLE_DEVICES");
  return v && std::string(v).find("MIG-") != std::string::npos;
}

// Whether some device's primary context is active (libcuda loaded and initialised).
bool context_exists() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) return false;
  using InitFn = int (*)(unsigned);
  using CountFn = int (*)(int*);
  using StateFn = int (*)(int, unsigned*, int*);
  auto init = reinterpret_cast<InitFn>(dlsym(h, "cuInit"));
  auto count = reinterpret_cast<CountFn>(dlsym(h, "cuDeviceGetCount"));
  auto state = reinterpret_cast<StateFn>(dlsym(h, "cuDevicePrimaryCtxGetState"));
  int n = 0;
  if (!init || !count || !state || init(0) != 0 || count(&n) != 0) return false;
  for (int d = 0; d < n; ++d) {
    unsigned flags = 0;
    int active = 0;
    if (state(d, &flags, &active) == 0 && active) return true;
  }
  return false;
}

// cuInit before cuptiActivityEnableHWTrace ("after the driver is initialised").
void init_driver() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (h == nullptr) return;
  auto init = reinterpret_cast<int (*)(unsigned)>(dlsym(h, "cuInit"));
  if (init) init(0);
}

const char* refusal_reason(CUptiResult r) {
  switch (r) {
    case CUPTI_ERROR_MIG_DEVICE_NOT_SUPPORTED:
      return "not supported on a MIG instance";
    case CUPTI_ERROR_CONFIDENTIAL_COMPUTING_NOT_SUPPORTED:
      return "not supported with confidential computing";
    case CUPTI_ERROR_VIRTUALIZED_DEVICE_NOT_SUPPORTED:
      return "not supported on a virtualised GPU";
    case CUPTI_ERROR_CMP_DEVICE_NOT_SUPPORTED:
      return "not supported on a CMP device";
    case CUPTI_ERROR_SLI_DEVICE_NOT_SUPPORTED:
      return "not supported with SLI";
    case CUPTI_ERROR_WSL_DEVICE_NOT_SUPPORTED:
      return "not supported under WSL";
    case CUPTI_ERROR_NOT_SUPPORTED:
      return "not supported on this GPU (Blackwell or newer only)";
    default:
      return nullptr;
  }
}

}  // namespace

// Before anything is enabled: the conditions CUPTI documents, each refused
// with its reason.
void Session::check_hw_trace() {
  const std::string no = "hw_trace=True refused: ";
  if (opts_.latency_timestamps)
    throw SessionError(no + "CUPTI does not support latency timestamps with the hardware trace");
  if (api_->ActivityEnableHWTrace == nullptr)
    throw SessionError(no + "this CUPTI has no cuptiActivityEnableHWTrace (CUPTI 12.8 or newer)");
  if (version_ < kHwTraceSafeVersion)
    throw SessionError(no + "CUPTI API version " + std::to_string(version_) +
                       " predates 13.4 Update 1, which fixes leaks and crashes of the hardware "
                       "event system; use CUPTI 13.4 Update 1 or newer");
  if (api_->ActivityFlushPeriod == nullptr)
    throw SessionError(no + "this CUPTI has no cuptiActivityFlushPeriod (needed to drain HES)");
  if (mps_client())
    throw SessionError(no +
                       "not supported under MPS (CUDA_MPS_PIPE_DIRECTORY or a running "
                       "MPS daemon found)");
  if (mig_visible())
    throw SessionError(no + "not supported on a MIG instance (CUDA_VISIBLE_DEVICES names one)");
  if (context_exists())
    throw SessionError(no +
                       "a CUDA context exists already; the hardware trace must be enabled "
                       "before the first CUDA use (start the capture first, or use skip run)");
}

void Session::enable_hw_trace() {
  init_driver();
  CUptiResult r = api_->ActivityEnableHWTrace(1);
  if (r != CUPTI_SUCCESS) {
    const char* why = refusal_reason(r);
    throw SessionError(
        std::string("hw_trace=True refused: ") +
        (why ? why : ("cuptiActivityEnableHWTrace failed: " + api_->error_string(r)).c_str()));
  }
  hw_trace_on_ = true;
  check(api_->ActivityFlushPeriod(kHwTraceFlushPeriodMs), "cuptiActivityFlushPeriod");
}

}  // namespace skipnative
