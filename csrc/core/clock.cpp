#include "core/clock.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <string>

namespace skipnative {

const char* clock_kind_name(ClockKind k) {
  switch (k) {
    case ClockKind::kTsc:
      return "tsc";
    case ClockKind::kCntvct:
      return "cntvct";
    case ClockKind::kMonotonicRaw:
      return "monotonic_raw";
    case ClockKind::kLibrary:
      return "library";
  }
  return "unknown";
}

bool tsc_is_invariant() {
#if defined(__x86_64__) || defined(_M_X64)
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      auto has = [&](const char* f) {
        std::string needle = std::string(" ") + f;
        size_t pos = line.find(needle);
        return pos != std::string::npos &&
               (pos + needle.size() == line.size() || line[pos + needle.size()] == ' ');
      };
      return has("constant_tsc") && has("nonstop_tsc");
    }
  }
#endif
  return false;
}

namespace {

// A (ticks, ns) pair bracketed as tightly as we can: read ns, ticks, ns and keep
// the tightest of several tries, pairing ticks with the midpoint.
struct Pair {
  uint64_t ticks;
  uint64_t ns;
  uint64_t width;
};

Pair sample_pair(const ClockParams& p) {
  Pair best{0, 0, ~0ull};
  for (int i = 0; i < 64; ++i) {
    uint64_t a = monotonic_raw_ns();
    uint64_t t = read_ticks(p);
    uint64_t b = monotonic_raw_ns();
    if (b - a < best.width) best = {t, a + (b - a) / 2, b - a};
  }
  return best;
}

void calibrate_scale(ClockParams& p, uint64_t known_hz) {
  Pair first = sample_pair(p);
  if (known_hz != 0) {
    p.ticks_per_second = double(known_hz);
  } else {
    // Measure the counter's rate against CLOCK_MONOTONIC_RAW over ~20 ms: the
    // bracketing error (tens of ns) gives a rate error near 1e-6.
    uint64_t until = first.ns + 20000000ull;
    while (monotonic_raw_ns() < until) {
    }
    Pair second = sample_pair(p);
    p.ticks_per_second = double(second.ticks - first.ticks) * 1e9 / double(second.ns - first.ns);
  }
  p.base_ticks = first.ticks;
  p.base_ns = first.ns;
  p.mult = uint64_t((1e9 / p.ticks_per_second) * 4294967296.0 + 0.5);
}

void calibrate_realtime(ClockParams& p) {
  uint64_t best_width = ~0ull;
  for (int i = 0; i < 64; ++i) {
    uint64_t a = realtime_ns();
    uint64_t t = ticks_to_ns(p, read_ticks(p));
    uint64_t b = realtime_ns();
    if (b - a < best_width) {
      best_width = b - a;
      p.realtime_offset_ns = int64_t(a + (b - a) / 2) - int64_t(t);
    }
  }
  p.realtime_uncertainty_ns = best_width;
}

}  // namespace

ClockParams make_clock(const std::string& requested, ExternalClockFn external) {
  ClockParams p;
  std::string kind = requested;
  if (kind == "auto" && external != nullptr) {
    // The loaded CUPTI keeps time itself (the test double's simulated GPU): its
    // activity records carry that time, so the callbacks must read the same clock.
    kind = "library";
  } else if (kind == "auto") {
#if defined(__x86_64__) || defined(_M_X64)
    kind = tsc_is_invariant() ? "tsc" : "monotonic_raw";
#elif defined(__aarch64__)
    kind = "cntvct";
#else
    kind = "monotonic_raw";
#endif
  }
  if (kind == "tsc") {
#if defined(__x86_64__) || defined(_M_X64)
    p.kind = ClockKind::kTsc;
    calibrate_scale(p, 0);
#else
    throw std::runtime_error("clock 'tsc' exists only on x86-64");
#endif
  } else if (kind == "cntvct") {
#if defined(__aarch64__)
    p.kind = ClockKind::kCntvct;
    uint64_t hz;
    asm volatile("mrs %0, cntfrq_el0" : "=r"(hz));
    calibrate_scale(p, hz);
#else
    throw std::runtime_error("clock 'cntvct' exists only on aarch64");
#endif
  } else if (kind == "monotonic_raw") {
    p.kind = ClockKind::kMonotonicRaw;
  } else if (kind == "library") {
    if (external == nullptr)
      throw std::runtime_error(
          "clock 'library' needs a CUPTI library that exports skipnative_double_clock_ns "
          "(the test double)");
    p.kind = ClockKind::kLibrary;
    p.external = external;
  } else {
    throw std::runtime_error("unknown clock '" + requested +
                             "' (expected auto, tsc, cntvct, monotonic_raw or library)");
  }
  calibrate_realtime(p);
  return p;
}

}  // namespace skipnative
