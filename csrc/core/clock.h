// The one clock of a capture: launch-callback timestamps and (through CUPTI's
// timestamp callback) activity records are both read from it, so they can be
// compared directly.
//
// The hot path stores raw ticks (a counter read); to_ns() maps ticks to
// nanoseconds with a fixed affine map chosen at calibration, so the mapping of a
// tick value never changes within a process.
#pragma once

#include <cstdint>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#include <x86intrin.h>
#endif
#include <time.h>

namespace skipnative {

enum class ClockKind : uint8_t {
  kTsc = 0,           // x86-64 invariant TSC (constant_tsc and nonstop_tsc)
  kCntvct = 1,        // aarch64 virtual counter, read after an isb
  kMonotonicRaw = 2,  // clock_gettime(CLOCK_MONOTONIC_RAW): ticks are ns
  kLibrary = 3,       // a function exported by the loaded CUPTI library (test double)
};

const char* clock_kind_name(ClockKind k);

using ExternalClockFn = uint64_t (*)();

struct ClockParams {
  ClockKind kind = ClockKind::kMonotonicRaw;
  uint64_t base_ticks = 0;     // ticks at calibration
  uint64_t base_ns = 0;        // CLOCK_MONOTONIC_RAW ns at base_ticks
  uint64_t mult = 1ull << 32;  // ns = base_ns + ((ticks - base_ticks) * mult) >> 32
  double ticks_per_second = 1e9;
  // CLOCK_REALTIME ns minus clock ns, measured at calibration (places a capture
  // on Kineto's unix-time axis).
  int64_t realtime_offset_ns = 0;
  // How closely the realtime offset is known: the shortest bracketing interval.
  uint64_t realtime_uncertainty_ns = 0;
  ExternalClockFn external = nullptr;
};

inline uint64_t monotonic_raw_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// One counter read for the given kind. The kind is almost always the same
// branch, so the switch costs nothing measurable next to the read.
inline uint64_t read_ticks(const ClockParams& p) {
  switch (p.kind) {
#if defined(__x86_64__) || defined(_M_X64)
    case ClockKind::kTsc:
      return __rdtsc();
#endif
#if defined(__aarch64__)
    case ClockKind::kCntvct: {
      // Without the isb the counter read may be executed ahead of earlier
      // instructions, giving timestamps that run backwards against program order.
      uint64_t v;
      asm volatile("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
      return v;
    }
#endif
    case ClockKind::kLibrary:
      return p.external();
    default:
      return monotonic_raw_ns();
  }
}

inline uint64_t ticks_to_ns(const ClockParams& p, uint64_t ticks) {
  if (p.kind == ClockKind::kMonotonicRaw || p.kind == ClockKind::kLibrary) return ticks;
  int64_t d = int64_t(ticks - p.base_ticks);
  __int128 scaled = (__int128)d * (__int128)p.mult;
  return uint64_t(int64_t(p.base_ns) + int64_t(scaled >> 32));
}

// Picks and calibrates a clock. `requested` is "auto", "tsc", "cntvct",
// "monotonic_raw" or "library" (needs `external`); "auto" is "library" when
// `external` is given (a CUPTI that keeps its own time). Throws std::runtime_error
// when the requested clock is not usable here.
ClockParams make_clock(const std::string& requested, ExternalClockFn external);

// Whether the x86 TSC is invariant on this machine (cpuinfo flags).
bool tsc_is_invariant();

}  // namespace skipnative
