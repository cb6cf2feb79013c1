// A streaming reader of torch.profiler (Kineto) chrome traces.
//
// Fed the decompressed JSON in chunks of any size, it keeps only the events
// SPEC.md needs, as columns: launches (cuda_runtime / cuda_driver), GPU
// activities (kernel, gpu_memcpy, gpu_memset), ATen ops (cpu_op) and
// ProfilerStep#N annotations. Memory is the columns plus one chunk, whatever
// the file's size. Timestamps are converted from decimal microseconds to
// integer nanoseconds exactly (no floating point for the common forms).
//
// Errors are ReadError with a one-line message that names the event index or
// the byte offset; nothing read executes code.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/string_table.h"

namespace skipnative::kineto {

class ReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

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

class TraceReader {
 public:
  TraceReader();
  void feed(const char* data, size_t n);
  void finish();

  std::vector<LaunchEvent> launches;
  std::vector<GpuEvent> gpu;
  std::vector<OpEvent> ops;
  std::vector<StepEvent> steps;
  StringTable names;
  // Top-level members other than traceEvents, as raw JSON text (small ones only).
  std::map<std::string, std::string> top_level;
  uint64_t events = 0;  // elements of traceEvents seen
  uint64_t bytes_read = 0;
  uint64_t ignored_events = 0;

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
  void run(bool final);
  size_t parse_event(size_t pos, bool final);
  void nest_ops();

  std::string buf_;
  size_t pos_ = 0;  // parse position in buf_
  Top state_ = Top::kStart;
  std::string key_;
  bool saw_events_ = false;
  bool array_top_ = false;
};

}  // namespace skipnative::kineto
