#include "kineto/trace_reader.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <utility>

namespace skipnative::kineto {

namespace {
constexpr size_t kFirstCarryStep = 4096;
}  // namespace

TraceReader::TraceReader() = default;

// Parses the chunk in place. A step cut by the end of the previous chunk is
// completed first from a prefix of this one that doubles until it suffices,
// so only about one event's bytes are ever copied per chunk; a step that spans
// chunks is retried only once its carry has doubled (linear, not quadratic).
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
    if (carry_.size() < 2 * carry_tried_) continue;  // not yet worth a retry
    const size_t stop = run(carry_.data(), carry_.size(), carry_base_, false);
    if (stop >= old) {  // what is left lies in this chunk: parse it there
      off -= carry_.size() - stop;
      carry_.clear();
    } else {
      carry_.erase(0, stop);
      carry_base_ += stop;
      carry_tried_ = carry_.size();
    }
  }
  const size_t stop = run(data + off, n - off, fed_ + off, false);
  carry_.assign(data + off + stop, n - off - stop);
  carry_base_ = fed_ + off + stop;
  carry_tried_ = carry_.size();
  fed_ += n;
}

void TraceReader::finish() {
  run(carry_.data(), carry_.size(), carry_base_, true);
  carry_.clear();
  carry_.shrink_to_fit();
  if (!saw_events_) throw ReadError("no traceEvents: not a torch.profiler / chrome trace");
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
        // a whole value indeed ('nul', 'not json', 'nullx' are none): else invalid JSON
        c.skip_value();
        c.ws();
        if (c.i < c.n) c.fail("trailing data after the top-level value");
        if (!c.final) throw NeedMore{};  // more may follow: judged when it has
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
  // a value over the cap is not kept, but its key and size are: a reader of
  // that member must refuse the document rather than take it as absent
  if (c.i - vstart <= kMaxTopLevelText)
    top_level[key] = std::string(c.b + vstart, c.i - vstart);
  else
    top_level_over_cap[key] = c.i - vstart;
  state_ = Top::kCommaOrEnd;
}

void TraceReader::nest_ops() {
  // Per (pid, tid): sort by start (longer first at equal starts) and keep a stack
  // of open ops; an op is a child of the innermost open op that contains it.
  // The sort keys are gathered first: comparing them in place is cache-friendly,
  // and a trace written in order (the usual case) is only checked, not sorted.
  struct Key {
    int64_t pid, tid, ts, neg_dur, row;
    bool operator<(const Key& o) const {
      if (pid != o.pid) return pid < o.pid;
      if (tid != o.tid) return tid < o.tid;
      if (ts != o.ts) return ts < o.ts;
      if (neg_dur != o.neg_dur) return neg_dur < o.neg_dur;
      return row < o.row;
    }
  };
  // Rows are first grouped by thread, keeping their order (a counting sort):
  // each thread's ops are usually written in start order already.
  std::map<std::pair<int64_t, int64_t>, size_t> threads;  // -> rows, then first slot
  for (const OpEvent& o : ops) ++threads[{o.pid, o.tid}];
  size_t at = 0;
  for (auto& t : threads) t.second = std::exchange(at, at + t.second);
  std::vector<Key> keys(ops.size());
  auto slot = threads.end();
  for (size_t k = 0; k < ops.size(); ++k) {
    const OpEvent& o = ops[k];
    if (slot == threads.end() || slot->first != std::make_pair(o.pid, o.tid))
      slot = threads.find({o.pid, o.tid});
    keys[slot->second++] = Key{o.pid, o.tid, o.ts, -o.dur, int64_t(k)};  // dur >= 0
  }
  if (!std::is_sorted(keys.begin(), keys.end())) std::sort(keys.begin(), keys.end());
  std::vector<int64_t> stack;
  int64_t cur_pid = INT64_MIN, cur_tid = INT64_MIN;
  for (const Key& key : keys) {
    const int64_t idx = key.row;
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
