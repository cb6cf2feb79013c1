#include "kineto/trace_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>

namespace skipnative::kineto {

namespace {

constexpr int kMaxDepth = 512;
constexpr size_t kMaxTopLevelText = 1 << 20;

struct NeedMore {};

enum Cat : int {
  kCatOther,
  kCatKernel,
  kCatMemcpy,
  kCatMemset,
  kCatRuntime,
  kCatDriver,
  kCatCpuOp,
  kCatAnnotation,
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

const char* type_name(char c) {
  switch (c) {
    case '{':
      return "an object";
    case '[':
      return "a list";
    case '"':
      return "a string";
    case 't':
    case 'f':
      return "a boolean";
    case 'n':
      return "null";
    default:
      return (c == '-' || (c >= '0' && c <= '9')) ? "a number" : nullptr;
  }
}

bool starts_value(char c) { return type_name(c) != nullptr; }

// A number token, kept exact: integer digits, up to 9 fraction digits, exponent.
struct Number {
  bool neg = false;
  bool has_frac_or_exp = false;
  unsigned __int128 mant = 0;  // integer part
  uint32_t frac = 0;           // first 9 fraction digits
  int frac_digits = 0;
  bool frac_rest_nonzero = false;
  long exp = 0;
  bool overflow = false;
  std::string_view text;
};

struct Cursor {
  const char* b;
  size_t n;
  size_t i;
  bool final;
  uint64_t base;  // byte offset of b[0] in the file

  [[noreturn]] void fail(const std::string& what) const {
    throw ReadError("invalid JSON at byte " + std::to_string(base + i) + ": " + what);
  }
  void ws() {
    while (i < n) {
      char c = b[i];
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
        ++i;
      else
        break;
    }
  }
  char peek() {
    ws();
    if (i >= n) {
      if (final) fail("unexpected end of file (truncated trace?)");
      throw NeedMore{};
    }
    return b[i];
  }
  void expect(char c) {
    char got = peek();
    if (got != c) fail(std::string("expected '") + c + "', found '" + printable(got) + "'");
    ++i;
  }
  static std::string printable(char c) {
    if (c >= 32 && c < 127) return std::string(1, c);
    char tmp[8];
    std::snprintf(tmp, sizeof tmp, "\\x%02x", unsigned(uint8_t(c)));
    return tmp;
  }
  char need(size_t k) {  // b[k] with end-of-data handling
    if (k >= n) {
      if (final) {
        i = k;
        fail("unexpected end of file (truncated trace?)");
      }
      throw NeedMore{};
    }
    return b[k];
  }

  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  uint32_t hex4(size_t k) {
    uint32_t v = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = need(k + j);
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= uint32_t(c - 'A' + 10);
      else {
        i = k + j;
        fail("bad \\u escape");
      }
    }
    return v;
  }

  // A string; the view points into the buffer, or into `scratch` if it had escapes.
  std::string_view string(std::string& scratch) {
    if (peek() != '"')
      fail(std::string("expected a string, found ") +
           (starts_value(b[i]) ? type_name(b[i]) : "'" + printable(b[i]) + "'"));
    size_t start = ++i;
    // fast path: no escapes
    const char* q = static_cast<const char*>(std::memchr(b + i, '"', n - i));
    if (q != nullptr) {
      const char* bs = static_cast<const char*>(std::memchr(b + i, '\\', size_t(q - (b + i))));
      if (bs == nullptr) {
        for (const char* p = b + i; p < q; ++p)
          if (uint8_t(*p) < 0x20) {
            i = size_t(p - b);
            fail("control character in string");
          }
        i = size_t(q - b) + 1;
        return std::string_view(b + start, size_t(q - (b + start)));
      }
    }
    scratch.clear();
    size_t k = start;
    for (;;) {
      char c = need(k);
      if (c == '"') break;
      if (uint8_t(c) < 0x20) {
        i = k;
        fail("control character in string");
      }
      if (c != '\\') {
        scratch += c;
        ++k;
        continue;
      }
      char e = need(k + 1);
      k += 2;
      switch (e) {
        case '"':
          scratch += '"';
          break;
        case '\\':
          scratch += '\\';
          break;
        case '/':
          scratch += '/';
          break;
        case 'b':
          scratch += '\b';
          break;
        case 'f':
          scratch += '\f';
          break;
        case 'n':
          scratch += '\n';
          break;
        case 'r':
          scratch += '\r';
          break;
        case 't':
          scratch += '\t';
          break;
        case 'u': {
          uint32_t cp = hex4(k);
          k += 4;
          if (cp >= 0xD800 && cp < 0xDC00 && need(k) == '\\' && need(k + 1) == 'u') {
            uint32_t lo = hex4(k + 2);
            if (lo >= 0xDC00 && lo < 0xE000) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              k += 6;
            }
          }
          put_utf8(scratch, cp);
          break;
        }
        default:
          i = k - 1;
          fail("bad escape in string");
      }
    }
    i = k + 1;
    return scratch;
  }

