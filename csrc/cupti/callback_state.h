// The process-wide state that CUPTI's callbacks read, shared by the session and
// the record-path benchmark. One session at a time owns it (CUPTI allows one
// subscriber); the callbacks may run on any thread, at any time, also after a
// session stopped, so everything here is atomic or outlives its readers.
#pragma once

#include <cupti.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/clock.h"
#include "core/thread_buffers.h"
#include "cupti/api_table.h"

namespace skipnative {

class Session;

namespace callback_state {

// The session the buffer callbacks deliver to, if any.
extern std::atomic<Session*> session;
// Where launch records go. The launch path reads the generation, then the
// buffers: a start publishes the buffers before it bumps the generation
// (release), so a thread that sees the new generation sees the new buffers.
extern std::atomic<LaunchBuffers*> buffers;
extern std::atomic<uint64_t> generation;
extern std::atomic<const ApiKindTable*> kinds;
// Launch records lost because their thread's flag (what makes a record safe
// against a stop) could not be allocated: counted process-wide, as no buffer
// is safe to touch without it; a session counts what it saw rise.
extern std::atomic<uint64_t> records_without_flag;

// The clock of the launch callbacks and of CUPTI's timestamp callback: an
// immutable copy, swapped in whole. A published clock stays allocated for the
// next kClocksKept publications, so a callback that read the pointer just
// before a new session (or the benchmark) published another still reads a
// valid clock; the timestamp callback stays harmless after stop.
constexpr int kClocksKept = 16;
const ClockParams* publish_clock(const ClockParams& c);
extern std::atomic<const ClockParams*> current_clock;
inline const ClockParams& clock() { return *current_clock.load(std::memory_order_acquire); }

// Buffer callbacks still running: stop() clears `session`, then waits for this
// to reach zero, so no callback appends rows after stop() returned. Both sides
// use sequentially consistent operations: either the callback sees the cleared
// session, or stop() sees the callback.
extern std::atomic<int> buffer_callbacks_running;
struct BufferCallbackScope {
  BufferCallbackScope() { buffer_callbacks_running.fetch_add(1); }
  ~BufferCallbackScope() { buffer_callbacks_running.fetch_sub(1); }
  BufferCallbackScope(const BufferCallbackScope&) = delete;
  BufferCallbackScope& operator=(const BufferCallbackScope&) = delete;
};

// True while a record-path benchmark (record_bench.cpp) drives the launch
// path: it swaps in launch buffers and a clock of its own. Claimed only while
// no session captures; a session's start() publishes the session, then checks
// this, and gives up where it is set (sequentially consistent on both sides:
// one of the two sees the other).
extern std::atomic<bool> benchmarking;

// Whether a buffer request with no session may be refused: false until a
// session of a CUPTI that tolerates refusal started (Session::acquire_buffer).
extern std::atomic<bool> refusal_safe;

// CUPTI's external correlation push and pop, for the launch hooks' sink: open
// (set) when a session attaches the hooks, closed (null: not pushed) before a
// cuptiFinalize. A hooked call may be in flight across a stop (a synchronize
// waiting on a long kernel: its pop comes after the stop); close_external()
// returns once no thread is inside a push or a pop, and none makes one from
// then on, for CUPTI may crash on a call that races its cuptiFinalize.
using PushExternalFn = CUptiResult (*)(CUpti_ExternalCorrelationKind, uint64_t);
using PopExternalFn = CUptiResult (*)(CUpti_ExternalCorrelationKind, uint64_t*);
extern std::atomic<PushExternalFn> push_external;
extern std::atomic<PopExternalFn> pop_external;
void open_external(PushExternalFn push, PopExternalFn pop);
void close_external();
// A hooked call's own calls into CUPTI (the external correlation push and pop,
// stream lookups) are each made inside such a scope, and only while their gate
// is open: this thread's flag stored, then the gate loaded, both sequentially
// consistent, against the closing side's store of the gate, then its loads of
// the flags (close_external, stream_keys::close). False: no flag (out of
// memory), and no call may be made.
class CuptiUseScope {
 public:
  CuptiUseScope();
  ~CuptiUseScope();
  explicit operator bool() const { return flag_ != nullptr; }
  CuptiUseScope(const CuptiUseScope&) = delete;
  CuptiUseScope& operator=(const CuptiUseScope&) = delete;

 private:
  std::atomic<bool>* flag_;
};
// Returns once every thread that was inside a launch record when it was called
// has left it. A stop calls it after it bumps the generation: a record that
// begins later sees the new generation and attaches anew, so none still writes
// into the stopped session's buffers (or the ones retired before them, which
// the stop then frees), however long its thread was preempted inside one.
void wait_for_records();
// In a forked child: no thread but the one that forked exists to be inside one.
void external_after_fork();

// True while this thread runs stop()'s flushes: the buffers CUPTI completes on
// it then are completed on an application thread, which completion_cpu leaves
// where it is.
extern thread_local bool flushing_at_stop;
struct FlushAtStopScope {
  FlushAtStopScope() { flushing_at_stop = true; }
  ~FlushAtStopScope() { flushing_at_stop = false; }
  FlushAtStopScope(const FlushAtStopScope&) = delete;
  FlushAtStopScope& operator=(const FlushAtStopScope&) = delete;
};

// Activity buffers are handed out in whole 8-byte words.
inline size_t rounded(size_t bytes) { return (bytes + 7) & ~size_t(7); }

// Registered with CUPTI at start: the current clock, in ns.
uint64_t CUPTIAPI timestamp_callback();

// The test seam (see set_pause_point in session.h).
void pause_at(const char* where);

}  // namespace callback_state
}  // namespace skipnative
