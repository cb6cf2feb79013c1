#include "core/thread_buffers.h"

#include <algorithm>
#include <new>

#include "core/alloc_fault.h"

namespace skipnative {

LaunchBuffers::LaunchBuffers(size_t chunk_records, size_t prealloc_chunks, size_t max_chunks)
    : chunk_records_(std::max<size_t>(chunk_records, 1)),
      prealloc_chunks_(std::min(prealloc_chunks, max_chunks)),
      max_chunks_(max_chunks) {
  if (prealloc_chunks_) {
    // Value-initialised, so every page is touched here rather than on the hot
    // path (a first-touch page fault costs about a microsecond).
    prealloc_recs_.reset(new LaunchRecord[prealloc_chunks_ * chunk_records_]());
    prealloc_chunk_headers_.reset(new Chunk[prealloc_chunks_]);
    for (size_t i = 0; i < prealloc_chunks_; ++i) {
      prealloc_chunk_headers_[i].capacity = uint32_t(chunk_records_);
      prealloc_chunk_headers_[i].recs = prealloc_recs_.get() + i * chunk_records_;
    }
  }
}

LaunchBuffers::~LaunchBuffers() = default;

ThreadBuffer* LaunchBuffers::attach(uint32_t tid) noexcept {
  try {
    if (allocation_fails("launch_thread")) throw std::bad_alloc();
    auto tb = std::make_unique<ThreadBuffer>();
    tb->tid = tid;
    tb->owner = this;
    ThreadBuffer* raw = tb.get();
    bool unallocated = false;
    raw->head = raw->tail = new_chunk(&unallocated);  // may be null: grow() counts drops
    std::lock_guard<std::mutex> lock(mu_);
    threads_.push_back(std::move(tb));
    return raw;
  } catch (...) {  // out of memory: the record that asked is dropped, and counted
    unattached_dropped_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
}

Chunk* LaunchBuffers::new_chunk(bool* unallocated) noexcept {
  size_t i = chunks_used_.fetch_add(1, std::memory_order_relaxed);
  if (i < prealloc_chunks_) return &prealloc_chunk_headers_[i];
  if (i < max_chunks_) {
    try {
      if (allocation_fails("launch_chunk")) throw std::bad_alloc();
      auto header = std::make_unique<Chunk>();
      std::unique_ptr<LaunchRecord[]> recs(new LaunchRecord[chunk_records_]());  // pre-faulted
      header->capacity = uint32_t(chunk_records_);
      header->recs = recs.get();
      Chunk* raw = header.get();
      std::lock_guard<std::mutex> lock(mu_);
      extra_headers_.push_back(std::move(header));
      extra_recs_.push_back(std::move(recs));
      return raw;
    } catch (...) {  // out of memory (CUPTI calls the launch path from C)
      *unallocated = true;
    }
  }
  chunks_used_.fetch_sub(1, std::memory_order_relaxed);
  return nullptr;
}

Chunk* LaunchBuffers::grow(ThreadBuffer* tb) {
  bool unallocated = false;
  Chunk* c = new_chunk(&unallocated);
  if (c == nullptr) {
    auto& count = unallocated ? tb->unallocated : tb->dropped;  // the owner's alone
    count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return nullptr;
  }
  if (tb->tail == nullptr) {
    // The list is empty (attach hit the cap); publish the head under the lock the
    // collector takes.
    std::lock_guard<std::mutex> lock(mu_);
    tb->head = c;
  } else {
    tb->tail->next.store(c, std::memory_order_release);
  }
  tb->tail = c;
  return c;
}

uint64_t LaunchBuffers::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t d = 0;
  for (const auto& tb : threads_) d += tb->dropped.load(std::memory_order_relaxed);
  return d;
}

uint64_t LaunchBuffers::unallocated() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t d = 0;
  for (const auto& tb : threads_) d += tb->unallocated.load(std::memory_order_relaxed);
  return d + unattached_dropped_.load(std::memory_order_relaxed);
}

}  // namespace skipnative