  Number number() {
    Number num;
    char c = peek();
    size_t start = i, k = i;
    if (c == '-') {
      num.neg = true;
      ++k;
    }
    char d = need(k);
    if (d < '0' || d > '9') {
      i = k;
      fail("bad number");
    }
    int digits = 0;
    while (k < n && b[k] >= '0' && b[k] <= '9') {
      if (++digits > 38)
        num.overflow = true;
      else
        num.mant = num.mant * 10 + unsigned(b[k] - '0');
      ++k;
    }
    if (k < n && b[k] == '.') {
      num.has_frac_or_exp = true;
      ++k;
      if (k >= n || b[k] < '0' || b[k] > '9') {
        if (k >= n && !final) throw NeedMore{};
        i = k;
        fail("bad number");
      }
      while (k < n && b[k] >= '0' && b[k] <= '9') {
        if (num.frac_digits < 9) {
          num.frac = num.frac * 10 + uint32_t(b[k] - '0');
          ++num.frac_digits;
        } else if (b[k] != '0') {
          num.frac_rest_nonzero = true;
        }
        ++k;
      }
    }
    if (k < n && (b[k] == 'e' || b[k] == 'E')) {
      num.has_frac_or_exp = true;
      ++k;
      bool eneg = false;
      if (k < n && (b[k] == '+' || b[k] == '-')) eneg = b[k++] == '-';
      if (k >= n || b[k] < '0' || b[k] > '9') {
        if (k >= n && !final) throw NeedMore{};
        i = k;
        fail("bad number");
      }
      long e = 0;
      while (k < n && b[k] >= '0' && b[k] <= '9') {
        if (e < 100000) e = e * 10 + (b[k] - '0');
        ++k;
      }
      num.exp = eneg ? -e : e;
    }
    if (k >= n && !final) throw NeedMore{};  // the number may continue in the next chunk
    i = k;
    num.text = std::string_view(b + start, k - start);
    return num;
  }

  void literal(const char* word) {
    size_t len = std::strlen(word);
    for (size_t j = 0; j < len; ++j)
      if (need(i + j) != word[j]) fail("invalid literal");
    i += len;
  }

  // Skips one value of any type; iterative, with a depth limit.
  void skip_value() {
    std::string scratch;
    int depth = 0;
    std::vector<char> stack;
    for (;;) {
      char c = peek();
      if (c == '{' || c == '[') {
        if (++depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
        stack.push_back(c);
        ++i;
        char nx = peek();
        if ((c == '{' && nx == '}') || (c == '[' && nx == ']')) {
          ++i;
          stack.pop_back();
          --depth;
        } else {
          if (c == '{') {
            string(scratch);
            expect(':');
          }
          continue;
        }
      } else if (c == '"') {
        string(scratch);
      } else if (c == 't') {
        literal("true");
      } else if (c == 'f') {
        literal("false");
      } else if (c == 'n') {
        literal("null");
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        number();
      } else {
        fail(std::string("unexpected '") + printable(c) + "'");
      }
      // after a complete value: close containers or move to the next element
      for (;;) {
        if (stack.empty()) return;
        char nx = peek();
        if (nx == ',') {
          ++i;
          if (stack.back() == '{') {
            string(scratch);
            expect(':');
          }
          break;
        }
        char close = stack.back() == '{' ? '}' : ']';
        if (nx != close) fail(std::string("expected ',' or '") + close + "'");
        ++i;
        stack.pop_back();
        --depth;
      }
    }
  }
};

// Exact decimal microseconds -> integer nanoseconds.
bool to_ns(const Number& num, int64_t* out) {
  if (num.overflow) return false;
  if (num.exp == 0) {
    // ns = mant * 1000 + first three fraction digits, rounded half up on the rest
    uint32_t f = num.frac;
    int fd = num.frac_digits;
    uint64_t ns_frac = 0;
    bool round_up = false;
    if (fd <= 3) {
      ns_frac = f;
      for (int j = fd; j < 3; ++j) ns_frac *= 10;
    } else {
      uint32_t div = 1;
      for (int j = 3; j < fd; ++j) div *= 10;
      ns_frac = f / div;
      uint32_t rest = f % div;
      round_up = rest * 2 >= div;  // half up
    }
    unsigned __int128 v = num.mant * 1000 + ns_frac + (round_up ? 1 : 0);
    if (v > (unsigned __int128)INT64_MAX) return false;
    *out = num.neg ? -int64_t(v) : int64_t(v);
    return true;
  }
  std::string t(num.text);
  long double v = std::strtold(t.c_str(), nullptr) * 1000.0L;
  if (!std::isfinite(double(v)) || fabsl(v) > 9.2e18L) return false;
  *out = int64_t(llroundl(v));
  return true;
}

bool to_int(const Number& num, int64_t* out) {
  if (num.overflow) return false;
  if (num.has_frac_or_exp) {
    std::string t(num.text);
    long double v = std::strtold(t.c_str(), nullptr);
    if (!std::isfinite(double(v)) || fabsl(v) > 9.2e18L || v != floorl(v)) return false;
    *out = int64_t(v);
    return true;
  }
  if (num.mant > (unsigned __int128)INT64_MAX) return false;
  *out = num.neg ? -int64_t(num.mant) : int64_t(num.mant);
  return true;
}

struct EventFields {
  char ph = 0;
  std::string_view cat, name;
  std::string cat_s, name_s;
  bool has_ts = false, has_dur = false;
  int64_t ts = 0, dur = 0, pid = 0, tid = 0;
  int64_t correlation = -1, external_id = -1, device = -1, stream = -1, bytes = 0, cbid = -1;
  int32_t grid[3] = {0, 0, 0}, block[3] = {0, 0, 0};
  const char* bad = nullptr;  // first malformed field we need, if any
};

}  // namespace

TraceReader::TraceReader() = default;

void TraceReader::feed(const char* data, size_t n) {
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    bytes_read += pos_;
    pos_ = 0;
  }
  buf_.append(data, n);
  run(false);
}

