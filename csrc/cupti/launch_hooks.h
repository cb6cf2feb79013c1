// The C interface between the launch hooks (libskipnative_hooks.so, preloaded
// into a process before CUDA is loaded) and a capture session. The hooks wrap
// the driver's launch, copy, set, synchronisation and event entry points where
// libraries resolve them (cuGetProcAddress, dlsym on libcuda); while a sink is
// attached, each wrapped call is timed by the sink's enter/exit around the real
// call. No CUPTI callback and no API record is involved. The hooks also follow,
// without recording them, the calls a stream-order join must know of: stream
// captures begun and ended (a launch into a capturing stream enqueues no work)
// and streams and contexts destroyed (a stream's handle may be reused).
#pragma once

#include <cstdint>

extern "C" {

// What a wrapper knows of one call, handed to the sink before the call is made.
struct SkipnativeHookCall {
  void* stream;        // the call's CUstream argument (NULL also for the NULL stream)
  uint32_t epoch;      // bumped after every stream or context destruction
  uint16_t cbid;       // CUPTI_DRIVER_TRACE_CBID_* of the entry point
  uint8_t has_stream;  // the entry point takes a stream (a launch config's counts)
  uint8_t per_thread;  // a _ptsz entry point: the NULL stream is the calling thread's
  uint8_t captured;    // its stream is capturing into a graph: the call enqueues no work now
};

struct SkipnativeHookSink {
  // Before the real call: the call's begin ticks; *id gets what exit() is given
  // (an external correlation id the sink pushed, or its key of the call's stream).
  uint64_t (*enter)(const SkipnativeHookCall* call, uint32_t* id);
  // After it: records the call of driver cbid `cbid`, which returned `result`
  // (a CUresult), and pops what enter pushed.
  void (*exit)(uint64_t t_begin, uint32_t id, uint16_t cbid, int result);
};

// The version of this interface: a session attaches only hooks of its own.
// (Version 1 had no call description and its attach function another name, so
// a session of version 1 finds no hooks of this one to attach to.)
#define SKIPNATIVE_HOOKS_ABI 2

// Exported by libskipnative_hooks.so, found by the session with dlsym.
// attach2(nullptr) detaches. A sink must stay valid for the life of the process
// (a call that read it may still be running after a detach).
void skipnative_hooks_attach2(const SkipnativeHookSink* sink);
// SKIPNATIVE_HOOKS_ABI of the loaded hooks (missing in those before version 2).
int skipnative_hooks_abi();
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
typedef int (*SkipnativeHooksAbiFn)();
typedef uint32_t (*SkipnativeHooksCountFn)();
}
