// The Kineto reader's own tests: JSON cursor, exact numbers, events, chunking.
// No CUDA headers; built with -DSKIPNATIVE_CORE_TESTS=ON, or directly:
//   g++ -std=c++17 -O2 -Icsrc csrc/core/*.cpp csrc/kineto/*.cpp tests/native/reader_tests.cpp
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "check.h"
#include "kineto/json_cursor.h"
#include "kineto/trace_reader.h"

using namespace skipnative::kineto;

namespace {

// The whole text as one final buffer: a number needs its end to be seen.
Number parse_number(const std::string& text, bool* ok) {
  Cursor c{text.data(), text.size(), 0, true, 0};
  *ok = true;
  try {
    Number n = c.number();
    if (c.i != text.size()) *ok = false;
    return n;
  } catch (const ReadError&) {
    *ok = false;
    return {};
  }
}

Fit ns_of(const std::string& text, int64_t* out) {
  bool ok;
  Number n = parse_number(text, &ok);
  CHECK(ok);
  return scaled_int64(n, 3, false, out);
}

void test_numbers_to_ns() {
  int64_t v = 0;
  CHECK(ns_of("1.5", &v) == Fit::kOk && v == 1500);
  CHECK(ns_of("1661203462598738", &v) == Fit::kOk && v == 1661203462598738000);
  CHECK(ns_of("0.0005", &v) == Fit::kOk && v == 1);  // half away from zero
  CHECK(ns_of("-0.0005", &v) == Fit::kOk && v == -1);
  CHECK(ns_of("0.0004999999", &v) == Fit::kOk && v == 0);
  CHECK(ns_of("1.2345e2", &v) == Fit::kOk && v == 123450);
  CHECK(ns_of("12345e-5", &v) == Fit::kOk && v == 123);
  CHECK(ns_of("0.000000000000000000000000000000000000000000001", &v) == Fit::kOk && v == 0);
  CHECK(ns_of("9223372036854775.807", &v) == Fit::kOk && v == INT64_MAX);
  CHECK(ns_of("9223372036854775.808", &v) == Fit::kTooBig);
  CHECK(ns_of("-9223372036854775.808", &v) == Fit::kOk && v == INT64_MIN);
  // the value that used to wrap to 544 ns through mant * 1000 in 128 bits
  CHECK(ns_of("340282366920938463463374607431768212", &v) == Fit::kTooBig);
  CHECK(ns_of("1e400", &v) == Fit::kTooBig);
  CHECK(ns_of("1e-400", &v) == Fit::kOk && v == 0);
  CHECK(ns_of("0e999999999", &v) == Fit::kOk && v == 0);
  // digits past the 38th in the integer part still count toward the magnitude
  CHECK(ns_of("100000000000000000000000000000000000000000", &v) == Fit::kTooBig);
}

void test_numbers_as_integers() {
  bool ok;
  int64_t v = 0;
  CHECK(scaled_int64(parse_number("9223372036854775807", &ok), 0, true, &v) == Fit::kOk &&
        v == INT64_MAX);
  CHECK(scaled_int64(parse_number("9223372036854775808", &ok), 0, true, &v) == Fit::kTooBig);
  CHECK(scaled_int64(parse_number("-9223372036854775808", &ok), 0, true, &v) == Fit::kOk &&
        v == INT64_MIN);
  CHECK(scaled_int64(parse_number("1e3", &ok), 0, true, &v) == Fit::kOk && v == 1000);
  CHECK(scaled_int64(parse_number("7.0", &ok), 0, true, &v) == Fit::kOk && v == 7);
  CHECK(scaled_int64(parse_number("7.5", &ok), 0, true, &v) == Fit::kNotIntegral);
  CHECK(scaled_int64(parse_number("1e-400", &ok), 0, true, &v) == Fit::kNotIntegral);
  // the 64-bit path's edges: a product past INT64_MAX, past 2^64, digits of 2^64 - 1
  CHECK(scaled_int64(parse_number("9e18", &ok), 0, true, &v) == Fit::kOk &&
        v == 9000000000000000000);
  CHECK(scaled_int64(parse_number("1e19", &ok), 0, true, &v) == Fit::kTooBig);
  CHECK(scaled_int64(parse_number("-1e19", &ok), 0, true, &v) == Fit::kTooBig);
  CHECK(ns_of("9223372036854776", &v) == Fit::kTooBig);
  CHECK(ns_of("18446744073709552", &v) == Fit::kTooBig);
  CHECK(ns_of("18446744073709551.615", &v) == Fit::kTooBig);
  CHECK(ns_of("-9223372036854775.807", &v) == Fit::kOk && v == -INT64_MAX);
  CHECK(ns_of("9223372036854775", &v) == Fit::kOk && v == 9223372036854775000);
}

void test_number_grammar() {
  bool ok;
  for (const char* good : {"0", "-0", "0.5", "10", "1e5", "1E+5", "1.0e-5", "-12.34"}) {
    parse_number(good, &ok);
    if (!ok) std::fprintf(stderr, "refused %s\n", good);
    CHECK(ok);
  }
  for (const char* bad : {"0123", "-01", "00", "1.", "-", "1e", "1e+", "-.5", ".5", "+1"}) {
    parse_number(bad, &ok);
    if (ok) std::fprintf(stderr, "accepted %s\n", bad);
    CHECK(!ok);
  }
}

std::string read_string(const std::string& text, bool* ok) {
  Cursor c{text.data(), text.size(), 0, true, 0};
  std::string scratch;
  *ok = true;
  try {
    return std::string(c.string(scratch));
  } catch (const ReadError&) {
    *ok = false;
    return {};
  }
}

void test_strings() {
  bool ok;
  CHECK(read_string(R"("a\"b\\c\/\n")", &ok) == "a\"b\\c/\n" && ok);
  CHECK(read_string(R"("\u00e9\ud83d\ude00")", &ok) == "\xc3\xa9\xf0\x9f\x98\x80" && ok);
  read_string("\"a\tb\"", &ok);
  CHECK(!ok);  // a raw control character
  read_string(R"("\x")", &ok);
  CHECK(!ok);
  read_string(R"("\u12g4")", &ok);
  CHECK(!ok);
  read_string("\"abc", &ok);
  CHECK(!ok);
  // the eight-byte scan finds the first special byte at every offset
  for (size_t len = 0; len < 40; ++len) {
    std::string body(len, 'x');
    CHECK(read_string("\"" + body + "\"  trailing", &ok) == body && ok);
    CHECK(read_string("\"" + body + "\\n" + body + "\"", &ok) == body + "\n" + body && ok);
    read_string("\"" + body + "\x01\"", &ok);
    CHECK(!ok);
    CHECK(read_string("\"" + body + "\xc3\xa9\"", &ok) == body + "\xc3\xa9" && ok);
  }
}

struct Result {
  bool ok = false;
  std::string error;
  TraceReader r;
};

// Fed in pieces of `piece` bytes (0: all at once).
void read_doc(const std::string& doc, size_t piece, Result& out) {
  try {
    if (piece == 0) piece = doc.size() + 1;
    for (size_t k = 0; k < doc.size(); k += piece)
      out.r.feed(doc.data() + k, std::min(piece, doc.size() - k));
    out.r.finish();
    out.ok = true;
  } catch (const ReadError& e) {
    out.error = e.what();
  }
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

std::string doc_of(const std::string& events) { return "{\"traceEvents\": [" + events + "]}"; }

const char* kKernel =
    R"({"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 10.5, "dur": 2,)"
    R"( "args": {"correlation": 5, "device": 0, "stream": 7, "grid": [1, 2, 3]}})";
const char* kLaunch =
    R"({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 2,)"
    R"( "ts": 9, "dur": 1, "args": {"correlation": 5, "cbid": 211}})";

void test_events() {
  Result a;
  read_doc(doc_of(std::string(kLaunch) + "," + kKernel), 0, a);
  CHECK(a.ok && a.r.launches.size() == 1 && a.r.gpu.size() == 1);
  if (a.ok && a.r.gpu.size() == 1) {
    const GpuEvent& g = a.r.gpu[0];
    CHECK(g.ts == 10500 && g.dur == 2000 && g.correlation == 5 && g.stream == 7);
    CHECK(g.grid[0] == 1 && g.grid[1] == 2 && g.grid[2] == 3);
    CHECK(a.r.launches[0].cbid == 211 && a.r.launches[0].correlation == 5);
  }
  // every chunking gives the same rows
  std::string doc = doc_of(std::string(kLaunch) + "," + kKernel + "," + kKernel);
  for (size_t piece = 1; piece < 40; ++piece) {
    Result b;
    read_doc(doc, piece, b);
    CHECK(b.ok && b.r.gpu.size() == 2 && b.r.launches.size() == 1 && b.r.events == 3);
    if (b.ok && b.r.gpu.size() == 2) CHECK(b.r.gpu[1].ts == 10500 && b.r.gpu[1].correlation == 5);
  }
}

void test_metric_numbers_must_fit() {
  Result a;
  read_doc(doc_of(R"({"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, )"
                  R"("ts": 340282366920938463463374607431768212, "dur": 1})"),
           0, a);
  CHECK(!a.ok && contains(a.error, "traceEvents[0]") && contains(a.error, "'ts'") &&
        contains(a.error, "does not fit 64-bit nanoseconds"));
  Result b;
  read_doc(doc_of(std::string(kKernel) + R"(, {"ph": "X", "cat": "kernel", "name": "k", )"
                                         R"("ts": 1, "dur": 1, "args": {"stream": "0x0"}})"),
           0, b);
  CHECK(!b.ok && contains(b.error, "traceEvents[1]") && contains(b.error, "'args.stream'"));
  Result c;
  read_doc(doc_of(R"({"ph": "X", "cat": "cuda_runtime", "name": "x", "ts": 1, "dur": 1, )"
                  R"("args": {"correlation": 1.5}})"),
           0, c);
  CHECK(!c.ok && contains(c.error, "'args.correlation' is not an integer"));
  Result d;  // ts + dur past int64
  read_doc(doc_of(R"({"ph": "X", "cat": "cpu_op", "name": "x", "ts": 9223372036854775, )"
                  R"("dur": 1})"),
           0, d);
  CHECK(!d.ok && contains(d.error, "'ts' + 'dur'"));
  Result e;
  read_doc(doc_of(R"({"ph": "X", "cat": "cpu_op", "name": "x", "ts": 0123, "dur": 1})"), 0, e);
  CHECK(!e.ok && contains(e.error, "leading zero"));
}

