// Finds and dlopens libcupti (never linked), resolving every function a
// session calls. Search order: the copy already in the process (torch links
// libcupti.so.13), the nvidia-cuda-cupti wheel folders the caller found on
// sys.path, $SKIPNATIVE_CUPTI_LIBRARY, the system's loader path. The first
// library that loads and resolves is kept for the life of the process: CUPTI
// cannot be unloaded safely.
#pragma once

#include <cupti.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.h"

namespace skipnative {

struct CuptiApi {
  std::string path;    // what was loaded
  std::string origin;  // "in-process", "wheel", "env", "system"
  uint32_t version = 0;
  bool is_test_double = false;
  ExternalClockFn double_clock = nullptr;

  CUptiResult (*GetVersion)(uint32_t*) = nullptr;
  CUptiResult (*GetResultString)(CUptiResult, const char**) = nullptr;
  CUptiResult (*Subscribe)(CUpti_SubscriberHandle*, CUpti_CallbackFunc, void*) = nullptr;
  CUptiResult (*Unsubscribe)(CUpti_SubscriberHandle) = nullptr;
  CUptiResult (*EnableCallback)(uint32_t, CUpti_SubscriberHandle, CUpti_CallbackDomain,
                                CUpti_CallbackId) = nullptr;
  CUptiResult (*ActivityEnable)(CUpti_ActivityKind) = nullptr;
  CUptiResult (*ActivityDisable)(CUpti_ActivityKind) = nullptr;
  CUptiResult (*ActivityRegisterCallbacks)(CUpti_BuffersCallbackRequestFunc,
                                           CUpti_BuffersCallbackCompleteFunc) = nullptr;
  CUptiResult (*ActivityRegisterTimestampCallback)(CUpti_TimestampCallbackFunc) = nullptr;
  CUptiResult (*ActivityFlushAll)(uint32_t) = nullptr;
  CUptiResult (*ActivityGetNextRecord)(uint8_t*, size_t, CUpti_Activity**) = nullptr;
  CUptiResult (*ActivityGetNumDroppedRecords)(CUcontext, uint32_t, size_t*) = nullptr;
  CUptiResult (*ActivityEnableLatencyTimestamps)(uint8_t) = nullptr;  // optional
  CUptiResult (*Finalize)() = nullptr;                                // optional
  CUptiResult (*ActivitySetAttribute)(CUpti_ActivityAttribute, size_t*, void*) = nullptr;
  CUptiResult (*ActivityEnableHWTrace)(uint8_t) = nullptr;  // CUPTI 12.8+, Blackwell only
  CUptiResult (*ActivityEnableDriverApi)(CUpti_CallbackId, uint8_t) = nullptr;   // optional
  CUptiResult (*ActivityEnableRuntimeApi)(CUpti_CallbackId, uint8_t) = nullptr;  // optional
  CUptiResult (*ActivityFlushPeriod)(uint32_t) = nullptr;  // optional (hw_trace)
  // optional: launch_records = "hook" joins its launches to kernels through them
  CUptiResult (*ActivityPushExternalCorrelationId)(CUpti_ExternalCorrelationKind,
                                                   uint64_t) = nullptr;
  CUptiResult (*ActivityPopExternalCorrelationId)(CUpti_ExternalCorrelationKind,
                                                  uint64_t*) = nullptr;
  // optional: launch_records = "hook" with hook_join = "order" finds each
  // launch's stream through them
  CUptiResult (*GetStreamIdEx)(CUcontext, CUstream, uint8_t, uint32_t*) = nullptr;
  CUptiResult (*GetDeviceId)(CUcontext, uint32_t*) = nullptr;

  std::string error_string(CUptiResult r) const;
};

// Returns the process's CUPTI, loading it on first use; nullptr with `*why`
// explaining every attempt when none could be loaded.
const CuptiApi* load_cupti(const std::vector<std::string>& wheel_dirs, std::string* why);

// The CUPTI already loaded, or nullptr.
const CuptiApi* loaded_cupti();

// Whether a CUDA driver and at least one device are usable (dlopen libcuda.so.1,
// cuInit, cuDeviceGetCount). `*why` says what failed.
bool probe_driver(std::string* why, int* device_count);

// Names of the CUDA devices (empty when there is no driver).
std::vector<std::string> device_names();

}  // namespace skipnative
