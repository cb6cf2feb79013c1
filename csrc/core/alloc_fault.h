// Test seam: an allocation that fails as out of memory would, where a test asks
// (the paths that count records lost for want of memory are otherwise unreachable
// without a GPU). Never on the per-record launch path.
#pragma once

#include <atomic>

namespace skipnative {

// f(what) nonzero: the allocation named fails ("launch_thread": a thread's launch
// buffer; "launch_flag": a thread's record flag, taken from those freed or
// allocated; "launch_chunk": a launch chunk past the preallocated block;
// "activity_buffer": an activity buffer; "gpu_row": a decoded kernel row). Set by
// the loader where the CUPTI test double is loaded (its
// skipnative_double_allocation_fails); nullptr otherwise: nothing fails.
using AllocationFault = int (*)(const char* what);
inline std::atomic<AllocationFault> g_allocation_fault{nullptr};

inline bool allocation_fails(const char* what) noexcept {
  AllocationFault f = g_allocation_fault.load(std::memory_order_acquire);
  return f != nullptr && f(what) != 0;
}

}  // namespace skipnative