void test_unused_fields_are_not_checked() {
  // torch.profiler on ROCm: string-valued args in copy calls
  Result a;
  read_doc(doc_of(R"({"ph": "X", "cat": "cuda_runtime", "name": "hipMemcpyAsync", "pid": 1, )"
                  R"("tid": 2, "ts": 5, "dur": 1, "args": {"correlation": 3, )"
                  R"("stream": "0x0", "bytes": "128", "cbid": "x"}})"),
           0, a);
  CHECK(a.ok && a.r.launches.size() == 1);
  if (a.ok && a.r.launches.size() == 1) CHECK(a.r.launches[0].cbid == -1);
  // ignored events are not checked at all, but must still be JSON
  Result b;
  read_doc(doc_of(R"({"ph": "f", "cat": "ac2g", "ts": 1e999, "id": "x"})"), 0, b);
  CHECK(b.ok && b.r.ignored_events == 1);
  Result c;
  read_doc(doc_of(R"({"ph": "f", "cat": "ac2g", "ts": 01})"), 0, c);
  CHECK(!c.ok);
}

void test_malformed_events_are_counted() {
  // a field that says what the event is, of the wrong type: ignored and counted,
  // by the first such field; other ignored events ("M", "i") are not counted
  Result a;
  read_doc(doc_of(R"({"ph": 5, "cat": "kernel", "name": "k", "ts": 1, "dur": 1},)"
                  R"({"ph": "X", "cat": null, "name": "k", "ts": 1, "dur": 1},)"
                  R"({"ph": "XX", "cat": 1, "ts": 1},)"
                  R"({"ph": "X", "cat": "python_function", "args": [1], "ts": 1, "dur": 1},)"
                  R"({"ph": "M", "name": "process_name", "args": {"name": "x"}},)"
                  R"({"ph": "i", "name": "mark", "ts": 1})"),
           0, a);
  CHECK(a.ok && a.r.ignored_events == 6);
  CHECK(a.r.malformed_ph == 2 && a.r.malformed_cat == 1 && a.r.malformed_args == 1);
  // args of the wrong type on an event the metrics use: refused, naming it
  Result b;
  read_doc(doc_of(R"({"ph": "X", "cat": "kernel", "name": "k", "ts": 1, "dur": 1, "args": []})"), 0,
           b);
  CHECK(!b.ok && contains(b.error, "'args' is not an object"));
}

