// The capture session under concurrency, fork and old CUPTI versions, on the
// CUPTI test double: buffer refusal by API version, clock readers during
// restarts, fork while capturing, stop while buffers are being delivered, and
// launches across a stop and a start. Included by session_tests.cpp (one
// program, so every build of it runs these); .ci/native.sh runs them under
// ThreadSanitizer and AddressSanitizer too.
#pragma once

#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "cupti/callback_state.h"
#include "cupti/metadata.h"
#include "cupti/session.h"
#include "double/sim_cuda.h"
#include "double_control.h"

// The launch hooks' C interface as libskipnative_hooks.so exports it, defined
// here in the test program (linked with -rdynamic, so a session finds it with
// dlsym): a launch_records="hook" session attaches its sink, which the tests
// call as a wrapped driver call does, around the real call.
inline std::atomic<const SkipnativeHookSink*> g_hook_sink{nullptr};
extern "C" __attribute__((visibility("default"))) void skipnative_hooks_attach2(
    const SkipnativeHookSink* sink) {
  g_hook_sink.store(sink);
}
extern "C" __attribute__((visibility("default"))) int skipnative_hooks_in_time() { return 1; }
extern "C" __attribute__((visibility("default"))) int skipnative_hooks_abi() {
  return SKIPNATIVE_HOOKS_ABI;
}

namespace {

using skipnative::LaunchRow;
using skipnative::Session;
using skipnative::SessionError;
using skipnative::SessionOptions;

// Sessions live on the heap in these tests: ThreadSanitizer forgets a mutex
// when its memory is freed, not when a stack frame is reused, and would take
// two sessions' mutexes at one stack address for one.

SessionOptions library_clock() {
  SessionOptions o;
  o.clock = "library";
  return o;
}

// A one-shot gate between two threads, with a timeout so a test that finds the
// defect fixed (or not) never hangs.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void release() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
  bool wait(int ms) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return open; });
  }
};

// One pause at a named point of the capture code (set_pause_point), installed
// for the test's scope: once armed, the first thread to reach `where` opens
// `reached` and waits for `resume`, at most resume_ms.
struct PauseOnce {
  const char* where;
  int resume_ms;
  std::atomic<bool> armed{false};
  Gate reached, resume;
  static inline PauseOnce* current = nullptr;

  PauseOnce(const char* at, int ms) : where(at), resume_ms(ms) {
    current = this;
    skipnative::set_pause_point(&hit);
  }
  ~PauseOnce() {
    skipnative::set_pause_point(nullptr);
    current = nullptr;
  }
  static void hit(const char* at) {
    PauseOnce* p = current;
    if (p == nullptr || std::string(at) != p->where || !p->armed.exchange(false)) return;
    p->reached.release();
    p->resume.wait(p->resume_ms);
  }
};

// Past the pool's cap, CUPTI before API version 27 gets a buffer (its records
// counted), from 27 a refusal (counted by CUPTI). Nothing is lost uncounted.
void test_buffer_refusal_by_version(const Double& d, uint32_t version) {
  d.reset(version);
  d.configure(100, 100, 0, 0);
  SessionOptions o = library_clock();
  o.activity_buffer_bytes = 4096;  // a few kernel records each
  o.max_activity_buffers = 2;      // the double holds buffers until a flush
  auto s_heap = std::make_unique<Session>(o);
  Session& s = *s_heap;
  s.start();
  const int n = 400;
  for (int i = 0; i < n; ++i) d.launch(kRuntime, kLaunch, 7, "k", 100);
  s.stop();
  const auto& st = s.stats();
  CHECK(s.launches().size() == size_t(n));
  if (Session::buffer_refusal_safe(version)) {
    CHECK(d.refused_buffers() > 0 && st.buffers_refused == d.refused_buffers());
    CHECK(st.buffers_spilled == 0 && st.records_spilled == 0);
    CHECK(s.kernels().size() + st.cupti_dropped == size_t(n));
  } else {
    CHECK(d.refused_buffers() == 0);  // CUPTI 12.x before 12.9 is never refused
    CHECK(st.buffers_refused == 0 && st.buffers_spilled > 0);
    CHECK(s.kernels().size() + st.records_spilled + st.cupti_dropped == size_t(n));
    CHECK(s.kernels().size() < size_t(n));  // the pool's cap still holds
  }
}

// CUPTI's timestamp callback runs on CUPTI's threads at any time, also while a
// session starts (publishing its clock), after it stopped, and while the
// record-path benchmark runs. A data race here is a ThreadSanitizer report.
void test_clock_readers_during_restarts(const Double& d) {
  d.reset(130001);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      d.call_timestamp_callback();
      reads.fetch_add(1);
    }
  });
  for (int i = 0; i < 20; ++i) {
    SessionOptions o;
    o.clock = i % 2 ? "monotonic_raw" : "auto";
    o.finalize = 0;  // the timestamp callback stays registered after stop
    auto s_heap = std::make_unique<Session>(o);
    Session& s = *s_heap;
    s.start();
    d.launch(kRuntime, kLaunch, 7, "k", 10);
    s.stop();
    CHECK(s.launches().size() == 1);
    skipnative::bench_record_path(2000, "auto");
  }
  done = true;
  reader.join();
  CHECK(reads.load() > 0);
}

