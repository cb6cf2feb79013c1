// The CUPTI test double's controls for the native session tests, found in the
// library the loader loaded (SKIPNATIVE_CUPTI_LIBRARY).
#pragma once

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cupti/loader.h"

namespace {

constexpr int kRuntime = 0, kDriver = 1;
constexpr int kLaunch = CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000;
constexpr int kDriverLaunch = CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel;
constexpr int kDeviceSync = CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020;

// The double's controls, found in the library the loader loaded.
struct Double {
  void (*reset)(uint32_t);
  void (*configure)(uint64_t, uint64_t, uint32_t, int);
  uint32_t (*launch)(int, int, uint32_t, const char*, uint64_t);
  uint32_t (*nested)(int, int, int, int, uint32_t, const char*, uint64_t);
  uint32_t (*sync)(int, int);
  uint64_t (*launch_many)(uint64_t, int, int, uint32_t, const char*, uint64_t);
  CUptiResult (*flush)(uint32_t);  // cuptiActivityFlushAll: delivers held buffers
  int (*subscribed)();
  uint64_t (*finalized)();
  uint64_t (*refused_buffers)();
  uint64_t (*call_timestamp_callback)();
  CUptiResult (*enable_kind)(CUpti_ActivityKind);  // as another CUPTI user would
  CUptiResult (*disable_kind)(CUpti_ActivityKind);
  void (*on_activity_enable)(void (*)(int));  // f(kind) at each cuptiActivityEnable
  uint64_t (*calls_after_finalize)();         // external correlation calls after cuptiFinalize
  uint64_t (*dirty_buffers)();                // buffers handed to CUPTI as zeroed that were not
  void (*advance)(uint64_t);                  // virtual time moves on by this many ns
};

template <class F>
void bind(void* h, F& f, const char* name) {
  f = reinterpret_cast<F>(dlsym(h, name));
  if (!f) {
    std::fprintf(stderr, "the test double lacks %s\n", name);
    std::exit(2);
  }
}

Double load_double() {
  std::string why;
  const skipnative::CuptiApi* api = skipnative::load_cupti({}, &why);
  if (!api || !api->is_test_double) {
    std::fprintf(stderr, "set SKIPNATIVE_CUPTI_LIBRARY to the CUPTI test double (%s)\n",
                 why.c_str());
    std::exit(2);
  }
  void* h = dlopen(api->path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  Double d{};
  bind(h, d.reset, "skipnative_double_reset");
  bind(h, d.configure, "skipnative_double_configure");
  bind(h, d.launch, "skipnative_double_launch");
  bind(h, d.advance, "skipnative_double_advance");
  bind(h, d.nested, "skipnative_double_launch_nested");
  bind(h, d.sync, "skipnative_double_sync");
  bind(h, d.launch_many, "skipnative_double_launch_many");
  bind(h, d.flush, "cuptiActivityFlushAll");
  bind(h, d.subscribed, "skipnative_double_subscribed");
  bind(h, d.finalized, "skipnative_double_finalized");
  bind(h, d.refused_buffers, "skipnative_double_refused_buffers");
  bind(h, d.call_timestamp_callback, "skipnative_double_call_timestamp_callback");
  bind(h, d.enable_kind, "cuptiActivityEnable");
  bind(h, d.dirty_buffers, "skipnative_double_dirty_buffers");
  bind(h, d.disable_kind, "cuptiActivityDisable");
  bind(h, d.on_activity_enable, "skipnative_double_on_activity_enable");
  bind(h, d.calls_after_finalize, "skipnative_double_calls_after_finalize");
  return d;
}

}  // namespace
