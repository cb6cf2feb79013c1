// A streaming reader of torch.profiler (Kineto) chrome traces.
//
// Fed the decompressed JSON in chunks of any size, it keeps only the events
// SPEC.md needs, as columns: launches (cuda_runtime / cuda_driver), GPU
// activities (kernel, gpu_memcpy, gpu_memset), ATen ops (cpu_op),
// ProfilerStep#N annotations and waits on a stream's work (cuda_sync "Stream
// Wait Event" and "Event Sync" with the stream and event record they wait on,
// and "Stream Sync"). Memory is the columns plus one chunk, whatever the file's size.
// Timestamps are converted from decimal microseconds to integer nanoseconds
// exactly (no floating point for the common forms).
//
// A number that a metric uses (ts, dur, pid, tid; correlation of launches and
// GPU activities; device and stream of GPU activities; every field of a
// Stream Wait Event, Stream Sync or Event Sync, which the what-if replay uses) must fit
// 64-bit integer nanoseconds (SPEC.md §3, input rules), else the event is
// refused by index and field; other fields are not checked (ROCm writes
// "stream": "0x0" in the args of copy calls). Errors are ReadError with a
// one-line message that names the event index or the byte offset; nothing
// read executes code.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/string_table.h"
#include "kineto/column.h"
#include "kineto/json_cursor.h"

namespace skipnative::kineto {

struct LaunchEvent {
  int64_t ts, dur, correlation, pid, tid;
  int32_t name_id, cbid;
};

struct GpuEvent {
  int64_t ts, dur, correlation, device, stream, bytes;
  int32_t name_id;
  int32_t kind;  // 0 kernel, 1 memcpy, 2 memset
  int32_t grid[3], block[3];
};

struct OpEvent {
  int64_t ts, dur, pid, tid, external_id;
  int64_t parent, top;  // filled by finish(): rows, -1 at top level
  int32_t name_id, depth;
};

struct StepEvent {
  int64_t ts, dur, pid, tid;
  int32_t name_id, pad;
};

// A "Stream Wait Event" (cuda_sync): from the wait call (correlation) on, work on
// `stream` waits for the work on `on_stream` before the cudaEventRecord call
// `record_correlation`. A "Stream Sync": the calling thread (stream kHostWaits)
// waits for the work on `on_stream` before the sync call itself
// (record_correlation = correlation). An "Event Sync": the calling thread waits
// for the work on `on_stream` before the cudaEventRecord call `record_correlation`.
constexpr int64_t kHostWaits = -1;
struct WaitEvent {
  int64_t ts, dur, correlation, record_correlation, device, stream, on_stream;
};

struct EventFields;

class TraceReader {
 public:
  TraceReader();
  void feed(const char* data, size_t n);
  void finish();

  Column<LaunchEvent> launches;
  Column<GpuEvent> gpu;
  Column<OpEvent> ops;
  Column<StepEvent> steps;
  Column<WaitEvent> waits;
  StringTable names;
  // Top-level members other than traceEvents, as raw JSON text (small ones only).
  std::map<std::string, std::string> top_level;
  // Those over kMaxTopLevelText bytes, not kept: their sizes in bytes, by key.
  std::map<std::string, uint64_t> top_level_over_cap;
  static constexpr size_t kMaxTopLevelText = 1 << 20;
  uint64_t events = 0;  // elements of traceEvents seen
  uint64_t ignored_events = 0;
  // Of the ignored events, those with a field of the wrong type among the ones
  // that say what an event is: a 'ph' that is no one-letter string, a 'cat'
  // that is no string, 'args' that is no object. Each is counted once, by the
  // first of these it breaks; what a writer broke, not an event of a kind the
  // reader does not use ("M", "i", flows), which is ignored without a word.
  uint64_t malformed_ph = 0, malformed_cat = 0, malformed_args = 0;

 private:
  // Each state is one step of the top-level parse; a step that runs out of
  // input is retried from its start when more arrives.
  enum class Top {
    kStart,
    kObjectKeyOrEnd,
    kValue,
    kCommaOrEnd,
    kEventsFirst,
    kEventsCommaOrEnd,
    kDone
  };
  size_t run(const char* b, size_t n, uint64_t base, bool final);
  void step(Cursor& c);
  void top_member(Cursor& c);
  void parse_event(Cursor& c);
  void read_member(Cursor& c, EventFields& f);
  void read_args(Cursor& c, EventFields& f);
  void read_thread_id(Cursor& c, EventFields& f, bool is_pid);
  void store_event(const EventFields& f, uint64_t index);
  void nest_ops();

  // Input is parsed where it lies; only a step cut by the end of a chunk is
  // copied, into carry_, and completed from the start of the next chunk.
  std::string carry_;
  uint64_t carry_base_ = 0;  // offset of carry_[0] in the document
  uint64_t fed_ = 0;         // bytes of input before the chunk being parsed
  // carry_'s length when its step last ran out of input: the step is retried
  // once the carry has doubled, so a step of many chunks is parsed O(log) times
  size_t carry_tried_ = 0;
  std::string scratch_;
  Top state_ = Top::kStart;
  bool saw_events_ = false;
  bool array_top_ = false;
};

}  // namespace skipnative::kineto
