// A fuzz target for the Kineto reader (csrc/kineto/), fed as the binding feeds
// it: chunks, then finish(); a ReadError is the only acceptable failure, and
// its message is one line of printable ASCII. Each input is read twice, in one
// chunk and in several, and both reads must agree (the same rows, strings and
// counts, or the same error). Rows that are kept must keep the reader's
// promises (dur >= 0, ts + dur fits, devices are indices, ops nest), and a
// proper prefix of a document that reads is refused (no silent truncation).
//
// Input: a document, optionally after a header that picks where it is cut:
// 0xFF, a count c (low 4 bits), then c two-byte little-endian cut points
// (modulo the document's length). Without one (any input not starting with
// 0xFF, which no JSON does), the cuts come from a hash of the input; a small
// document is also read one byte at a time.
//
// With libFuzzer (clang; how to run it: bench/README.md):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Icsrc
//     csrc/core/*.cpp csrc/kineto/*.cpp tests/native/fuzz_reader.cpp -o fuzz_reader
// With -DSKIPNATIVE_FUZZ_REPLAY (any compiler): a main that runs every file of
// the directories (or files) given, as .ci/native.sh does with
// tests/native/fuzz_corpus/reader/: hand-written edge cases (edge_*, cut_*),
// the fuzzer's finds that add coverage (fuzz_*), and cuts of the traces of
// tests/data/kineto (the other names; origin and license in tests/data/README.md).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kineto/json_cursor.h"
#include "kineto/trace_reader.h"

using skipnative::kineto::Column;
using skipnative::kineto::ReadError;
using skipnative::kineto::TraceReader;

