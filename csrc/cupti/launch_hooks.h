// The C interface between the launch hooks (libskipnative_hooks.so, preloaded
// into a process before CUDA is loaded) and a capture session. The hooks wrap
// the driver's launch, copy, set, synchronisation and event entry points where
// libraries resolve them (cuGetProcAddress, dlsym on libcuda); while a sink is
// attached, each wrapped call is timed by the sink's enter/exit around the real
// call. No CUPTI callback and no API record is involved.
#pragma once

#include <cstdint>

extern "C" {

struct SkipnativeHookSink {
  // Before the real call: the call's begin ticks; *external_id gets the id the
  // sink pushed as CUPTI's external correlation id.
  uint64_t (*enter)(uint32_t* external_id);
  // After it: pops the id and records the call of driver cbid `cbid`.
  void (*exit)(uint64_t t_begin, uint32_t external_id, uint16_t cbid);
};

// Exported by libskipnative_hooks.so, found by the session with dlsym.
// attach(nullptr) detaches. A sink must stay valid for the life of the process
// (a call that read it may still be running after a detach).
void skipnative_hooks_attach(const SkipnativeHookSink* sink);
// 1 when the hooks were loaded before any libcuda: every entry point resolved
// since went through them. 0 when a libcuda was already loaded (entry points
// resolved before cannot be wrapped).
int skipnative_hooks_in_time();
// Entry points handed out wrapped so far, and those left unwrapped (a second,
// different implementation for a name already wrapped).
uint32_t skipnative_hooks_wrapped();
uint32_t skipnative_hooks_unwrapped();
// The i-th entry point wrapped, by its exported name (cuMemcpyHtoDAsync_v2,
// cuLaunchKernel_ptsz); nullptr past the last.
const char* skipnative_hooks_name(uint32_t i);

typedef void (*SkipnativeHooksAttachFn)(const SkipnativeHookSink*);
typedef int (*SkipnativeHooksInTimeFn)();
typedef uint32_t (*SkipnativeHooksCountFn)();
}
