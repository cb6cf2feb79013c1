// The capture session end to end on the CUPTI test double, in C++ (no Python):
// loader, launch callbacks, per-thread buffers, clocks, activity buffers and
// record decoding. CI builds it for aarch64 and runs it under qemu, so the
// whole native capture path is checked on Grace's architecture too (the Python
// tests cover x86-64). Build (CUDA headers from the nvidia-cuda-* wheels):
//   g++ -std=c++17 -O2 -pthread -Icsrc -I$INC csrc/core/*.cpp csrc/cupti/*.cpp
//       tests/native/session_tests.cpp -rdynamic -ldl -o session_tests
//   g++ -std=c++17 -O2 -shared -fPIC -I$INC tests/native/double/cupti_double.cpp
//       -o libskipnative_cupti_double.so
//   SKIPNATIVE_CUPTI_LIBRARY=$PWD/libskipnative_cupti_double.so ./session_tests
#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "cupti/loader.h"
#include "cupti/session.h"
#include "double_control.h"
#include "session_stress.h"

using namespace skipnative;

namespace {

// Kernel rows by correlation id joined to launch rows: every kernel has one.
std::map<uint32_t, const LaunchRow*> by_correlation(const Session& s) {
  std::map<uint32_t, const LaunchRow*> m;
  for (const auto& l : s.launches()) m[l.correlation_id] = &l;
  return m;
}

// A session's options: `clock` ("library": the double's virtual clock), launch
// times from callbacks or from API activity records, latency timestamps.
SessionOptions options(const char* clock, bool activity = false, bool latency = false) {
  SessionOptions o;
  o.clock = clock;
  o.launch_records = activity ? LaunchRecords::kActivity : LaunchRecords::kCallbacks;
  o.latency_timestamps = latency;
  return o;
}

// Virtual time: every timestamp is what the simulation says, so the schedule is
// checked exactly: a kernel starts at the later of its submission (call exit +
// latency) and its predecessor's end.
void test_exact_schedule(const Double& d, uint32_t version) {
  d.reset(version);
  d.configure(2000, 1000, 0, 0);
  auto s_heap = std::make_unique<Session>(options("library", false, true));
  Session& s = *s_heap;
  s.start();
  for (int i = 0; i < 200; ++i) d.launch(kRuntime, kLaunch, 7, i % 2 ? "gemm" : "relu", 5000);
  d.sync(kRuntime, kDeviceSync);
  s.stop();
  CHECK(s.launches().size() == 201);
  CHECK(s.kernels().size() == 200);
  auto launch = by_correlation(s);
  auto names = s.strings();
  uint64_t prev_end = 0;
  for (const auto& k : s.kernels()) {
    auto it = launch.find(k.correlation_id);
    CHECK(it != launch.end());
    if (it == launch.end()) continue;
    const LaunchRow& l = *it->second;
    CHECK(l.t_end - l.t_begin == 2000);
    CHECK(k.t_start == std::max(l.t_end + 1000, prev_end));
    CHECK(k.t_end - k.t_start == 5000);
    CHECK(k.t_queued <= k.t_submitted && k.t_submitted == l.t_end + 1000);
    CHECK(k.t_submitted <= k.t_start);
    CHECK(names[k.name_id] == "gemm" || names[k.name_id] == "relu");
    prev_end = k.t_end;
  }
  CHECK(s.stats().cupti_dropped == 0 && s.stats().launches_dropped == 0);
}

// A runtime launch calls the driver's launch API inside, with the same
// correlation id: recorded once, as the outermost call (from the callbacks, or
// from CUPTI's API activity records).
void test_nested_calls_recorded_once(const Double& d, bool activity) {
  d.reset(130001);
  d.configure(2000, 1000, 0, 0);
  auto s_heap = std::make_unique<Session>(options("library", activity));
  Session& s = *s_heap;
  s.start();
  for (int i = 0; i < 10; ++i) d.nested(kRuntime, kLaunch, kDriver, kDriverLaunch, 7, "k", 100);
  d.launch(kDriver, kDriverLaunch, 7, "direct", 100);
  s.stop();
  CHECK(s.launches().size() == 11);
  int runtime = 0;
  for (const auto& l : s.launches()) runtime += l.domain == kRuntime;
  CHECK(runtime == 10);
  CHECK(s.kernels().size() == 11);
}

// Many threads: every launch is kept, once, with its thread.
void test_threads(const Double& d, bool activity) {
  d.reset(130001);
  d.configure(10, 10, 0, 0);
  auto s_heap = std::make_unique<Session>(options("library", activity));
  Session& s = *s_heap;
  s.start();
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&d, t] {
      for (int i = 0; i < 20000; ++i) d.launch(kRuntime, kLaunch, 10 + t, "k", 10);
    });
  for (auto& t : ts) t.join();
  s.stop();
  CHECK(s.launches().size() == 80000);
  CHECK(s.kernels().size() == 80000);
  std::set<uint32_t> corr, tids;
  for (const auto& l : s.launches()) {
    corr.insert(l.correlation_id);
    tids.insert(l.tid);
  }
  CHECK(corr.size() == 80000);
  CHECK(tids.size() == 4);
  auto launch = by_correlation(s);
  size_t joined = 0;
  for (const auto& k : s.kernels()) joined += launch.count(k.correlation_id);
  CHECK(joined == 80000);
}