void test_document_errors() {
  const char* bad[] = {
      "",
      "[",
      "{\"traceEvents\": [}",
      "{\"traceEvents\": []} x",
      "{\"traceEvents\": [1]}",
      "{\"traceEvents\": [{\"a\": NaN}]}",
      "{\"traceEvents\": [{\"a\" 1}]}",
      "{\"traceEvents\": [{\"a\": [1,]}]}",
      "{\"traceEvents\": [],}",
      "{\"a\": 1}",
  };
  for (const char* doc : bad)
    for (size_t piece : {size_t(0), size_t(1), size_t(3)}) {
      Result r;
      read_doc(doc, piece, r);
      if (r.ok) std::fprintf(stderr, "accepted: %s\n", doc);
      CHECK(!r.ok && !r.error.empty() && !contains(r.error, "\n"));
    }
  Result deep;
  read_doc("{\"x\": " + std::string(600, '[') + std::string(600, ']') + ", \"traceEvents\": []}", 0,
           deep);
  CHECK(!deep.ok && contains(deep.error, "nesting"));
}

void test_ops_nest() {
  Result a;
  read_doc(doc_of(R"({"ph": "X", "cat": "cpu_op", "name": "outer", "ts": 0, "dur": 10},)"
                  R"({"ph": "X", "cat": "cpu_op", "name": "inner", "ts": 2, "dur": 3},)"
                  R"({"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", "ts": 0,)"
                  R"( "dur": 20})"),
           0, a);
  CHECK(a.ok && a.r.ops.size() == 2 && a.r.steps.size() == 1);
  if (a.ok && a.r.ops.size() == 2) CHECK(a.r.ops[1].parent == 0 && a.r.ops[1].depth == 1);
}

