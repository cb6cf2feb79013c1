// Per-thread chunked record buffers for the launch hot path.
//
// Each thread that launches gets a ThreadBuffer (under a mutex, once per thread
// per session). After that a record is stored with no lock and no allocation
// while the current chunk has room; a full chunk is replaced by one from a
// preallocated block (one atomic increment), and only past that block is memory
// allocated, under a mutex, up to the configured cap. Past the cap, records are
// counted as dropped; where memory cannot be allocated below it, as unallocated;
// never lost silently.
//
// The one way into shared state: the owner thread appends to its chunk list
// (release stores of `count` and `next`); the collector walks the list with
// acquire loads, so it may run while owners still append (stop during launches)
// and sees, per thread, a prefix of the records: every one stored before the
// walk reached its chunk, and never one without all those stored before it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/records.h"

namespace skipnative {

struct Chunk {
  std::atomic<Chunk*> next{nullptr};
  std::atomic<uint32_t> count{0};
  uint32_t capacity = 0;
  LaunchRecord* recs = nullptr;
};

struct ThreadBuffer {
  uint32_t tid = 0;
  Chunk* head = nullptr;
  Chunk* tail = nullptr;
  std::atomic<uint64_t> dropped{0};      // past the cap
  std::atomic<uint64_t> unallocated{0};  // out of memory below it
  class LaunchBuffers* owner = nullptr;
};

class LaunchBuffers {
 public:
  // chunk_records: records per chunk; prealloc_chunks: chunks allocated up front;
  // max_chunks: cap on chunks in all (memory cap = max_chunks * chunk bytes).
  LaunchBuffers(size_t chunk_records, size_t prealloc_chunks, size_t max_chunks);
  ~LaunchBuffers();
  LaunchBuffers(const LaunchBuffers&) = delete;
  LaunchBuffers& operator=(const LaunchBuffers&) = delete;

  // nullptr where no memory is left for it: the caller drops its record, which
  // is counted in unallocated(). Never throws (the launch path runs in CUPTI's
  // callbacks, called from C).
  ThreadBuffer* attach(uint32_t tid) noexcept;

  // Hot path. Owner thread only.
  static inline void push(ThreadBuffer* tb, const LaunchRecord& r) {
    Chunk* c = tb->tail;
    uint32_t n = c ? c->count.load(std::memory_order_relaxed) : 0;
    if (__builtin_expect(c == nullptr || n == c->capacity, 0)) {
      c = tb->owner->grow(tb);
      if (c == nullptr) return;  // counted by grow()
      n = 0;
    }
    c->recs[n] = r;
    c->count.store(n + 1, std::memory_order_release);
  }

  // Calls f(tid, const LaunchRecord*, count) for every filled run of records.
  template <class F>
  void for_each(F&& f) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& tb : threads_) {
      // `next` before `count`: the owner publishes `next` only after it stored the
      // chunk's last record, so a chunk with a successor is read whole and the
      // walk yields a prefix of each thread's records. Read the other way round,
      // a chunk filled between the two loads would leave a gap.
      for (Chunk* c = tb->head; c != nullptr;) {
        Chunk* next = c->next.load(std::memory_order_acquire);
        uint32_t n = c->count.load(std::memory_order_acquire);
        if (n) f(tb->tid, c->recs, n);
        c = next;
      }
    }
  }

  uint64_t dropped() const;      // records past the cap
  uint64_t unallocated() const;  // records memory could not be allocated for
  size_t max_chunks() const { return max_chunks_; }
  size_t chunk_records() const { return chunk_records_; }

  // A chunk for the owner's next record; nullptr (the record counted as dropped
  // or unallocated) where there is none.
  Chunk* grow(ThreadBuffer* tb);

 private:
  // nullptr past the cap or out of memory (*unallocated set).
  Chunk* new_chunk(bool* unallocated) noexcept;

  const size_t chunk_records_;
  const size_t prealloc_chunks_;
  const size_t max_chunks_;
  std::unique_ptr<LaunchRecord[]> prealloc_recs_;
  std::unique_ptr<Chunk[]> prealloc_chunk_headers_;
  std::atomic<size_t> chunks_used_{0};
  std::atomic<uint64_t> unattached_dropped_{0};  // records of threads attach() failed for

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<ThreadBuffer>> threads_;
  std::vector<std::unique_ptr<Chunk>> extra_headers_;
  std::vector<std::unique_ptr<LaunchRecord[]>> extra_recs_;
};

}  // namespace skipnative