void TraceReader::finish() {
  run(true);
  if (state_ != Top::kDone) {
    Cursor c{buf_.data(), buf_.size(), pos_, true, bytes_read};
    c.fail("unexpected end of file (truncated trace?)");
  }
  if (!saw_events_) throw ReadError("no traceEvents: not a torch.profiler / chrome trace");
  nest_ops();
}

void TraceReader::run(bool final) {
  Cursor c{buf_.data(), buf_.size(), pos_, final, bytes_read};
  std::string scratch;
  try {
    for (;;) {
      size_t mark = c.i;
      pos_ = mark;
      switch (state_) {
        case Top::kStart: {
          char ch = c.peek();
          if (ch == '{') {
            ++c.i;
            state_ = Top::kObjectKeyOrEnd;
          } else if (ch == '[') {
            ++c.i;  // a bare list of events (chrome trace's array form)
            saw_events_ = true;
            array_top_ = true;
            state_ = Top::kEventsFirst;
          } else if (starts_value(ch)) {
            throw ReadError(std::string("top level is ") + type_name(ch) +
                            ", not a trace object (not a torch.profiler trace)");
          } else {
            c.fail("unexpected '" + Cursor::printable(ch) + "': not a JSON trace");
          }
          break;
        }
        case Top::kObjectKeyOrEnd:
        case Top::kValue: {
          char ch = c.peek();
          if (ch == '}' && state_ == Top::kObjectKeyOrEnd) {
            ++c.i;
            state_ = Top::kDone;
            break;
          }
          std::string key(c.string(scratch));
          c.expect(':');
          if (key == "traceEvents") {
            char v = c.peek();
            if (v != '[')
              throw ReadError(std::string("traceEvents is ") +
                              (starts_value(v) ? type_name(v) : "not JSON") + ", not a list");
            ++c.i;
            saw_events_ = true;
            state_ = Top::kEventsFirst;
          } else {
            c.peek();
            size_t vstart = c.i;
            c.skip_value();
            if (c.i - vstart <= kMaxTopLevelText)
              top_level[key] = std::string(c.b + vstart, c.i - vstart);
            state_ = Top::kCommaOrEnd;
          }
          break;
        }
        case Top::kCommaOrEnd: {
          char ch = c.peek();
          ++c.i;
          if (ch == ',')
            state_ = Top::kValue;
          else if (ch == '}')
            state_ = Top::kDone;
          else {
            --c.i;
            c.fail("expected ',' or '}' between top-level members");
          }
          break;
        }
        case Top::kEventsFirst: {
          char ch = c.peek();
          if (ch == ']') {
            ++c.i;
            state_ = array_top_ ? Top::kDone : Top::kCommaOrEnd;
            break;
          }
          c.i = parse_event(c.i, final);
          state_ = Top::kEventsCommaOrEnd;
          break;
        }
        case Top::kEventsCommaOrEnd: {
          char ch = c.peek();
          if (ch == ',') {
            ++c.i;
            c.peek();
            c.i = parse_event(c.i, final);
          } else if (ch == ']') {
            ++c.i;
            state_ = array_top_ ? Top::kDone : Top::kCommaOrEnd;
          } else {
            c.fail("expected ',' or ']' between events");
          }
          break;
        }
        case Top::kDone: {
          c.ws();
          if (c.i < c.n) c.fail("trailing data after the trace");
          if (!final) throw NeedMore{};
          pos_ = c.i;
          return;
        }
      }
    }
  } catch (const NeedMore&) {
    // pos_ holds the start of the unfinished step; the next feed resumes there.
  }
}