// Real time on this machine's own clock (TSC on x86-64, cntvct with isb on
// aarch64): the double spins for the call and converts its GPU times to that
// clock, so launch-to-start covers at least the call and the latency.
void test_machine_clock(const Double& d, bool activity) {
  d.reset(130001);
  d.configure(3000, 2000, 0, 1);
  auto s_heap = std::make_unique<Session>(options("auto", activity));
  Session& s = *s_heap;
  s.start();
  for (int i = 0; i < 50; ++i) d.launch(kRuntime, kLaunch, 7, "k", 1000);
  s.stop();
  CHECK(s.launches().size() == 50 && s.kernels().size() == 50);
  auto launch = by_correlation(s);
  // Slack: two ticks of this clock (cntvct runs at 62.5 MHz under qemu, 16 ns a
  // tick) and 0.1 % of rate between it and the double's CLOCK_MONOTONIC; the
  // double's GPU times are converted with an offset read at another instant (1 us).
  const uint64_t tick = uint64_t(2e9 / s.clock().ticks_per_second) + 1;
  uint64_t prev = 0, shortest = UINT64_MAX;
  for (const auto& l : s.launches()) {
    shortest = std::min<uint64_t>(shortest, l.t_end - l.t_begin);
    CHECK(l.t_end - l.t_begin + tick + 3 >= 3000);
    CHECK(l.t_begin > prev);
    prev = l.t_begin;
  }
  for (const auto& k : s.kernels()) {
    const LaunchRow& l = *launch[k.correlation_id];
    CHECK(int64_t(k.t_start - l.t_begin) >= 5000 - 1000);
  }
  std::printf("clock %s: %.0f ticks/s; shortest 3000 ns call measured %llu ns (%s)\n",
              clock_kind_name(s.clock().kind), s.clock().ticks_per_second,
              static_cast<unsigned long long>(shortest), activity ? "activity" : "callbacks");
}

}  // namespace

int main() {
  Double d = load_double();
  test_exact_schedule(d, 130001);        // CUPTI 13.x records (Kernel10)
  test_exact_schedule(d, 26);            // CUPTI 12.x records (Kernel9)
  for (bool activity : {false, true}) {  // launch times from callbacks, then from records
    test_nested_calls_recorded_once(d, activity);
    test_threads(d, activity);
    test_machine_clock(d, activity);
  }
  run_concurrency_tests(d);
  if (failures) {
    std::fprintf(stderr, "session tests: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("session tests: all passed\n");
  return 0;
}