// A step longer than many chunks (one event holding a 16 MB string, fed in 4 KB
// chunks, as a gzip bomb's inflate could hand it over) must not be re-parsed
// from its start at every chunk: that was quadratic, a hang on a big event.
void test_long_step_is_linear() {
  const std::string doc =
      doc_of(R"({"ph": "X", "cat": "cpu_op", "name": "x", "ts": 1, "dur": 2, "args": {"s": ")" +
             std::string(16 << 20, 'x') + "\"}}");
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  Clock::time_point t0 = Clock::now();
  Result whole;
  read_doc(doc, 0, whole);
  const double one = seconds(t0);
  t0 = Clock::now();
  Result cut;
  read_doc(doc, 4096, cut);
  const double chunked = seconds(t0);
  CHECK(whole.ok && cut.ok && cut.r.ops.size() == 1 && cut.r.ops[0].dur == 2000);
  // linear: a few times the one-buffer read; quadratic was thousands of times
  if (chunked > 50 * one + 0.3)
    std::fprintf(stderr, "chunked %.3f s, one buffer %.3f s\n", chunked, one);
  CHECK(chunked <= 50 * one + 0.3);
}

// A top-level member over the cap is not kept, but never dropped without a
// trace: its key and size are, in any chunking, for the loader to refuse it
// where it reads that member (an export's regions were lost so).
void test_big_top_level_member_is_reported() {
  const size_t cap = TraceReader::kMaxTopLevelText;
  const std::string doc = "{\"big\": \"" + std::string(cap, 'x') +
                          "\", \"small\": [1], \"edge\": \"" + std::string(cap - 2, 'y') +
                          "\", \"traceEvents\": []}";
  for (size_t piece : {size_t(0), size_t(4096), size_t(100000)}) {
    Result r;
    read_doc(doc, piece, r);
    CHECK(r.ok && r.r.top_level.count("small") == 1 && r.r.top_level.count("edge") == 1);
    CHECK(r.r.top_level.count("big") == 0 && r.r.top_level_over_cap.size() == 1);
    if (r.r.top_level_over_cap.count("big")) CHECK(r.r.top_level_over_cap.at("big") == cap + 2);
  }
}

}  // namespace

int main() {
  test_numbers_to_ns();
  test_numbers_as_integers();
  test_number_grammar();
  test_strings();
  test_events();
  test_metric_numbers_must_fit();
  test_unused_fields_are_not_checked();
  test_malformed_events_are_counted();
  test_document_errors();
  test_ops_nest();
  test_long_step_is_linear();
  test_big_top_level_member_is_reported();
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("reader tests passed\n");
  return 0;
}