size_t TraceReader::parse_event(size_t pos, bool final) {
  Cursor c{buf_.data(), buf_.size(), pos, final, bytes_read};
  const uint64_t index = events;
  auto bad_event = [&](const std::string& what) -> ReadError {
    return ReadError("traceEvents[" + std::to_string(index) + "]: " + what);
  };
  char first = c.peek();
  if (first != '{') {
    if (!starts_value(first)) c.fail("unexpected '" + Cursor::printable(first) + "'");
    throw bad_event(std::string("is ") + type_name(first) + ", not an object");
  }
  ++c.i;
  EventFields f;
  std::string scratch;
  if (c.peek() == '}') {
    ++c.i;
  } else {
    for (;;) {
      std::string_view key = c.string(scratch);
      std::string key_s;
      if (key.data() == scratch.data()) key_s = std::string(key), key = key_s;
      c.expect(':');
      char v = c.peek();
      bool handled = true;
      if (key == "ph") {
        if (v == '"') {
          std::string_view s = c.string(scratch);
          f.ph = s.empty() ? 0 : s[0];
        } else {
          handled = false;
        }
      } else if (key == "cat") {
        if (v == '"') {
          f.cat = c.string(scratch);
          if (f.cat.data() == scratch.data()) f.cat_s = std::string(f.cat), f.cat = f.cat_s;
        } else {
          f.bad = f.bad ? f.bad : "'cat' is not a string";
          handled = false;
        }
      } else if (key == "name") {
        if (v == '"') {
          f.name = c.string(scratch);
          if (f.name.data() == scratch.data()) f.name_s = std::string(f.name), f.name = f.name_s;
        } else {
          f.bad = f.bad ? f.bad : "'name' is not a string";
          handled = false;
        }
      } else if (key == "ts" || key == "dur") {
        bool is_ts = key == "ts";
        if (v == '-' || (v >= '0' && v <= '9')) {
          Number num = c.number();
          int64_t ns;
          if (!to_ns(num, &ns)) {
            f.bad = f.bad ? f.bad : (is_ts ? "'ts' is out of range" : "'dur' is out of range");
          } else if (is_ts) {
            f.ts = ns, f.has_ts = true;
          } else {
            f.dur = ns, f.has_dur = true;
          }
        } else {
          f.bad = f.bad ? f.bad : (is_ts ? "'ts' is not a number" : "'dur' is not a number");
          handled = false;
        }
      } else if (key == "pid" || key == "tid") {
        int64_t* dst = key == "pid" ? &f.pid : &f.tid;
        if (v == '-' || (v >= '0' && v <= '9')) {
          Number num = c.number();
          if (!to_int(num, dst)) f.bad = f.bad ? f.bad : "'pid'/'tid' is out of range";
        } else if (v == '"') {
          // Kineto writes numbers; other writers use strings ("stream 7"): keep the
          // trailing integer, else a stable negative id.
          std::string_view s = c.string(scratch);
          size_t k = s.size();
          while (k > 0 && s[k - 1] >= '0' && s[k - 1] <= '9') --k;
          if (k < s.size() && s.size() - k < 18)
            *dst = std::strtoll(std::string(s.substr(k)).c_str(), nullptr, 10);
          else
            *dst = -1 - int64_t(names.intern(s));
        } else {
          handled = false;
        }
      } else if (key == "args") {
        if (v == '{') {
          ++c.i;
          if (c.peek() == '}') {
            ++c.i;
          } else {
            for (;;) {
              // compared before the value is read, so a view into scratch is safe
              std::string_view ak_s = c.string(scratch);
              c.expect(':');
              char av = c.peek();
              int64_t* dst = nullptr;
              int32_t* arr = nullptr;
              if (ak_s == "correlation")
                dst = &f.correlation;
              else if (ak_s == "External id")
                dst = &f.external_id;
              else if (ak_s == "device")
                dst = &f.device;
              else if (ak_s == "stream")
                dst = &f.stream;
              else if (ak_s == "bytes")
                dst = &f.bytes;
              else if (ak_s == "cbid")
                dst = &f.cbid;
              else if (ak_s == "grid")
                arr = f.grid;
              else if (ak_s == "block")
                arr = f.block;
              if (dst && (av == '-' || (av >= '0' && av <= '9'))) {
                Number num = c.number();
                if (!to_int(num, dst))
                  f.bad = f.bad ? f.bad : "an integer argument is out of range or not integral";
              } else if (arr && av == '[') {
                ++c.i;
                for (int j = 0; j < 3; ++j) {
                  char e = c.peek();
                  if (e == ']') break;
                  if (j) {
                    c.expect(',');
                    e = c.peek();
                  }
                  if (e == '-' || (e >= '0' && e <= '9')) {
                    int64_t x = 0;
                    if (!to_int(c.number(), &x) || x > INT32_MAX || x < INT32_MIN) {
                      f.bad = f.bad ? f.bad : "'grid'/'block' value out of range";
                      x = 0;
                    }
                    arr[j] = int32_t(x);
                  } else {
                    c.skip_value();
                  }
                }
                while (c.peek() == ',') {  // more than three entries: ignore the rest
                  ++c.i;
                  c.skip_value();
                }
                c.expect(']');
              } else {
                if (dst) f.bad = f.bad ? f.bad : "an integer argument is not a number";
                c.skip_value();
              }
              char nx = c.peek();
              ++c.i;
              if (nx == '}') break;
              if (nx != ',') {
                --c.i;
                c.fail("expected ',' or '}' in args");
              }
            }
          }
        } else {
          handled = false;
        }
      } else {
        handled = false;
      }
      if (!handled) c.skip_value();
      char nx = c.peek();
      ++c.i;
      if (nx == '}') break;
      if (nx != ',') {
        --c.i;
        c.fail("expected ',' or '}' in event");
      }
    }
  }
  ++events;

  if (f.ph != 'X') {
    ++ignored_events;
    return c.i;
  }
  Cat cat = category(f.cat);
  bool step = (cat == kCatAnnotation || cat == kCatCpuOp) && f.name.rfind("ProfilerStep#", 0) == 0;
  if (cat == kCatOther || (cat == kCatAnnotation && !step)) {
    ++ignored_events;
    return c.i;
  }
  // Messages must be valid text whatever the file holds: non-ASCII bytes become '?'.
  auto ascii = [](std::string_view v) {
    std::string out(v);
    for (char& ch : out)
      if (uint8_t(ch) < 0x20 || uint8_t(ch) >= 0x7f) ch = '?';
    return out;
  };
  auto cat_name = [&] { return ascii(f.cat); };
  if (f.bad)
    throw bad_event(std::string("(") + cat_name() + " '" + ascii(f.name.substr(0, 60)) + "') " +
                    f.bad);
  if (!f.has_ts) throw bad_event("(" + cat_name() + ") missing 'ts'");
  if (!f.has_dur) throw bad_event("(" + cat_name() + ") missing 'dur'");
  if (f.dur < 0) throw bad_event("(" + cat_name() + ") negative 'dur'");
  int32_t name_id = int32_t(names.intern(f.name));
  if (step) {
    steps.push_back(StepEvent{f.ts, f.dur, f.pid, f.tid, name_id, 0});
  } else if (cat == kCatCpuOp) {
    ops.push_back(OpEvent{f.ts, f.dur, f.pid, f.tid, f.external_id, -1, -1, name_id, 0});
  } else if (cat == kCatRuntime || cat == kCatDriver) {
    launches.push_back(
        LaunchEvent{f.ts, f.dur, f.correlation, f.pid, f.tid, name_id, int32_t(f.cbid)});
  } else {
    GpuEvent g{};
    g.ts = f.ts;
    g.dur = f.dur;
    g.correlation = f.correlation;
    g.device = f.device >= 0 ? f.device : f.pid;
    g.stream = f.stream >= 0 ? f.stream : f.tid;
    g.bytes = f.bytes;
    g.name_id = name_id;
    g.kind = cat == kCatKernel ? 0 : (cat == kCatMemcpy ? 1 : 2);
    std::memcpy(g.grid, f.grid, sizeof g.grid);
    std::memcpy(g.block, f.block, sizeof g.block);
    gpu.push_back(g);
  }
  return c.i;
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
