#include "kineto/trace_reader.h"

#include <algorithm>
#include <numeric>

namespace skipnative::kineto {

namespace {
constexpr size_t kMaxTopLevelText = 1 << 20;
constexpr size_t kFirstCarryStep = 4096;
}  // namespace

TraceReader::TraceReader() = default;

// Parses the chunk in place. A step cut by the end of the previous chunk is
// completed first from a prefix of this one that doubles until it suffices,
// so only about one event's bytes are ever copied per chunk.
void TraceReader::feed(const char* data, size_t n) {
  size_t off = 0;
  for (size_t take = kFirstCarryStep; !carry_.empty(); take *= 2) {
    if (off == n) {
      fed_ += n;
      return;
    }
    const size_t old = carry_.size(), add = std::min(take, n - off);
    carry_.append(data + off, add);
    off += add;
    const size_t stop = run(carry_.data(), carry_.size(), carry_base_, false);
    if (stop >= old) {  // what is left lies in this chunk: parse it there
      off -= carry_.size() - stop;
      carry_.clear();
    } else {
      carry_.erase(0, stop);
      carry_base_ += stop;
    }
  }
  const size_t stop = run(data + off, n - off, fed_ + off, false);
  carry_.assign(data + off + stop, n - off - stop);
  carry_base_ = fed_ + off + stop;
  fed_ += n;
}

void TraceReader::finish() {
  run(carry_.data(), carry_.size(), carry_base_, true);
  carry_.clear();
  carry_.shrink_to_fit();
  if (!saw_events_) throw ReadError("no traceEvents: not a torch.profiler / chrome trace");
  // the growth slack goes before the caller copies the columns out
  launches.shrink_to_fit();
  gpu.shrink_to_fit();
  ops.shrink_to_fit();
  steps.shrink_to_fit();
  nest_ops();
}

// Runs steps until the input ends; returns where the unfinished step began
// (the whole length once the trace is complete).
size_t TraceReader::run(const char* b, size_t n, uint64_t base, bool final) {
  Cursor c{b, n, 0, final, base};
  size_t mark = 0;
  try {
    for (;;) {
      mark = c.i;
      if (state_ == Top::kDone) {
        c.ws();
        if (c.i < c.n) c.fail("trailing data after the trace");
        return c.n;
      }
      step(c);
    }
  } catch (const NeedMore&) {
    return mark;
  }
}

void TraceReader::step(Cursor& c) {
  char ch = c.peek();
  switch (state_) {
    case Top::kStart:
      if (ch == '{') {
        state_ = Top::kObjectKeyOrEnd;
      } else if (ch == '[') {  // a bare list of events (chrome trace's array form)
        saw_events_ = array_top_ = true;
        state_ = Top::kEventsFirst;
      } else if (starts_value(ch)) {
        throw ReadError(std::string("top level is ") + type_name(ch) +
                        ", not a trace object (not a torch.profiler trace)");
      } else {
        c.fail("unexpected '" + printable(ch) + "': not a JSON trace");
      }
      ++c.i;
      return;
    case Top::kObjectKeyOrEnd:
    case Top::kValue:
      if (ch == '}' && state_ == Top::kObjectKeyOrEnd) {
        ++c.i;
        state_ = Top::kDone;
      } else {
        top_member(c);
      }
      return;
    case Top::kCommaOrEnd:
      state_ = c.next_or_close('}', "between top-level members") ? Top::kValue : Top::kDone;
      return;
    case Top::kEventsFirst:
    case Top::kEventsCommaOrEnd:
      if (ch == ']') {
        ++c.i;
        state_ = array_top_ ? Top::kDone : Top::kCommaOrEnd;
        return;
      }
      if (state_ == Top::kEventsCommaOrEnd) {
        if (ch != ',') c.fail("expected ',' or ']' between events");
        ++c.i;
      }
      parse_event(c);
      state_ = Top::kEventsCommaOrEnd;
      return;
    case Top::kDone:
      return;
  }
}

void TraceReader::top_member(Cursor& c) {
  std::string key(c.string(scratch_));
  c.expect(':');
  char v = c.peek();
  if (key == "traceEvents") {
    if (v != '[')
      throw ReadError(std::string("traceEvents is ") +
                      (starts_value(v) ? type_name(v) : "not JSON") + ", not a list");
    ++c.i;
    saw_events_ = true;
    state_ = Top::kEventsFirst;
    return;
  }
  size_t vstart = c.i;
  c.skip_value();
  if (c.i - vstart <= kMaxTopLevelText) top_level[key] = std::string(c.b + vstart, c.i - vstart);
  state_ = Top::kCommaOrEnd;
}

void TraceReader::nest_ops() {
  // Per (pid, tid): sort by start (longer first at equal starts) and keep a stack
  // of open ops; an op is a child of the innermost open op that contains it.
  std::vector<int64_t> order(ops.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const OpEvent &x = ops[size_t(a)], &y = ops[size_t(b)];
    if (x.pid != y.pid) return x.pid < y.pid;
    if (x.tid != y.tid) return x.tid < y.tid;
    if (x.ts != y.ts) return x.ts < y.ts;
    if (x.dur != y.dur) return x.dur > y.dur;
    return a < b;
  });
  std::vector<int64_t> stack;
  int64_t cur_pid = INT64_MIN, cur_tid = INT64_MIN;
  for (int64_t idx : order) {
    OpEvent& o = ops[size_t(idx)];
    if (o.pid != cur_pid || o.tid != cur_tid) {
      stack.clear();
      cur_pid = o.pid;
      cur_tid = o.tid;
    }
    while (!stack.empty()) {
      const OpEvent& p = ops[size_t(stack.back())];
      if (p.ts <= o.ts && o.ts + o.dur <= p.ts + p.dur) break;
      stack.pop_back();
    }
    o.parent = stack.empty() ? -1 : stack.back();
    o.depth = int32_t(stack.size());
    o.top = stack.empty() ? idx : stack.front();
    stack.push_back(idx);
  }
}

}  // namespace skipnative::kineto
