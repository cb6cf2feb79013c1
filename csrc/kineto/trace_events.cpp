// One element of traceEvents -> at most one row of the reader's columns.
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "kineto/trace_reader.h"

namespace skipnative::kineto {

namespace {

enum Cat : int {
  kCatOther,
  kCatKernel,
  kCatMemcpy,
  kCatMemset,
  kCatRuntime,
  kCatDriver,
  kCatCpuOp,
  kCatAnnotation,
  kCatSync,
};

// Current Kineto category names, and the capitalised ones of torch 1.8-1.10 traces.
Cat category(std::string_view c) {
  switch (c.size()) {
    case 6:
      if (c == "kernel" || c == "Kernel") return kCatKernel;
      if (c == "cpu_op") return kCatCpuOp;
      if (c == "Memcpy") return kCatMemcpy;
      if (c == "Memset") return kCatMemset;
      break;
    case 7:
      if (c == "Runtime") return kCatRuntime;
      break;
    case 8:
      if (c == "Operator") return kCatCpuOp;
      break;
    case 9:
      if (c == "cuda_sync") return kCatSync;
      break;
    case 10:
      if (c == "gpu_memcpy") return kCatMemcpy;
      if (c == "gpu_memset") return kCatMemset;
      break;
    case 11:
      if (c == "cuda_driver") return kCatDriver;
      break;
    case 12:
      if (c == "cuda_runtime") return kCatRuntime;
      break;
    case 15:
      if (c == "user_annotation") return kCatAnnotation;
      break;
  }
  return kCatOther;
}

// A numeric field as read, checked only once the event's category says
// whether a metric uses it.
struct IntField {
  enum State : uint8_t { kAbsent, kOk, kNotNumber, kTooBig, kNotIntegral };
  int64_t v = 0;
  State state = kAbsent;
};

// Reads a number scaled by 10^shift (3: microseconds to nanoseconds, rounded;
// 0: an integer, exact); any other value is skipped and marked.
void read_int(Cursor& c, IntField& f, int shift) {
  char v = c.peek();
  if (v != '-' && !is_digit(v)) {
    c.skip_value();
    f.state = IntField::kNotNumber;
    return;
  }
  Fit fit = scaled_int64(c.number(), shift, shift == 0, &f.v);
  f.state = fit == Fit::kOk       ? IntField::kOk
            : fit == Fit::kTooBig ? IntField::kTooBig
                                  : IntField::kNotIntegral;
}

// grid/block: up to three integers; no metric uses them, so nothing is checked.
void read_dims(Cursor& c, int32_t* dims) {
  if (c.peek() != '[') return c.skip_value();
  ++c.i;
  if (c.peek() == ']') {
    ++c.i;
    return;
  }
  int j = 0;
  do {
    IntField x;
    read_int(c, x, 0);
    if (j < 3)
      dims[j++] =
          x.state == IntField::kOk && x.v >= INT32_MIN && x.v <= INT32_MAX ? int32_t(x.v) : 0;
  } while (c.next_or_close(']', "in list"));
}

}  // namespace

namespace {
// The cuda_sync events that name the cudaEventRecord call they wait on.
bool names_a_record(std::string_view name) {
  return name == std::string_view("Stream Wait Event") || name == std::string_view("Event Sync");
}
}  // namespace

// The fields of the wrong type that keep an event from being read (EventFields::bad).
enum Malformed : uint8_t { kBadPh = 1, kBadCat = 2, kBadArgs = 4 };

struct EventFields {
  char ph = 0;
  uint8_t bad = 0;  // Malformed bits
  std::string_view cat, name;
  std::string cat_s, name_s;  // owners where a view would point into the scratch
  bool name_is_string = true;
  IntField ts, dur, pid, tid;
  IntField correlation, external_id, device, stream, bytes, cbid;
  IntField wait_on_stream, wait_on_record;  // cuda_sync "Stream Wait Event", "Event Sync"
  int32_t grid[3] = {0, 0, 0}, block[3] = {0, 0, 0};
};

namespace {

// A string value kept past the next read: a view into the input, or a copy.
std::string_view keep(std::string_view s, const std::string& scratch, std::string& owner) {
  if (s.data() != scratch.data()) return s;
  owner.assign(s);
  return owner;
}

// Messages must be valid text whatever the file holds: other bytes become '?'.
std::string ascii(std::string_view v) {
  std::string out(v);
  for (char& ch : out)
    if (uint8_t(ch) < 0x20 || uint8_t(ch) >= 0x7f) ch = '?';
  return out;
}

// The first problem with a field a metric uses, or an empty string.
std::string problem(const char* field, const IntField& f, bool required, bool time) {
  switch (f.state) {
    case IntField::kAbsent:
      return required ? std::string("missing '") + field + "'" : std::string();
    case IntField::kOk:
      return std::string();
    case IntField::kNotNumber:
      return std::string("'") + field + "' is not a number";
    case IntField::kTooBig:
      return std::string("'") + field + "' is out of range (does not fit 64-bit " +
             (time ? "nanoseconds)" : "integers)");
    case IntField::kNotIntegral:
      return std::string("'") + field + "' is not an integer";
  }
  return std::string();
}

struct Use {
  const char* field;
  const IntField* value;
  bool required;
};

// The numbers the metrics take from an event of this category (SPEC.md §3's
// input rules); the rest are kept where they parse and otherwise ignored.
void check_event(const EventFields& f, Cat cat, uint64_t index) {
  const bool launch = cat == kCatRuntime || cat == kCatDriver;
  const bool gpu = cat == kCatKernel || cat == kCatMemcpy || cat == kCatMemset;
  // a Stream Wait Event, Stream Sync or Event Sync: the what-if replay's edges
  const bool wait = cat == kCatSync;
  const bool on_event = wait && names_a_record(f.name);
  // an Event Sync's stream is CUPTI's invalid id, which the replay does not use
  const bool stream = gpu || (wait && f.name != std::string_view("Event Sync"));
  const Use uses[] = {
      {"ts", &f.ts, true},
      {"dur", &f.dur, true},
      {"pid", &f.pid, false},
      {"tid", &f.tid, false},
      {"args.correlation", launch || gpu || wait ? &f.correlation : nullptr, false},
      {"args.device", gpu || wait ? &f.device : nullptr, false},
      {"args.stream", stream ? &f.stream : nullptr, false},
      {"args.wait_on_stream", on_event ? &f.wait_on_stream : nullptr, false},
      {"args.wait_on_cuda_event_record_corr_id", on_event ? &f.wait_on_record : nullptr, false},
  };
  auto fail = [&](const std::string& what) {
    throw ReadError("traceEvents[" + std::to_string(index) + "]: (" + ascii(f.cat) + " '" +
                    ascii(f.name.substr(0, 60)) + "') " + what);
  };
  if (f.bad & kBadPh) fail("'ph' is not a one-letter string");
  if (f.bad & kBadCat) fail("'cat' is not a string");
  if (f.bad & kBadArgs) fail("'args' is not an object");
  if (!f.name_is_string) fail("'name' is not a string");
  for (const Use& u : uses) {
    if (!u.value) continue;
    std::string p = problem(u.field, *u.value, u.required, u.value == &f.ts || u.value == &f.dur);
    if (!p.empty()) fail(p);
  }
  if (f.dur.v < 0) fail("negative 'dur'");
  if (f.ts.v > INT64_MAX - f.dur.v) fail("'ts' + 'dur' does not fit 64-bit nanoseconds");
  if (gpu || wait) {
    // a GPU row's device, args.device or else the pid (older traces), is kept in
    // 32 bits: anything else would be read as another device
    const bool given = f.device.state == IntField::kOk;
    const int64_t d = given ? f.device.v : f.pid.state == IntField::kOk ? f.pid.v : 0;
    if (d < 0 || d > INT32_MAX)
      fail(std::string(given ? "'args.device' " : "'pid' ") + std::to_string(d) +
           " is not a device index");
  }
}

int64_t value_or(const IntField& f, int64_t fallback) {
  return f.state == IntField::kOk ? f.v : fallback;
}

}  // namespace

void TraceReader::parse_event(Cursor& c) {
  const uint64_t index = events;
  char first = c.peek();
  if (first != '{') {
    if (!starts_value(first)) c.fail("unexpected '" + printable(first) + "'");
    throw ReadError("traceEvents[" + std::to_string(index) + "]: is " + type_name(first) +
                    ", not an object");
  }
  ++c.i;
  EventFields f;
  if (c.peek() == '}')
    ++c.i;
  else
    do read_member(c, f);
    while (c.next_or_close('}', "in event"));
  ++events;
  store_event(f, index);
}

void TraceReader::read_member(Cursor& c, EventFields& f) {
  // the key is compared before the value is read, so a view into the scratch is safe
  std::string_view key = c.string(scratch_);
  c.expect(':');
  char v = c.peek();
  if (key == "ts") {
    read_int(c, f.ts, 3);
  } else if (key == "dur") {
    read_int(c, f.dur, 3);
  } else if (key == "pid" || key == "tid") {
    read_thread_id(c, f, key == "pid");
  } else if (key == "args" && v == '{') {
    read_args(c, f);
  } else if (key == "ph" && v == '"') {
    std::string_view s = c.string(scratch_);
    f.ph = s.size() == 1 ? s[0] : 0;
    if (s.size() != 1) f.bad |= kBadPh;
  } else if (key == "cat" && v == '"') {
    f.cat = keep(c.string(scratch_), scratch_, f.cat_s);
  } else if (key == "args" || key == "ph" || key == "cat") {  // of the wrong type
    f.bad |= key == "args" ? kBadArgs : key == "ph" ? kBadPh : kBadCat;
    c.skip_value();
  } else if (key == "name") {
    f.name_is_string = v == '"';
    if (v == '"')
      f.name = keep(c.string(scratch_), scratch_, f.name_s);
    else
      c.skip_value();
  } else {
    c.skip_value();
  }
}

void TraceReader::read_args(Cursor& c, EventFields& f) {
  ++c.i;  // '{'
  if (c.peek() == '}') {
    ++c.i;
    return;
  }
  do {
    std::string_view key = c.string(scratch_);
    c.expect(':');
    IntField* dst = nullptr;
    if (key == "correlation")
      dst = &f.correlation;
    else if (key == "External id")
      dst = &f.external_id;
    else if (key == "device")
      dst = &f.device;
    else if (key == "stream")
      dst = &f.stream;
    else if (key == "bytes")
      dst = &f.bytes;
    else if (key == "cbid")
      dst = &f.cbid;
    else if (key == "wait_on_stream")
      dst = &f.wait_on_stream;
    else if (key == "wait_on_cuda_event_record_corr_id")
      dst = &f.wait_on_record;
    if (dst)
      read_int(c, *dst, 0);
    else if (key == "grid" || key == "block")
      read_dims(c, key == "grid" ? f.grid : f.block);
    else
      c.skip_value();
  } while (c.next_or_close('}', "in args"));
}

// Kineto writes numbers; other writers use strings ("stream 7"): keep the
// trailing integer, else a stable negative id.
void TraceReader::read_thread_id(Cursor& c, EventFields& f, bool is_pid) {
  IntField& dst = is_pid ? f.pid : f.tid;
  if (c.peek() != '"') return read_int(c, dst, 0);
  std::string_view s = c.string(scratch_);
  size_t k = s.size();
  while (k > 0 && is_digit(s[k - 1])) --k;
  if (k < s.size() && s.size() - k < 18)
    dst.v = std::strtoll(std::string(s.substr(k)).c_str(), nullptr, 10);
  else
    dst.v = -1 - int64_t(names.intern(s));
  dst.state = IntField::kOk;
}

void TraceReader::store_event(const EventFields& f, uint64_t index) {
  Cat cat = f.ph == 'X' ? category(f.cat) : kCatOther;
  // an event of a kind the metrics use whose args (or a duplicate ph, cat) are
  // of the wrong type: refused, as a number of the wrong type is
  if (cat != kCatOther && f.bad) check_event(f, cat, index);
  // Of the cuda_sync events, the waits on one stream's work are kept: a stream's
  // wait for another's event record, and a thread's for its stream
  // (cudaStreamSynchronize) or for an event record (cudaEventSynchronize).
  // Context synchronisation waits for all the GPU's work, as any sync call is
  // taken to.
  const bool on_event = names_a_record(f.name);
  if (cat == kCatSync && !on_event && f.name != std::string_view("Stream Sync")) cat = kCatOther;
  // a wait that does not say on which record and stream is of no use (and an
  // older trace may write it so): ignored; a field written wrongly is refused
  if (cat == kCatSync) {
    const bool thread = f.name == std::string_view("Event Sync");  // its stream: unused
    for (const IntField* x : {&f.correlation, &f.device, &f.stream})
      if (x->state == IntField::kAbsent && !(thread && x == &f.stream)) cat = kCatOther;
    for (const IntField* x : {&f.wait_on_stream, &f.wait_on_record})
      if (on_event && x->state == IntField::kAbsent) cat = kCatOther;
  }
  // ProfilerStep#N (a cpu_op in older traces) and every record_function /
  // user_annotation range go to the steps table; the conversion tells them apart.
  const bool step = cat == kCatAnnotation ||
                    (cat == kCatCpuOp && f.name.substr(0, 13) == std::string_view("ProfilerStep#"));
  if (cat == kCatOther) {
    ++ignored_events;
    if (f.bad & kBadPh)
      ++malformed_ph;
    else if (f.bad & kBadCat)
      ++malformed_cat;
    else if (f.bad & kBadArgs)
      ++malformed_args;
    return;
  }
  check_event(f, cat, index);
  const int64_t ts = f.ts.v, dur = f.dur.v, pid = value_or(f.pid, 0), tid = value_or(f.tid, 0);
  const int32_t name_id = int32_t(names.intern(f.name));
  if (cat == kCatSync && on_event) {
    // an Event Sync's stream is CUPTI's invalid id: the calling thread waits
    const bool thread = f.name == std::string_view("Event Sync");
    waits.push_back(WaitEvent{ts, dur, f.correlation.v, f.wait_on_record.v, f.device.v,
                              thread ? kHostWaits : f.stream.v, f.wait_on_stream.v});
  } else if (cat == kCatSync) {  // the calling thread waits for its stream's work so far
    waits.push_back(
        WaitEvent{ts, dur, f.correlation.v, f.correlation.v, f.device.v, kHostWaits, f.stream.v});
  } else if (step) {
    steps.push_back(StepEvent{ts, dur, pid, tid, name_id, 0});
  } else if (cat == kCatCpuOp) {
    ops.push_back(OpEvent{ts, dur, pid, tid, value_or(f.external_id, -1), -1, -1, name_id, 0});
  } else if (cat == kCatRuntime || cat == kCatDriver) {
    int64_t cbid = value_or(f.cbid, -1);
    launches.push_back(LaunchEvent{ts, dur, value_or(f.correlation, -1), pid, tid, name_id,
                                   cbid >= INT32_MIN && cbid <= INT32_MAX ? int32_t(cbid) : -1});
  } else {
    GpuEvent g{};
    g.ts = ts;
    g.dur = dur;
    g.correlation = value_or(f.correlation, -1);
    g.device = f.device.state == IntField::kOk ? f.device.v : pid;  // checked: 0 to INT32_MAX
    g.stream = value_or(f.stream, -1) >= 0 ? f.stream.v : tid;
    g.bytes = value_or(f.bytes, 0);
    g.name_id = name_id;
    g.kind = cat == kCatKernel ? 0 : (cat == kCatMemcpy ? 1 : 2);
    std::memcpy(g.grid, f.grid, sizeof g.grid);
    std::memcpy(g.block, f.block, sizeof g.block);
    gpu.push_back(g);
  }
}

}  // namespace skipnative::kineto
