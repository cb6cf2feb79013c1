#include "cupti/stream_keys.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "cupti/callback_state.h"
#include "cupti/fork_lock.h"

namespace skipnative {
namespace stream_keys {

namespace cs = callback_state;

namespace {

// Open (set) while a session may look streams up. What it points to is never
// changed, and stays allocated for the next kLookupsKept opens: a lookup that
// read the pointer before a close still reads valid functions.
constexpr unsigned kLookupsKept = 16;
std::mutex g_open_mu;
std::unique_ptr<Lookup> g_lookups[kLookupsKept];
unsigned g_opened = 0;
std::atomic<const Lookup*> g_open{nullptr};
// Bumped by each open: a stream is looked up anew in each session (CUPTI,
// finalized and set up again in between, need not give it the same id).
std::atomic<uint32_t> g_opens{0};
std::atomic<uint64_t> g_failures{0};

std::mutex g_table_mu;
[[maybe_unused]] const int g_table_mu_fork = hold_across_fork<g_table_mu>();
std::vector<std::pair<uint32_t, uint32_t>> g_table;  // key - 1 -> (device, stream)
std::unordered_map<uint64_t, uint32_t> g_keys;       // device << 32 | stream -> key

struct Cached {
  uint32_t opened = 0;  // g_opens when it was looked up
  void* stream = nullptr;
  CUcontext context = nullptr;  // the current one, for the NULL, legacy and per-thread handles
  uint32_t epoch = 0;
  uint32_t key = kNone;
  uint8_t per_thread = 0;
};
constexpr unsigned kCached = 4;
thread_local Cached t_cache[kCached];
thread_local unsigned t_next = 0;

uint32_t key_of(uint32_t device, uint32_t stream) {
  const uint64_t id = uint64_t(device) << 32 | stream;
  std::lock_guard<std::mutex> lock(g_table_mu);
  auto it = g_keys.find(id);
  if (it != g_keys.end()) return it->second;
  if (g_table.size() >= kCaptured - 1) return kNone;
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
  const uint8_t per_thread = call.per_thread || stream == CU_STREAM_PER_THREAD;
  uint32_t device = 0, id = 0;
  if (f->device_id(owner, &device) != CUPTI_SUCCESS ||
      f->stream_id(nullptr, stream, per_thread, &id) != CUPTI_SUCCESS) {
    g_failures.fetch_add(1, std::memory_order_relaxed);
    return kNone;
  }
  return key_of(device, id);
}

}  // namespace

const Lookup* open(const Lookup& lookup) {
  std::lock_guard<std::mutex> lock(g_open_mu);
  auto& slot = g_lookups[g_opened++ % kLookupsKept];
  auto next = std::make_unique<Lookup>(lookup);
  g_opens.fetch_add(1, std::memory_order_relaxed);
  const Lookup* before = g_open.exchange(next.get(), std::memory_order_seq_cst);
  slot = std::move(next);
  return before;
}

void close() {
  g_open.store(nullptr, std::memory_order_seq_cst);
  cs::wait_for_records();  // the same flags: no lookup is in flight either
}

void reopen(const Lookup* before) {
  g_open.store(before, std::memory_order_seq_cst);
  if (before == nullptr) cs::wait_for_records();
}

uint32_t key(const SkipnativeHookCall& call) {
  const Lookup* f = g_open.load(std::memory_order_acquire);
  if (f == nullptr) return kNone;
  const bool special = reinterpret_cast<uintptr_t>(call.stream) <= 2;  // NULL, legacy, per-thread
  CUcontext context = nullptr;
  if (special && (f->current_context == nullptr || f->current_context(&context) != CUDA_SUCCESS))
    context = nullptr;
  const uint32_t opened = g_opens.load(std::memory_order_relaxed);
  for (const Cached& c : t_cache)
    if (c.key != kNone && c.stream == call.stream && c.per_thread == call.per_thread &&
        c.epoch == call.epoch && c.context == context && c.opened == opened)
      return c.key;
  const uint32_t k = find(call, context, special);
  if (k != kNone)
    t_cache[t_next++ % kCached] =
        Cached{opened, call.stream, context, call.epoch, k, call.per_thread};
  return k;
}

std::vector<std::pair<uint32_t, uint32_t>> table() {
  std::lock_guard<std::mutex> lock(g_table_mu);
  return g_table;
}

uint64_t failures() { return g_failures.load(); }

}  // namespace stream_keys
}  // namespace skipnative
