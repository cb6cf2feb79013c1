#include "cupti/stream_keys.h"

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <new>
#include <unordered_map>

#include "cupti/callback_state.h"
#include "cupti/fork_lock.h"

namespace skipnative {
namespace stream_keys {

namespace cs = callback_state;

namespace {

// Open (set) while a session may look streams up. What it points to is never
// changed nor freed: a lookup that read the pointer before a close (and was
// preempted across any number of sessions) still reads valid functions.
std::mutex g_open_mu;
[[maybe_unused]] const int g_open_mu_fork = hold_across_fork<g_open_mu>();
std::deque<Lookup>* const g_lookups = new std::deque<Lookup>;  // kept for the process
std::atomic<const Lookup*> g_open{nullptr};
// Bumped by each open: a stream is looked up anew in each session (CUPTI,
// finalized and set up again in between, need not give it the same id).
std::atomic<uint32_t> g_opens{0};

std::mutex g_table_mu;
[[maybe_unused]] const int g_table_mu_fork = hold_across_fork<g_table_mu>();
std::vector<std::pair<uint32_t, uint32_t>> g_table;  // key - 1 -> (device, stream)
std::unordered_map<uint64_t, uint32_t> g_keys;       // device << 32 | stream -> key

// The per-thread cache: direct-mapped by handle, so a thread that cycles
// through many streams still finds each (up to collisions). A lookup that
// failed is kept too (kNone), and asked again only when the entry is.
struct Cached {
  bool valid = false;
  uint8_t per_thread = 0;
  uint32_t opened = 0;  // g_opens when it was looked up
  uint32_t epoch = 0;
  uint32_t key = kNone;
  void* stream = nullptr;
  CUcontext context = nullptr;  // the current one, for the NULL, legacy and per-thread handles
};
constexpr unsigned kCachedBits = 5;

// On the heap, a pointer in TLS: the extension and the injection library carry
// initial-exec TLS, so all of their TLS comes out of the small static block
// glibc keeps for libraries loaded later (a 1 KiB cache there left too little
// for a process that loads both). Freed at the thread's exit.
thread_local Cached* t_cache = nullptr;
void free_cache(void* c) {
  delete[] static_cast<Cached*>(c);
  t_cache = nullptr;
}
pthread_key_t g_cache_key;
const bool g_cache_key_made = pthread_key_create(&g_cache_key, &free_cache) == 0;

// This thread's cache slot for a handle; nullptr out of memory (no caching).
Cached* slot_of(void* stream, uint8_t per_thread) {
  Cached* cache = t_cache;
  if (cache == nullptr) {
    if (!g_cache_key_made) return nullptr;
    cache = new (std::nothrow) Cached[1u << kCachedBits];
    if (cache == nullptr || pthread_setspecific(g_cache_key, cache) != 0) {
      delete[] cache;
      return nullptr;
    }
    t_cache = cache;
  }
  const uint64_t h = (uint64_t(reinterpret_cast<uintptr_t>(stream)) ^ per_thread) *
                     0x9e3779b97f4a7c15ull;  // Fibonacci hashing
  return &cache[h >> (64 - kCachedBits)];
}

uint32_t key_of(uint32_t device, uint32_t stream) {
  const uint64_t id = uint64_t(device) << 32 | stream;
  std::lock_guard<std::mutex> lock(g_table_mu);
  auto it = g_keys.find(id);
  if (it != g_keys.end()) return it->second;
  if (g_table.size() >= kLastKey) return kNone;
  g_table.emplace_back(device, stream);
  const uint32_t k = uint32_t(g_table.size());
  g_keys.emplace(id, k);
  return k;
}

// Asks CUPTI which stream `call` is on (context: the thread's current one, for
// the special handles). Made under this thread's flag, while the gate is open:
// never after a stop's cuptiFinalize.
uint32_t find(const SkipnativeHookCall& call, CUcontext context, bool special) {
  cs::CuptiUseScope inside;
  if (!inside) return kNone;
  const Lookup* f = g_open.load(std::memory_order_seq_cst);
  if (f == nullptr) return kNone;
  const auto stream = static_cast<CUstream>(call.stream);
  CUcontext owner = context;
  if (!special &&
      (f->stream_context == nullptr || f->stream_context(stream, &owner) != CUDA_SUCCESS))
    owner = nullptr;  // the current context's
  // The two special handles asked as CUPTI documents its flag: the NULL stream,
  // legacy or the thread's own
  const bool legacy = stream == CU_STREAM_LEGACY, own = stream == CU_STREAM_PER_THREAD;
  const CUstream asked = legacy || own ? nullptr : stream;
  const uint8_t per_thread = own || (call.per_thread && !legacy);
  uint32_t device = 0, id = 0;
  if (f->device_id(owner, &device) != CUPTI_SUCCESS ||
      f->stream_id(nullptr, asked, per_thread, &id) != CUPTI_SUCCESS)
    return kNone;  // the call's launch counts as unjoined
  return key_of(device, id);
}

}  // namespace

const Lookup* open(const Lookup& lookup) {
  std::lock_guard<std::mutex> lock(g_open_mu);
  g_lookups->push_back(lookup);  // a deque: the Lookups before it stay where they are
  g_opens.fetch_add(1, std::memory_order_relaxed);
  return g_open.exchange(&g_lookups->back(), std::memory_order_seq_cst);
}

void close() {
  g_open.store(nullptr, std::memory_order_seq_cst);
  cs::wait_for_records();  // the same flags: no lookup is in flight either
}

void reopen(const Lookup* before) {
  g_open.store(before, std::memory_order_seq_cst);
  if (before == nullptr) cs::wait_for_records();
}

void after_fork() { g_open.store(nullptr, std::memory_order_seq_cst); }

uint32_t key(const SkipnativeHookCall& call) {
  const Lookup* f = g_open.load(std::memory_order_acquire);
  if (f == nullptr) return kNone;
  const bool special = reinterpret_cast<uintptr_t>(call.stream) <= 2;  // NULL, legacy, per-thread
  CUcontext context = nullptr;
  if (special && (f->current_context == nullptr || f->current_context(&context) != CUDA_SUCCESS))
    context = nullptr;
  const uint32_t opened = g_opens.load(std::memory_order_relaxed);
  Cached* c = slot_of(call.stream, call.per_thread);
  if (c != nullptr && c->valid && c->stream == call.stream && c->per_thread == call.per_thread &&
      c->epoch == call.epoch && c->context == context && c->opened == opened)
    return c->key;
  const uint32_t k = find(call, context, special);
  if (c != nullptr) *c = Cached{true, call.per_thread, opened, call.epoch, k, call.stream, context};
  return k;
}

std::vector<std::pair<uint32_t, uint32_t>> table() {
  std::lock_guard<std::mutex> lock(g_table_mu);
  return g_table;
}

}  // namespace stream_keys
}  // namespace skipnative