namespace {

[[noreturn]] void broken(const char* what, const std::string& detail = std::string()) {
  std::fprintf(stderr, "fuzz_reader: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
  std::abort();
}

struct Outcome {
  bool ok = false;
  std::string error;
  TraceReader r;
};

// Reads doc cut at the sorted positions in cuts (each chunk fed as one buffer).
void read(const char* doc, size_t n, const std::vector<size_t>& cuts, Outcome& out) {
  try {
    size_t at = 0;
    for (size_t cut : cuts) {
      // each chunk in a buffer of its own: a read past it is a sanitizer report
      std::vector<char> chunk(doc + at, doc + cut);
      out.r.feed(chunk.data(), chunk.size());
      at = cut;
    }
    std::vector<char> last(doc + at, doc + n);
    out.r.feed(last.data(), last.size());
    out.r.finish();
    out.ok = true;
  } catch (const ReadError& e) {
    out.error = e.what();
    if (out.error.empty()) broken("an empty error message");
    for (char ch : out.error)
      if (uint8_t(ch) < 0x20 || uint8_t(ch) >= 0x7f)
        broken("an error message not one line of ASCII", out.error);
  }
}

template <class T>
bool same_rows(const Column<T>& a, const Column<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

void compare(const Outcome& a, const Outcome& b, const char* how) {
  if (a.ok != b.ok || a.error != b.error)
    broken(how, "one chunk: " + (a.ok ? std::string("ok") : a.error) +
                    " / cut: " + (b.ok ? std::string("ok") : b.error));
  if (!a.ok) return;
  if (!same_rows(a.r.launches, b.r.launches) || !same_rows(a.r.gpu, b.r.gpu) ||
      !same_rows(a.r.ops, b.r.ops) || !same_rows(a.r.steps, b.r.steps) ||
      !same_rows(a.r.waits, b.r.waits))
    broken(how, "different rows");
  if (a.r.names.snapshot() != b.r.names.snapshot()) broken(how, "different strings");
  if (a.r.top_level != b.r.top_level || a.r.top_level_over_cap != b.r.top_level_over_cap)
    broken(how, "different top-level members");
  if (a.r.events != b.r.events || a.r.ignored_events != b.r.ignored_events ||
      a.r.malformed_ph != b.r.malformed_ph || a.r.malformed_cat != b.r.malformed_cat ||
      a.r.malformed_args != b.r.malformed_args)
    broken(how, "different event counts");
}

void check_rows(const TraceReader& r) {
  const size_t names = r.names.snapshot().size();
  auto timed = [&](int64_t ts, int64_t dur, int32_t name_id) {
    if (dur < 0 || ts > INT64_MAX - dur) broken("a row with a bad ts/dur");
    if (name_id < 0 || size_t(name_id) >= names) broken("a row with a bad name id");
  };
  for (const auto& l : r.launches) timed(l.ts, l.dur, l.name_id);
  for (const auto& s : r.steps) timed(s.ts, s.dur, s.name_id);
  for (const auto& g : r.gpu) {
    timed(g.ts, g.dur, g.name_id);
    if (g.device < 0 || g.device > INT32_MAX || g.kind < 0 || g.kind > 2) broken("a bad GPU row");
  }
  for (const auto& w : r.waits) {
    if (w.dur < 0 || w.ts > INT64_MAX - w.dur) broken("a wait with a bad ts/dur");
    if (w.device < 0 || w.device > INT32_MAX) broken("a wait with a bad device");
  }
  const int64_t n_ops = int64_t(r.ops.size());
  for (int64_t k = 0; k < n_ops; ++k) {
    const auto& o = r.ops[size_t(k)];
    timed(o.ts, o.dur, o.name_id);
    if (o.parent < -1 || o.parent >= n_ops || o.top < 0 || o.top >= n_ops || o.depth < 0 ||
        (o.parent == -1) != (o.depth == 0) || (o.parent == -1 && o.top != k))
      broken("an op nested badly");
    if (o.parent >= 0) {
      const auto& p = r.ops[size_t(o.parent)];
      if (p.pid != o.pid || p.tid != o.tid || p.depth != o.depth - 1 || p.top != o.top ||
          p.ts > o.ts || o.ts + o.dur > p.ts + p.dur)
        broken("an op outside its parent");
    }
  }
}

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* doc = reinterpret_cast<const char*>(data);
  size_t n = size;
  std::vector<size_t> cuts;
  if (size >= 2 && data[0] == 0xFF) {
    const size_t count = data[1] & 15;
    const size_t head = std::min(size, 2 + 2 * count);
    doc += head;
    n -= head;
    for (size_t k = 2; k + 1 < head; k += 2)
      cuts.push_back(n ? (size_t(data[k]) | size_t(data[k + 1]) << 8) % (n + 1) : 0);
  } else {
    uint64_t h = 0;
    for (size_t k = 0; k < size; ++k) h = (h ^ data[k]) * 0x100000001B3ULL;
    for (int k = int(mix(h) % 5); k > 0; --k) cuts.push_back(size_t((h = mix(h)) % (n + 1)));
  }
  std::sort(cuts.begin(), cuts.end());

  Outcome whole;
  read(doc, n, {}, whole);
  if (whole.ok) check_rows(whole.r);
  Outcome cut;
  read(doc, n, cuts, cut);
  compare(whole, cut, "cut at chosen points reads differently");
  if (whole.ok) {  // a trace cut short is refused, never read as a shorter one
    size_t end = n;
    while (end > 0 && (doc[end - 1] == ' ' || doc[end - 1] == '\t' || doc[end - 1] == '\r' ||
                       doc[end - 1] == '\n'))
      --end;
    Outcome prefix;
    read(doc, end - 1 - size_t(mix(n) % end), {}, prefix);
    if (prefix.ok) broken("a cut trace read without an error");
  }
  if (n <= 2048) {
    std::vector<size_t> bytes;
    for (size_t k = 1; k < n; ++k) bytes.push_back(k);
    Outcome each;
    read(doc, n, bytes, each);
    compare(whole, each, "one byte at a time reads differently");
  }
  return 0;
}

#ifdef SKIPNATIVE_FUZZ_REPLAY
#include <filesystem>
#include <fstream>
#include <iterator>

// Runs every file of the directories (or files) given; any finding aborts.
int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int a = 1; a < argc; ++a) {
    if (fs::is_directory(argv[a])) {
      for (const auto& e : fs::directory_iterator(argv[a]))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.push_back(argv[a]);
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "fuzz_reader: no inputs\n");
    return 1;
  }
  for (const auto& p : files) {
    std::ifstream f(p, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!f.good() && !f.eof()) {
      std::fprintf(stderr, "fuzz_reader: cannot read %s\n", p.c_str());
      return 1;
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("fuzz corpus replayed: %zu inputs\n", files.size());
  return 0;
}
#endif