// A forked child never touches the parent's session: stop() refuses, the
// destructor leaves CUPTI's state as it was, a normal exit and an exec are
// clean; the parent's capture goes on and keeps only its own launches.
void test_fork_while_capturing(const Double& d) {
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  auto* s = new Session(library_clock());
  s->start();
  d.launch_many(10, kRuntime, kLaunch, 7, "parent", 100);
  const uint64_t finalized = d.finalized();
  std::fflush(nullptr);  // nothing buffered for both processes to print
  pid_t child = fork();
  if (child == 0) {
    d.launch_many(100, kRuntime, kLaunch, 7, "child", 100);
    bool refused = false;
    try {
      s->stop();
    } catch (const SessionError&) {
      refused = true;
    }
    delete s;
    const bool untouched = d.subscribed() == 1 && d.finalized() == finalized;
    std::exit(refused && untouched ? 0 : 1);  // a normal exit: atexit handlers run
  }
  pid_t execs = fork();
  if (execs == 0) {
    execl("/bin/sh", "sh", "-c", "exit 0", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(waitpid(execs, &status, 0) == execs && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  d.launch_many(10, kRuntime, kLaunch, 7, "parent", 100);
  s->stop();
  CHECK(s->launches().size() == 20 && s->kernels().size() == 20);
  auto names = s->strings();
  for (const auto& k : s->kernels()) CHECK(names[k.name_id] == "parent");
  delete s;
  CHECK(d.subscribed() == 0);
}

// fork() while another thread holds one of the capture's process-wide locks
// (here stop(), retiring the launch buffers): the child, where that thread does
// not exist, captures without waiting on it. A hang ends the child (SIGALRM).
void test_fork_while_a_lock_is_held(const Double& d) {
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  PauseOnce retire("retire", 300);  // a fork() that waits for the lock goes on after it
  auto s = std::make_unique<Session>(library_clock());
  s->start();
  d.launch(kRuntime, kLaunch, 7, "parent", 100);
  retire.armed = true;
  std::thread stopper([&] { s->stop(); });
  CHECK(retire.reached.wait(5000));
  std::fflush(nullptr);
  pid_t child = fork();
  if (child == 0) {
    alarm(10);
    auto c = std::make_unique<Session>(library_clock());
    c->start();
    d.launch_many(5, kRuntime, kLaunch, 7, "child", 100);
    c->stop();
    std::_Exit(c->launches().size() == 5 && c->kernels().size() == 5 ? 0 : 1);
  }
  retire.resume.release();
  stopper.join();
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(s->launches().size() == 1 && s->kernels().size() == 1);
}

// fork() while another thread's start() has published its session but not yet
// subscribed to CUPTI: the child inherits no subscription, so it is not told
// that its parent's capture holds CUPTI (forked_from_capture); a child forked
// while a session is subscribed is.
void test_fork_before_the_subscription(const Double& d) {
  d.reset(130001);
  PauseOnce published("published", 300);
  auto s = std::make_unique<Session>(library_clock());
  published.armed = true;
  std::thread starter([&] { s->start(); });
  CHECK(published.reached.wait(5000));
  std::fflush(nullptr);
  pid_t child = fork();
  if (child == 0) std::_Exit(skipnative::forked_from_capture() ? 1 : 0);
  published.resume.release();
  starter.join();
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  child = fork();  // subscribed now
  if (child == 0) std::_Exit(skipnative::forked_from_capture() ? 0 : 1);
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  s->stop();
}

// A buffer callback that read the session just before stop() must finish
// before stop() returns: nothing is appended to a stopped session's rows.
void test_stop_while_a_buffer_is_delivered(const Double& d) {
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  PauseOnce deliver("deliver", 300);  // the fixed stop() waits for this callback
  auto s_heap = std::make_unique<Session>(library_clock());
  Session& s = *s_heap;
  s.start();
  d.launch_many(50, kRuntime, kLaunch, 7, "k", 100);
  deliver.armed = true;
  std::thread deliverer([&] { d.flush(0); });  // as CUPTI's own thread does
  CHECK(deliver.reached.wait(5000));
  s.stop();
  const size_t at_stop = s.kernels().size();
  deliver.resume.release();
  deliverer.join();
  CHECK(s.kernels().size() == at_stop);
  CHECK(at_stop == 50);
}

// A start() that fails after it registered the buffer callbacks (here
// cuptiActivityEnable refuses the concurrent kernel kind: another CUPTI user
// left the serial one on) while CUPTI completes a buffer on its own thread:
// that callback read the session before start() gave up, and must be done with
// it before start() throws, for the caller may destroy the session at once.
const Double* g_enable_double = nullptr;
std::thread* g_completer = nullptr;
Gate* g_failing_reached = nullptr;
Gate* g_start_thrown = nullptr;
std::atomic<bool> g_pause_failing{false}, g_start_threw{false}, g_delivered_late{false};

void pause_failing_start_delivery(const char* where) {
  if (std::string(where) != "deliver" || !g_pause_failing.exchange(false)) return;
  g_failing_reached->release();
  g_start_thrown->wait(300);  // a fixed start() waits for this callback
  g_delivered_late = g_start_threw.load();
}

void complete_a_buffer_now(int) {  // as CUPTI's thread does, at any time
  if (g_completer != nullptr) return;
  g_completer = new std::thread([] { g_enable_double->flush(0); });
  g_failing_reached->wait(5000);
}

// A start() that fails while CUPTI delivers a buffer that read the session:
// `arm` sets the failure and the delivery up, `disarm` undoes what it set.
template <class Arm, class Disarm>
void check_failed_start_waits_for_delivery(const Double& d, Arm arm, Disarm disarm) {
  d.reset(23);  // no cuptiFinalize: the buffer callbacks stay registered after a stop
  d.configure(100, 100, 0, 0);
  auto first = std::make_unique<Session>(library_clock());
  first->start();
  first->stop();
  d.enable_kind(CUPTI_ACTIVITY_KIND_KERNEL);  // another CUPTI user's kind
  d.launch(kRuntime, kLaunch, 7, "k", 100);   // a record in a buffer CUPTI holds
  Gate reached, thrown;
  g_enable_double = &d;
  g_failing_reached = &reached;
  g_start_thrown = &thrown;
  g_start_threw = g_delivered_late = false;
  arm();
  auto s = std::make_unique<Session>(library_clock());
  bool threw = false;
  try {
    s->start();
  } catch (const SessionError&) {
    threw = true;
  }
  g_start_threw = true;
  thrown.release();
  disarm();
  if (g_completer != nullptr) {
    g_completer->join();
    delete g_completer;
    g_completer = nullptr;
  }
  skipnative::set_pause_point(nullptr);
  d.disable_kind(CUPTI_ACTIVITY_KIND_KERNEL);
  CHECK(threw && !s->active());
  CHECK(reached.wait(0));           // the buffer was delivered while start() ran
  CHECK(!g_delivered_late.load());  // and start() waited for it
  s.reset();
  auto next = std::make_unique<Session>(library_clock());  // the process can capture again
  next->start();
  d.launch(kRuntime, kLaunch, 7, "k", 100);
  next->stop();
  CHECK(next->kernels().size() == 1);
}

void test_failed_start_while_a_buffer_is_delivered(const Double& d) {
  check_failed_start_waits_for_delivery(
      d,
      [&] {
        g_pause_failing = true;
        skipnative::set_pause_point(&pause_failing_start_delivery);
        d.on_activity_enable(&complete_a_buffer_now);
      },
      [&] { d.on_activity_enable(nullptr); });
}

// The same when start() is refused because a record-path benchmark runs: the
// session was published for an instant, a buffer callback that read it then
// must be done with it before start() throws. (Before, that refusal threw
// without waiting, and the caller's delete freed the session under the
// callback: AddressSanitizer saw the use after free.)
std::atomic<bool> g_pause_refused{false};

void complete_a_buffer_while_published(const char* where) {
  const std::string w(where);
  if (w == "published" && g_pause_refused.load()) {
    if (g_completer == nullptr) g_completer = new std::thread([] { g_enable_double->flush(0); });
    g_failing_reached->wait(5000);  // the completion has read the session
  } else if (w == "deliver" && g_pause_refused.exchange(false)) {
    g_failing_reached->release();
    g_start_thrown->wait(300);  // a fixed start() waits for this callback
    g_delivered_late = g_start_threw.load();
  }
}

void test_refused_start_while_a_buffer_is_delivered(const Double& d) {
  check_failed_start_waits_for_delivery(
      d,
      [] {
        g_pause_refused = true;
        skipnative::set_pause_point(&complete_a_buffer_while_published);
        skipnative::callback_state::benchmarking.store(true);  // as a record-path benchmark does
      },
      [] { skipnative::callback_state::benchmarking.store(false); });
}

// Buffers CUPTI completes in stop()'s first flush go back without being cleared
// (they are not used again), but until the second flush CUPTI may still ask for
// one (a launch on another thread, records of work still finishing) while the
// zeroed-buffer attribute says what it gets is zero. (Before, it got one of
// those uncleared buffers: CUPTI may then read stale values as records.)
const Double* g_stop_double = nullptr;
std::atomic<int> g_stop_deliveries{0};

void launch_at_the_second_stop_delivery(const char* where) {
  if (std::string(where) != "deliver" || g_stop_deliveries.fetch_add(1) != 1) return;
  // the first buffer of the flush is back in the pool by now
  std::thread([] { g_stop_double->launch(kRuntime, kLaunch, 7, "late", 100); }).join();
}

void test_buffer_requested_while_stopping_is_zeroed(const Double& d) {
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  SessionOptions o = library_clock();
  o.activity_buffer_bytes = 4096;  // a few records a buffer: CUPTI holds several
  auto s = std::make_unique<Session>(o);
  s->start();
  CHECK(s->stats().buffers_prezeroed);
  d.launch_many(100, kRuntime, kLaunch, 7, "k", 100);
  const uint64_t before = d.dirty_buffers();
  g_stop_double = &d;
  g_stop_deliveries = 0;
  skipnative::set_pause_point(&launch_at_the_second_stop_delivery);
  s->stop();
  skipnative::set_pause_point(nullptr);
  CHECK(g_stop_deliveries.load() >= 2);  // the launch came while stop() delivered
  CHECK(d.dirty_buffers() == before);
  CHECK(s->kernels().size() >= 100);
}

// A thread preempted inside a launch record (here: while attaching) across a
// stop: the stop waits for the record, which lands in the stopped session's
// buffers (a later stop frees them: a record still writing there would write
// into freed memory), and the thread's next launches go to the next session.
void test_attach_across_stop_and_start(const Double& d) {
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  PauseOnce attach("attach", 5000);
  Gate go_on;
  auto first = std::make_unique<Session>(library_clock());
  first->start();
  attach.armed = true;
  std::thread t([&] {
    d.launch(kRuntime, kLaunch, 7, "first", 100);  // pauses while attaching
    go_on.wait(5000);
    d.launch_many(100, kRuntime, kLaunch, 7, "second", 100);
  });
  CHECK(attach.reached.wait(5000));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    first->stop();
    stopped = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(!stopped.load());  // the stop waits for the record in flight
  attach.resume.release();
  stopper.join();
  CHECK(first->launches().size() == 1);  // it landed in the stopped session
  auto second = std::make_unique<Session>(library_clock());
  second->start();
  go_on.release();
  t.join();
  second->stop();
  CHECK(second->launches().size() == 100);
  size_t joined = 0;  // the first launch's kernel may land in either session
  auto names = second->strings();
  for (const auto& k : second->kernels()) joined += names[k.name_id] == "second";
  CHECK(joined == 100);
}

// Two stop() calls at once (a watchdog thread's and a `with` block's end): one
// stops the session; the other waits until that one is done before it says the
// session is not capturing, so its caller finds the results complete.
void test_racing_stops(const Double& d) {
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  auto s = std::make_unique<Session>(library_clock());
  s->start();
  d.launch_many(10, kRuntime, kLaunch, 7, "k", 100);
  PauseOnce retire("retire", 5000);  // inside the first stop(), its lock held
  retire.armed = true;
  std::thread first([&] { s->stop(); });
  CHECK(retire.reached.wait(5000));
  std::atomic<bool> second_done{false};
  bool finished_at_return = false, refused = false;
  std::thread second([&] {
    try {
      s->stop();
    } catch (const SessionError&) {
      refused = true;
    }
    finished_at_return = s->finished();
    second_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(!second_done.load());  // it waits for the first stop()
  retire.resume.release();
  first.join();
  second.join();
  CHECK(refused && finished_at_return);
  CHECK(s->launches().size() == 10 && s->kernels().size() == 10);
}

// Stop and start, again and again, while eight threads launch; then one more
// session in which each of the same threads launches a known number: every one
// is recorded (a thread's stale attachment never swallows launches).
void test_restarts_while_eight_threads_launch(const Double& d) {
  d.reset(130001);
  d.configure(10, 10, 0, 0);
  const int threads = 8, last = 500;
  std::atomic<int> phase{0};  // 0: launch freely, 1: pause, 2: launch `last`, 3: done
  std::atomic<int> paused{0}, finished{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&, i] {
      while (phase.load() == 0) d.launch(kRuntime, kLaunch, 10 + i, "k", 10);
      paused.fetch_add(1);
      while (phase.load() == 1) std::this_thread::yield();
      d.launch_many(last, kRuntime, kLaunch, 10 + i, "last", 10);
      finished.fetch_add(1);
    });
  for (int cycle = 0; cycle < 30; ++cycle) {
    auto s_heap = std::make_unique<Session>(library_clock());
    Session& s = *s_heap;
    s.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    s.stop();
    std::set<uint32_t> corr;
    for (const LaunchRow& l : s.launches()) {
      corr.insert(l.correlation_id);
      CHECK(l.t_begin >= s.t_start_ns() && l.t_begin <= l.t_end);
    }
    CHECK(corr.size() == s.launches().size());
    CHECK(s.stats().launches_dropped == 0);
  }
  phase = 1;
  while (paused.load() < threads) std::this_thread::yield();
  auto s_heap = std::make_unique<Session>(library_clock());
  Session& s = *s_heap;
  s.start();
  phase = 2;
  while (finished.load() < threads) std::this_thread::yield();
  s.stop();
  phase = 3;
  for (auto& t : ts) t.join();
  CHECK(s.launches().size() == size_t(threads * last));
  CHECK(s.kernels().size() == size_t(threads * last));
}

// Buffers delivered from another thread while launches go on and stop() runs:
// the rows stop() leaves never change afterwards.
void test_stop_while_delivering(const Double& d) {
  d.reset(130001);
  d.configure(10, 10, 0, 0);
  for (int round = 0; round < 10; ++round) {
    SessionOptions o = library_clock();
    o.activity_buffer_bytes = 8192;
    auto s_heap = std::make_unique<Session>(o);
    Session& s = *s_heap;
    s.start();
    std::atomic<bool> done{false};
    std::thread launcher([&] {
      while (!done.load()) d.launch(kRuntime, kLaunch, 7, "k", 10);
    });
    std::thread deliverer([&] {
      while (!done.load()) d.flush(0);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s.stop();
    const size_t kernels = s.kernels().size(), launches = s.launches().size();
    done = true;
    launcher.join();
    deliverer.join();
    CHECK(s.kernels().size() == kernels && s.launches().size() == launches);
  }
}

// A buffer CUPTI asked for while no session was capturing (records that came
// after a stop: a kernel still running, with no cuptiFinalize before CUDA
// 12.6) is still held when the next session starts, which CUPTI then fills and
// completes. It is not one of that session's pool buffers: it must neither be
// cleared as one (4 MiB, over a smaller block) nor taken off the pool's count
// of buffers handed out (which would wrap, and every later request would be
// past the cap).
void test_buffer_from_outside_the_session(const Double& d) {
  d.reset(23);  // CUDA 12.5: no refusal, no finalize by default
  d.configure(100, 100, 0, 0);
  auto first = std::make_unique<Session>(library_clock());
  first->start();
  d.launch(kRuntime, kLaunch, 7, "first", 100);
  first->stop();
  CHECK(first->kernels().size() == 1);
  d.enable_kind(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  d.launch(kRuntime, kLaunch, 7, "between", 100);  // into a buffer of no session
  d.disable_kind(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  SessionOptions o = library_clock();
  o.activity_buffer_bytes = 4u << 20;
  auto second = std::make_unique<Session>(o);
  second->start();
  d.launch_many(10, kRuntime, kLaunch, 7, "second", 100);  // into the same buffer
  d.flush(0);                                              // completed in this session
  d.launch_many(10, kRuntime, kLaunch, 7, "second", 100);  // a buffer from the pool
  second->stop();
  const auto& st = second->stats();
  auto names = second->strings();
  size_t own = 0;
  for (const auto& k : second->kernels()) own += names[k.name_id] == "second";
  CHECK(own == 20);
  CHECK(st.buffers_spilled == 0 && st.records_spilled == 0 && st.buffers_refused == 0);
  CHECK(st.max_buffers_in_use == 1);
}

// stop() on one thread while another reads the results as soon as finished()
// says so (raw() and the trace from another Python thread; stop() runs without
// the GIL) and a third marks: the rows are complete once the session reads as
// finished, and a mark() racing the stop is either refused or inside the
// capture, converted to ns with the others.
void test_results_read_while_stopping(const Double& d) {
  d.reset(130001);
  d.configure(10, 10, 0, 0);
  SessionOptions o;
  o.clock = "monotonic_raw";  // real time: a mark after the stop began reads later
  auto s = std::make_unique<Session>(o);
  s->start();
  const size_t n = 100000;
  d.launch_many(n, kRuntime, kLaunch, 7, "k", 10);
  std::atomic<int> ready{0};
  size_t seen = 0;
  std::thread reader([&] {
    ready.fetch_add(1);
    while (!s->finished()) {
    }
    seen = s->launches().size();
  });
  std::thread marker([&] {
    ready.fetch_add(1);
    try {
      for (;;) s->mark("m");
    } catch (const SessionError&) {
    }
  });
  while (ready.load() < 2) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s->stop();
  reader.join();
  marker.join();
  CHECK(seen == n);
  CHECK(!s->markers().empty());
  size_t outside = 0;
  for (const auto& m : s->markers()) outside += m.t < s->t_start_ns() || m.t > s->t_stop_ns();
  CHECK(outside == 0);
}

// completion_cpu moves the thread CUPTI completes buffers on (its own) to that
// CPU. stop() flushes on the thread that calls it, an application thread that
// launched and will launch again: that one keeps the CPUs it had.
void test_completion_cpu_leaves_the_stopping_thread_alone(const Double& d) {
  cpu_set_t before;
  CPU_ZERO(&before);
  if (sched_getaffinity(0, sizeof before, &before) != 0 || CPU_COUNT(&before) < 2) {
    std::printf("completion_cpu: fewer than 2 CPUs, not checked\n");
    return;
  }
  int cpu = 0;
  while (!CPU_ISSET(cpu, &before)) ++cpu;
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  SessionOptions o = library_clock();
  o.completion_cpu = cpu;
  auto s = std::make_unique<Session>(o);
  s->start();
  d.launch(kRuntime, kLaunch, 7, "k", 100);
  bool worker_pinned = false;
  std::thread completer([&] {  // as CUPTI's own thread completes buffers
    d.flush(0);
    cpu_set_t now;
    CPU_ZERO(&now);
    worker_pinned =
        sched_getaffinity(0, sizeof now, &now) == 0 && CPU_COUNT(&now) == 1 && CPU_ISSET(cpu, &now);
  });
  completer.join();
  // an application thread that completes a buffer (it flushes, as a profiler
  // in the program may) is left where it runs: it launched, so it is no
  // CUPTI worker (before, it stayed pinned to completion_cpu for good)
  bool app_pinned = true;
  std::thread app([&] {
    d.launch(kRuntime, kLaunch, 7, "k", 100);
    d.flush(0);
    cpu_set_t now;
    CPU_ZERO(&now);
    app_pinned = sched_getaffinity(0, sizeof now, &now) != 0 || !CPU_EQUAL(&before, &now);
  });
  app.join();
  d.launch(kRuntime, kLaunch, 7, "k", 100);
  s->stop();  // completes the last buffer on this thread
  cpu_set_t after;
  CPU_ZERO(&after);
  CHECK(sched_getaffinity(0, sizeof after, &after) == 0 && CPU_EQUAL(&before, &after));
  CHECK(worker_pinned && s->stats().completion_pinned);
  CHECK(!app_pinned);
  CHECK(s->kernels().size() == 3);
  sched_setaffinity(0, sizeof before, &before);  // as it was, whatever happened
}

// The out-of-memory tests cap the address space (RLIMIT_AS): not under the
// sanitizers (their shadow memory needs more than any cap), nor under qemu-user,
// which runs the aarch64 build and whose own allocations the cap would fail
// (x86-64 only: the code they cover is the same on every architecture).
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SKIPNATIVE_SANITIZED 1
#endif
#endif
#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__) && !defined(SKIPNATIVE_SANITIZED)
#if __GLIBC_PREREQ(2, 33)  // mallinfo2
#define SKIPNATIVE_OOM_TESTS 1
#endif
#endif

// Runs `body` in a forked child, on a reset double, and checks that it returned
// true (what it does to its process, such as capping memory, stays there).
template <class Body>
void in_child(const Double& d, Body body) {
  d.reset(130001);
  d.configure(10, 10, 0, 0);
  std::fflush(nullptr);
  pid_t child = fork();
  if (child == 0) std::_Exit(body() ? 0 : 1);
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// Caps this process's address space at what it maps now plus `headroom`; true
// when set (`before` is the limit to restore).
inline bool cap_address_space(size_t headroom, rlimit* before) {
  getrlimit(RLIMIT_AS, before);
  size_t pages = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%zu", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  rlimit capped = *before;
  capped.rlim_cur = pages * size_t(sysconf(_SC_PAGESIZE)) + headroom;
  return pages && setrlimit(RLIMIT_AS, &capped) == 0;
}

// Out of memory on the launch path: a launch record that cannot be stored (no
// memory for a chunk of the launch buffers) is counted as unallocated (not as
// past max_launch_bytes), and no exception leaves the callback (CUPTI calls it
// from C: one escaping there ends the process). In a child whose address space
// is capped, with chunks larger than all the free memory malloc holds.
void test_out_of_memory_on_the_launch_path(const Double& d) {
#ifndef SKIPNATIVE_OOM_TESTS
  (void)d;
#else
  in_child(d, [&] {
    const size_t chunk_bytes = mallinfo2().fordblks + (64u << 20);
    SessionOptions o = library_clock();
    o.kernel_activity = o.memcpy = o.memset = false;  // launch records only
    o.launch_chunk_records = chunk_bytes / sizeof(skipnative::LaunchRecord);
    o.launch_prealloc_chunks = 0;
    o.max_launch_bytes = 4 * chunk_bytes;
    auto s = std::make_unique<Session>(o);
    s->start();
    const uint64_t n = 1000;
    rlimit before{};
    bool escaped = false;
    if (cap_address_space(8u << 20, &before)) {
      try {
        d.launch_many(n, kRuntime, kLaunch, 7, "k", 10);
      } catch (...) {
        escaped = true;
      }
      setrlimit(RLIMIT_AS, &before);
    }
    s->stop();
    const uint64_t kept = s->launches().size(), lost = s->stats().records_unallocated;
    return !escaped && kept == 0 && lost == n && s->stats().launches_dropped == 0;
  });
#endif
}

// Grows this thread's stack now, so that code run later under a capped address
// space needs no new stack pages.
__attribute__((noinline)) void grow_stack(int depth) {
  volatile char page[4096];
  page[0] = char(depth);
  if (depth > 0) grow_stack(depth - 1);
  (void)page[0];
}

// Out of memory while a buffer is decoded: the rows that cannot be kept are
// counted as unallocated (not as past max_gpu_records), and no exception leaves
// the buffer callback (CUPTI calls it from its own thread, from C). The child
// caps its address space and then takes every byte malloc has left, so the
// decode's first allocation fails.
void test_out_of_memory_while_decoding(const Double& d) {
#ifndef SKIPNATIVE_OOM_TESTS
  (void)d;
#else
  in_child(d, [&] {
    SessionOptions o = library_clock();
    o.activity_buffer_bytes = 4096;  // 18 kernel records a buffer
    o.activity_buffers_pooled = 8;
    auto s = std::make_unique<Session>(o);
    s->start();
    const uint64_t n = 3 * 18 + 1;  // three full buffers and one open: the double's list fits
    d.launch_many(n, kRuntime, kLaunch, 7, "k", 10);
    grow_stack(256);
    std::vector<void*> taken;
    taken.reserve(1u << 20);
    rlimit before{};
    bool escaped = false, exhausted = false;
    if (cap_address_space(1u << 20, &before)) {
      for (size_t size = 1u << 16; size >= 16; size /= 4)
        while (taken.size() < taken.capacity())
          if (void* p = std::malloc(size))
            taken.push_back(p);
          else
            break;
      exhausted = taken.size() < taken.capacity();
      try {
        d.flush(0);  // as CUPTI's thread completes the buffers
      } catch (...) {
        escaped = true;
      }
      for (void* p : taken) std::free(p);
      setrlimit(RLIMIT_AS, &before);
    }
    s->stop();
    const uint64_t kept = s->kernels().size(), lost = s->stats().records_unallocated;
    return exhausted && !escaped && kept + lost == n && lost > 0 &&
           s->stats().gpu_rows_dropped == 0;
  });
#endif
}

SessionOptions hooked() {
  SessionOptions o = library_clock();
  o.launch_records = skipnative::LaunchRecords::kHook;
  return o;
}

// Whether a session attached the hooks' sink here (the test program exports
// the hooks' interface only where it is linked with -rdynamic).
bool hooks_attached(const Session& s, const char* test) {
  if (s.launch_source() == skipnative::LaunchRecords::kHook && g_hook_sink.load() != nullptr)
    return true;
  std::printf("%s: the hooks' interface is not exported here (-rdynamic): not checked\n", test);
  return false;
}

// A hooked call that began before a stop() and returns after it (a
// cuStreamSynchronize waiting on a long kernel): its pop of the external
// correlation id must not reach CUPTI once stop() has finalized it.
void test_hooked_call_across_a_finalizing_stop(const Double& d) {
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  auto s = std::make_unique<Session>(hooked());
  s->start();
  if (!hooks_attached(*s, "hooked call across a stop")) return;
  const SkipnativeHookSink* sink = g_hook_sink.load();
  const SkipnativeHookCall call{};
  uint32_t ext = 0;
  const uint64_t t = sink->enter(&call, &ext);
  d.launch(kDriver, kDriverLaunch, 7, "k", 100);  // the real call
  s->stop();
  sink->exit(t, ext, kDriverLaunch, 0);
  CHECK(s->finalized() && d.finalized() == 1);
  CHECK(d.calls_after_finalize() == 0);
  CHECK(s->kernels().size() == 1);
}

// Threads in hooked calls while sessions start and stop, finalizing each time:
// no push or pop reaches CUPTI between a cuptiFinalize and the next session's
// set-up (a thread preempted inside a call spans a whole stop).
void test_hooked_calls_while_sessions_finalize(const Double& d) {
  d.reset(130001);
  d.configure(10, 10, 0, 0);
  std::atomic<bool> done{false};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      while (!done.load()) {
        const SkipnativeHookSink* sink = g_hook_sink.load();
        if (sink == nullptr) {
          std::this_thread::yield();
          continue;
        }
        const SkipnativeHookCall call{};
        uint32_t ext = 0;
        const uint64_t t = sink->enter(&call, &ext);
        sink->exit(t, ext, kDriverLaunch, 0);
      }
    });
  bool attached = true;
  for (int cycle = 0; cycle < 50 && attached; ++cycle) {
    auto s = std::make_unique<Session>(hooked());
    s->start();
    attached = hooks_attached(*s, "hooked calls while sessions finalize");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    s->stop();
    CHECK(s->finalized());
  }
  done = true;
  for (auto& t : ts) t.join();
  CHECK(d.calls_after_finalize() == 0);
}

// The CUDA driver double beside the CUPTI double the loader loaded (a
// hook_join="order" session asks the driver for contexts): loaded once, after
// the CUPTI double is made global so that the driver double's references to
// it resolve. False where it is not there.
bool driver_double_loaded() {
  static const bool loaded = [] {
    const skipnative::CuptiApi* api = skipnative::loaded_cupti();
    if (api == nullptr) return false;
    dlopen(api->path.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
    const std::string dir = api->path.substr(0, api->path.rfind('/') + 1);
    return dlopen((dir + "libskipnative_cuda_double.so").c_str(), RTLD_NOW | RTLD_GLOBAL) !=
           nullptr;
  }();
  if (!loaded) std::printf("the CUDA driver double is not beside the CUPTI double: not checked\n");
  return loaded;
}

// hook_join = "order": threads make hooked calls on streams of their own while
// sessions start and stop, finalizing each time. No stream lookup reaches
// CUPTI between a cuptiFinalize and the next session's set-up, and what each
// session joins it joins right: every call joined to a kernel of its own
// thread's stream, each pair checked by the kernel's queued time.
void test_order_hooked_calls_while_sessions_finalize(const Double& d) {
  if (!driver_double_loaded()) return;
  d.reset(130001);
  d.configure(10, 10, 0, 0);
  SessionOptions o = hooked();
  o.hook_join = skipnative::HookJoin::kOrder;
  o.latency_timestamps = true;
  // buffers zeroed at start: a 4 MiB one zeroed at the first kernel, under the
  // double's lock, would take most of a cycle on a slow machine
  o.activity_buffer_bytes = 256 << 10;
  o.activity_buffers_pooled = 8;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> calls{0};
  std::mutex tids_mu;
  std::map<uint32_t, uint32_t> stream_of_thread;  // tid -> its stream's id
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&, i] {
      CUstream_st stream;
      stream.id = uint32_t(200 + i);
      {
        std::lock_guard<std::mutex> lock(tids_mu);
        stream_of_thread[skipnative::current_tid()] = stream.id;
      }
      SkipnativeHookCall call{};
      call.stream = &stream;
      call.has_stream = 1;
      call.cbid = kDriverLaunch;
      while (!done.load()) {
        const SkipnativeHookSink* sink = g_hook_sink.load();
        if (sink == nullptr) {
          std::this_thread::yield();
          continue;
        }
        uint32_t key = 0;
        const uint64_t t = sink->enter(&call, &key);
        d.launch(kDriver, kDriverLaunch, stream.id, "k", 10);  // the real call
        sink->exit(t, key, kDriverLaunch, 0);
        calls.fetch_add(1);
      }
    });
  bool attached = true;
  uint64_t joined = 0, wrong = 0;
  int cycles_joined = 0;
  for (int cycle = 0; cycle < 50 && attached; ++cycle) {
    auto s = std::make_unique<Session>(o);
    s->start();
    attached = hooks_attached(*s, "order-joined hooked calls while sessions finalize") &&
               s->stats().launch_hook_fallback.empty();
    // a few dozen calls in each session, however slow the build (sanitizers)
    const uint64_t before = calls.load();
    for (int waited = 0; attached && calls.load() < before + 40 && waited < 2000; ++waited)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    s->stop();
    CHECK(s->finalized());
    std::map<uint32_t, uint32_t> stream_of;  // kernel correlation id -> stream
    for (const auto& k : s->kernels()) stream_of[k.correlation_id] = k.stream;
    std::lock_guard<std::mutex> lock(tids_mu);
    cycles_joined += s->stats().pairs_checked > 0;
    for (const LaunchRow& r : s->launches()) {
      if (r.correlation_id == 0) continue;
      ++joined;
      auto k = stream_of.find(r.correlation_id);
      wrong += k == stream_of.end() || k->second != stream_of_thread[r.tid];
    }
    // each thread has a stream of its own: every pair checked, none ambiguous
    const auto& st = s->stats();
    uint64_t here = 0;
    for (const LaunchRow& r : s->launches()) here += r.correlation_id != 0;
    CHECK(st.pairs_checked == here && st.pairs_ambiguous == 0 && st.pairs_unverified == 0);
  }
  CHECK(attached);
  done = true;
  for (auto& t : ts) t.join();
  std::printf("order join while sessions finalize: %llu calls joined in %d of 50 sessions\n",
              (unsigned long long)joined, cycles_joined);
  CHECK(cycles_joined == 50 && wrong == 0);
  CHECK(d.calls_after_finalize() == 0);
}

// Calls made after stop() read its time, while it flushes (here: from the
// stopping thread, at the "stopped" pause): left out with the GPU work they
// launched, counted, by the callbacks and by both hook joins alike. For the
// order join they are joined first, so no kept call takes a late call's kernel.
const Double* g_late_double = nullptr;
const SkipnativeHookSink* g_late_sink = nullptr;  // null: the calls go through the callbacks
constexpr int kLateCalls = 5;

// A hooked cuLaunchKernel on `stream`.
SkipnativeHookCall launch_call(CUstream_st* stream) {
  SkipnativeHookCall call{};
  call.stream = stream;
  call.has_stream = 1;
  call.cbid = kDriverLaunch;
  return call;
}

void make_calls(int n) {
  CUstream_st stream;
  stream.id = 7;
  const SkipnativeHookCall call = launch_call(&stream);
  for (int i = 0; i < n; ++i) {
    uint32_t key = 0;
    const uint64_t t = g_late_sink ? g_late_sink->enter(&call, &key) : 0;
    g_late_double->launch(kDriver, kDriverLaunch, 7, "k", 100);
    if (g_late_sink) g_late_sink->exit(t, key, kDriverLaunch, 0);
  }
}

void launch_after_the_stop_time(const char* where) {
  if (std::string(where) != "stopped") return;
  g_late_double->advance(1);  // virtual time: a call at stop()'s very tick would be in it
  make_calls(kLateCalls);
}

void check_calls_after_stop_left_out(const Double& d, skipnative::LaunchRecords source,
                                     skipnative::HookJoin join) {
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  SessionOptions o = library_clock();
  o.launch_records = source;
  o.hook_join = join;
  o.latency_timestamps = true;
  auto s = std::make_unique<Session>(o);
  s->start();
  const bool hook = source == skipnative::LaunchRecords::kHook;
  if (hook && (!hooks_attached(*s, "calls after stop, hooked") ||
               !s->stats().launch_hook_fallback.empty())) {
    s->stop();
    return;
  }
  g_late_double = &d;
  g_late_sink = hook ? g_hook_sink.load() : nullptr;
  make_calls(3 * kLateCalls);  // in the window
  skipnative::set_pause_point(&launch_after_the_stop_time);
  s->stop();
  skipnative::set_pause_point(nullptr);
  const auto& st = s->stats();
  CHECK(s->launches().size() == 3 * kLateCalls);
  CHECK(st.launches_outside == kLateCalls);
  CHECK(st.gpu_rows_outside == kLateCalls);  // the flush delivered every late kernel
  CHECK(s->kernels().size() == 3 * kLateCalls);
  std::set<uint32_t> calls;
  for (const LaunchRow& r : s->launches()) {
    CHECK(r.t_begin <= s->t_stop_ns() && r.pad == 0);
    calls.insert(r.correlation_id);
  }
  CHECK(calls.size() == 3 * kLateCalls && calls.count(0) == 0);  // each joined to its own
  for (const auto& k : s->kernels()) CHECK(calls.count(k.correlation_id) == 1);
  CHECK(st.launches_unjoined == 0 && st.work_unjoined == 0);
  // the order join's figures are of the calls kept: each pair checked by its
  // kernel's queued time, the late ones not among them
  if (hook && join == skipnative::HookJoin::kOrder) CHECK(st.pairs_checked == 3 * kLateCalls);
}

void test_calls_after_stop_are_left_out(const Double& d) {
  check_calls_after_stop_left_out(d, skipnative::LaunchRecords::kCallbacks,
                                  skipnative::HookJoin::kExternal);
  check_calls_after_stop_left_out(d, skipnative::LaunchRecords::kHook,
                                  skipnative::HookJoin::kExternal);
  if (driver_double_loaded())
    check_calls_after_stop_left_out(d, skipnative::LaunchRecords::kHook,
                                    skipnative::HookJoin::kOrder);
}

// hook_join = "order": a hooked call made in one session that returns after
// the next one started (its enter time is before that start). Joined as a call
// outside the window, it came first in its stream's order and, without queued
// times, took the first kept call's kernel, which was then left out with it;
// every kept call shifted by one.
void test_call_before_start_takes_no_kept_kernel(const Double& d, bool latency) {
  if (!driver_double_loaded()) return;
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  SessionOptions o = hooked();
  o.hook_join = skipnative::HookJoin::kOrder;
  o.latency_timestamps = latency;
  auto s1 = std::make_unique<Session>(o);
  s1->start();
  if (!hooks_attached(*s1, "call before start") || !s1->stats().launch_hook_fallback.empty()) {
    s1->stop();
    return;
  }
  g_late_double = &d;
  g_late_sink = g_hook_sink.load();
  CUstream_st stream;
  stream.id = 7;
  const SkipnativeHookCall call = launch_call(&stream);
  uint32_t key0 = 0;
  const uint64_t t0 = g_late_sink->enter(&call, &key0);
  d.launch(kDriver, kDriverLaunch, 7, "k", 100);  // its real call, in session 1
  s1->stop();
  auto s2 = std::make_unique<Session>(o);
  s2->start();
  g_late_sink->exit(t0, key0, kDriverLaunch, 0);  // returns in session 2
  make_calls(5);
  s2->stop();
  const auto& st = s2->stats();
  std::set<uint32_t> kernels;
  for (const auto& k : s2->kernels()) kernels.insert(k.correlation_id);
  uint64_t joined = 0;
  for (const LaunchRow& r : s2->launches()) joined += kernels.count(r.correlation_id);
  CHECK(s2->launches().size() == 5 && st.launches_outside == 1);
  CHECK(s2->kernels().size() == 5 && st.gpu_rows_outside == 0);  // every kept call's kernel
  CHECK(joined == 5 && st.launches_unjoined == 0 && st.work_unjoined == 0);
}

// fork() during a hook capture: a hooked call in the child (CUDA is unusable
// there, but a program may still call it) reaches none of CUPTI, which the
// child inherits in whatever state the parent's threads left it (a lock held
// at the fork would hang it). Before, the child pushed external ids and looked
// streams up in CUPTI.
void test_hooked_call_in_a_forked_child(const Double& d, skipnative::HookJoin join) {
  if (join == skipnative::HookJoin::kOrder && !driver_double_loaded()) return;
  d.reset(130001);
  d.configure(100, 100, 0, 0);
  SessionOptions o = hooked();
  o.hook_join = join;
  auto s = std::make_unique<Session>(o);
  s->start();
  if (!hooks_attached(*s, "hooked call in a forked child")) return;
  void* h = dlopen(skipnative::loaded_cupti()->path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  auto pushes = reinterpret_cast<uint64_t (*)()>(dlsym(h, "skipnative_double_external_pushes"));
  auto lookups = reinterpret_cast<uint64_t (*)()>(dlsym(h, "skipnative_double_stream_lookups"));
  std::fflush(nullptr);
  pid_t child = fork();
  if (child == 0) {
    const uint64_t p0 = pushes(), l0 = lookups();
    const SkipnativeHookSink* sink = g_hook_sink.load();
    CUstream_st stream;  // a stream not seen before
    stream.id = 300;
    SkipnativeHookCall call{};
    call.stream = &stream;
    call.has_stream = 1;
    call.cbid = kDriverLaunch;
    uint32_t id = 0;
    if (sink != nullptr) sink->exit(sink->enter(&call, &id), id, kDriverLaunch, 0);
    _exit(pushes() == p0 && lookups() == l0 ? 0 : 1);
  }
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  d.launch(kRuntime, kLaunch, 7, "k", 100);
  s->stop();  // the parent's capture goes on unharmed
  CHECK(s->kernels().size() == 1);
}

// metadata() on one thread while another starts, captures and stops (the
// bindings run start() and stop() without the GIL, and cap.metadata may be read
// meanwhile), and a third completes buffers as CUPTI's thread does: what they
// write is read whole. A data race here is a ThreadSanitizer report.
void test_metadata_read_while_starting_and_stopping(const Double& d) {
  d.reset(130001);
  d.configure(10, 10, 0, 0);
  for (int round = 0; round < 10; ++round) {
    auto s = std::make_unique<Session>(hooked());
    std::atomic<bool> done{false};
    std::atomic<size_t> reads{0};
    std::thread reader([&] {
      while (!done.load()) reads += !skipnative::session_metadata_json(*s).empty();
    });
    std::thread deliverer([&] {
      while (!done.load()) d.flush(0);
    });
    s->start();
    d.launch_many(200, kDriver, kDriverLaunch, 7, "k", 10);
    // at least one read while the session captures, however the threads are scheduled
    const size_t before = reads.load();
    for (int ms = 0; ms < 5000 && reads.load() == before; ++ms)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const bool read_while_capturing = reads.load() > before;
    s->stop();
    done = true;
    reader.join();
    deliverer.join();
    CHECK(read_while_capturing);
    const std::string meta = skipnative::session_metadata_json(*s);
    CHECK(meta.find("\"t_stop_ns\":" + std::to_string(s->t_stop_ns())) != std::string::npos);
    CHECK(s->kernels().size() == 200);
  }
}

// overhead_records: CUPTI's overhead records summed by kind; the additional
// data CUPTI allocates for a full command buffer is freed, for records decoded
// and for those only counted in spill buffers (CUPTI before 12.9 past the
// pool's cap). Under AddressSanitizer a record's data not freed is a leak report.
void test_overhead_records_summed_and_their_data_freed(const Double& d) {
  d.reset(26);
  d.configure(100, 100, 0, 0);
  SessionOptions o = library_clock();
  o.overhead_records = true;
  o.activity_buffer_bytes = 4096;  // a few records each
  o.max_activity_buffers = 2;      // the double holds buffers until a flush: spills
  auto s = std::make_unique<Session>(o);
  s->start();
  const int n = 400;
  for (int i = 0; i < n; ++i) d.launch(kRuntime, kLaunch, 7, "k", 100);
  s->stop();
  const auto& st = s->stats();
  CHECK(st.buffers_spilled > 0);
  const auto& inst = st.cupti_overhead.at(CUPTI_ACTIVITY_OVERHEAD_CUPTI_INSTRUMENTATION);
  const auto& full = st.cupti_overhead.at(CUPTI_ACTIVITY_OVERHEAD_COMMAND_BUFFER_FULL);
  // what was decoded is summed: 150 ns each; the rest was counted in spill buffers
  CHECK(inst.count > 0 && inst.ns == 150 * inst.count && full.ns == 0);
  CHECK(inst.count + full.count + s->kernels().size() + st.records_spilled == n + n / 4 + n);
}

// A session started while the record-path benchmark runs on another thread
// (it swaps in launch buffers of its own, and clears them at its end) waits
// for it, refused until then: it would lose every launch after the
// benchmark's end, and the benchmark the records the session took.
std::atomic<bool> g_signal_bench{false};
Gate* g_bench_running = nullptr;

void signal_bench(const char* where) {
  if (std::string(where) == "attach" && g_signal_bench.exchange(false)) g_bench_running->release();
}

void test_start_while_the_record_bench_runs(const Double& d) {
  d.reset(130001);
  d.configure(10, 10, 0, 0);
  Gate running;
  g_bench_running = &running;
  g_signal_bench = true;
  skipnative::set_pause_point(&signal_bench);
  bool bench_failed = false;
  std::thread bench([&] {
    try {
      skipnative::bench_record_path(2000000, "monotonic_raw");
    } catch (const SessionError&) {
      bench_failed = true;
    }
  });
  CHECK(running.wait(5000));  // the benchmark records
  skipnative::set_pause_point(nullptr);
  std::unique_ptr<Session> s;
  size_t refused = 0;
  while (s == nullptr) {
    auto c = std::make_unique<Session>(library_clock());
    try {
      c->start();
      s = std::move(c);
    } catch (const SessionError&) {
      ++refused;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  d.launch_many(100, kRuntime, kLaunch, 7, "k", 10);
  bench.join();
  d.launch_many(100, kRuntime, kLaunch, 7, "k", 10);
  s->stop();
  CHECK(!bench_failed);
  CHECK(s->launches().size() == 200 && s->kernels().size() == 200);
  std::printf("start while the record bench runs: refused %zu times\n", refused);
}

// A thread inside a launch record into the record-path benchmark's buffers
// (a callback of a session that stopped without finalizing, say) when the
// benchmark ends: the benchmark waits for it before its buffers go, as a stop
// does. (Before, it returned and freed them under the record.)
void test_record_in_flight_across_the_bench_end() {
  std::atomic<bool> bench_done{false};
  bool bench_failed = false;
  Gate bench_attached;
  g_bench_running = &bench_attached;
  g_signal_bench = true;
  skipnative::set_pause_point(&signal_bench);
  std::thread bench([&] {
    try {
      skipnative::bench_record_path(2000000, "monotonic_raw");
    } catch (const SessionError&) {
      bench_failed = true;
    }
    bench_done = true;
  });
  CHECK(bench_attached.wait(5000));  // the benchmark's thread has attached
  PauseOnce attach("attach", 5000);
  attach.armed = true;
  std::thread late([] {
    uint64_t data = 0;
    CUpti_CallbackData info{};
    info.correlationData = &data;
    info.callbackSite = CUPTI_API_ENTER;
    Session::on_api(nullptr, CUPTI_CB_DOMAIN_RUNTIME_API, kLaunch, &info);
    info.callbackSite = CUPTI_API_EXIT;
    Session::on_api(nullptr, CUPTI_CB_DOMAIN_RUNTIME_API, kLaunch, &info);  // pauses attaching
  });
  CHECK(attach.reached.wait(5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the benchmark's loop is over
  CHECK(!bench_done.load());                                    // it waits for the record in flight
  attach.resume.release();
  late.join();
  bench.join();
  CHECK(!bench_failed);
}

// Process exit while another thread still reaches the capture's callbacks: a
// CUPTI that keeps the timestamp callback after a stop (no cuptiFinalize before
// 12.6) calls it whenever it timestamps, also while static destructors run.
// What the callbacks read is never destroyed (the clocks once were: under
// AddressSanitizer, a use after free in the exiting child).
void test_callbacks_while_the_process_exits(const Double& d) {
  d.reset(23);
  d.configure(100, 100, 0, 0);
  std::fflush(nullptr);
  pid_t child = fork();
  if (child == 0) {
    {
      Session s(library_clock());
      s.start();
      d.launch(kRuntime, kLaunch, 7, "k", 100);
      s.stop();
    }
    static const Double* dd = &d;
    std::thread([] {
      for (;;) dd->call_timestamp_callback();
    }).detach();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::exit(0);  // static destructors run under the calling thread
  }
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

void run_concurrency_tests(const Double& d) {
  test_buffer_refusal_by_version(d, 26);      // CUDA 12.8: refusal may crash CUPTI
  test_buffer_refusal_by_version(d, 27);      // CUDA 12.9
  test_buffer_refusal_by_version(d, 130001);  // CUDA 13
  test_overhead_records_summed_and_their_data_freed(d);
  test_clock_readers_during_restarts(d);
  test_fork_while_capturing(d);
  test_fork_while_a_lock_is_held(d);
  test_fork_before_the_subscription(d);
  test_stop_while_a_buffer_is_delivered(d);
  test_failed_start_while_a_buffer_is_delivered(d);
  test_refused_start_while_a_buffer_is_delivered(d);
  test_buffer_requested_while_stopping_is_zeroed(d);
  test_attach_across_stop_and_start(d);
  test_racing_stops(d);
  test_restarts_while_eight_threads_launch(d);
  test_stop_while_delivering(d);
  test_buffer_from_outside_the_session(d);
  test_results_read_while_stopping(d);
  test_completion_cpu_leaves_the_stopping_thread_alone(d);
  test_out_of_memory_on_the_launch_path(d);
  test_out_of_memory_while_decoding(d);
  test_hooked_call_across_a_finalizing_stop(d);
  test_hooked_calls_while_sessions_finalize(d);
  test_hooked_call_in_a_forked_child(d, skipnative::HookJoin::kExternal);
  test_hooked_call_in_a_forked_child(d, skipnative::HookJoin::kOrder);
  test_order_hooked_calls_while_sessions_finalize(d);
  test_calls_after_stop_are_left_out(d);
  test_call_before_start_takes_no_kept_kernel(d, false);
  test_call_before_start_takes_no_kept_kernel(d, true);
  test_metadata_read_while_starting_and_stopping(d);
  test_start_while_the_record_bench_runs(d);
  test_record_in_flight_across_the_bench_end();
  test_callbacks_while_the_process_exits(d);
}

}  // namespace
