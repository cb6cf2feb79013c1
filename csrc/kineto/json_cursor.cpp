#include "kineto/json_cursor.h"

namespace skipnative::kineto {

void put_utf8(std::string& out, uint32_t cp) {
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

void Cursor::fail(const std::string& what) const {
  throw ReadError("invalid JSON at byte " + std::to_string(base + i) + ": " + what);
}

void Cursor::fail_at(size_t k, const std::string& what) {
  i = k;
  fail(what);
}

void Cursor::end_of_input(size_t k) {
  if (final) fail_at(k, "unexpected end of file (truncated trace?)");
  throw NeedMore{};
}

void Cursor::expected(char want, char got) {
  fail(std::string("expected '") + want + "', found '" + printable(got) + "'");
}

void Cursor::expected_separator(char close, const char* where) {
  fail(std::string("expected ',' or '") + close + "' " + where);
}

void Cursor::expected_string() {
  fail(std::string("expected a string, found ") +
       (starts_value(b[i]) ? type_name(b[i]) : "'" + printable(b[i]) + "'"));
}

uint32_t Cursor::hex4(size_t k) {
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
    else
      fail_at(k + j, "bad \\u escape");
  }
  return v;
}

// The escape at b[k] == '\\': appends what it stands for to out (if given) and
// returns the position after it. A lone surrogate is kept as its 3-byte form.
size_t Cursor::escape(size_t k, std::string* out) {
  char e = need(k + 1);
  const char* plain = "\"\\/bfnrt";
  const char* with = "\"\\/\b\f\n\r\t";
  if (const char* p = e ? std::strchr(plain, e) : nullptr) {
    if (out) *out += with[p - plain];
    return k + 2;
  }
  if (e != 'u') fail_at(k + 1, "bad escape in string");
  uint32_t cp = hex4(k + 2);
  k += 6;
  if (cp >= 0xD800 && cp < 0xDC00 && need(k) == '\\' && need(k + 1) == 'u') {
    uint32_t lo = hex4(k + 2);
    if (lo >= 0xDC00 && lo < 0xE000) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      k += 6;
    }
  }
  if (out) put_utf8(*out, cp);
  return k;
}

// The rest of a string whose first special byte, at k, is not its closing quote.
std::string_view Cursor::string_slow(size_t start, size_t k, std::string& scratch) {
  need(k);
  scratch.assign(b + start, k - start);
  for (;;) {
    char c = need(k);
    if (c == '"') break;
    if (uint8_t(c) < 0x20) fail_at(k, "control character in string");
    if (c == '\\') {
      k = escape(k, &scratch);
    } else {
      size_t e = find_special(k);
      scratch.append(b + k, e - k);
      k = e;
    }
  }
  i = k + 1;
  return scratch;
}

void Cursor::skip_string() {
  size_t k = i + 1;  // b[i] == '"'
  for (;;) {
    k = find_special(k);
    char c = need(k);
    if (c == '"') break;
    if (c == '\\')
      k = escape(k, nullptr);
    else
      fail_at(k, "control character in string");
  }
  i = k + 1;
}

// One more decimal digit of a number whose first 19 significant ones are taken.
static void wide_digit(Number& num, char d, bool fraction) {
  if (num.significant < 38) {
    num.digits = num.digits * 10 + unsigned(d - '0');
    ++num.significant;
    if (fraction) --num.exponent;
  } else if (!fraction) {
    ++num.exponent;  // an integer digit past the 38th
  }
}

// Whether the eight bytes at p are all decimal digits; if so, their value. One
// little-endian load, the digits combined pairwise by multiplications; bytewise
// on other machines.
static bool eight_digits(const char* p, uint64_t* out) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t w;
  std::memcpy(&w, p, 8);
  // every byte in '0'..'9': its high nibble is 3, and adding 6 keeps it 3
  if ((w & 0xF0F0F0F0F0F0F0F0ULL) != 0x3030303030303030ULL ||
      ((w + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) != 0x3030303030303030ULL)
    return false;
  w -= 0x3030303030303030ULL;  // byte j: digit j (the first digit in the low byte)
  w = w * 10 + (w >> 8);       // even bytes: two-digit values
  const uint64_t mask = 0x000000FF000000FFULL;
  const uint64_t mul1 = 100 + (1000000ULL << 32), mul2 = 1 + (10000ULL << 32);
  *out = ((w & mask) * mul1 + ((w >> 16) & mask) * mul2) >> 32;
  return true;
#else
  uint64_t v = 0;
  for (int j = 0; j < 8; ++j) {
    if (!is_digit(p[j])) return false;
    v = v * 10 + unsigned(p[j] - '0');
  }
  *out = v;
  return true;
#endif
}

// Digits from b[k]: up to 19 significant ones in 64 bits (nearly every number
// a trace holds), the rest through wide_digit. Returns the position after them.
size_t Cursor::digits(size_t k, Number& num, bool fraction) {
  // In 64 bits while fewer than 19 significant digits are held (< 10^19 fits);
  // an integer part that already went wide keeps its 128 bits.
  if (num.significant < 19) {
    uint64_t m = uint64_t(num.digits);
    int sig = num.significant;
    int64_t exp = num.exponent;
    // eight digits at a time where all eight are significant (an integer part has
    // no leading zeros; a fraction's count once a nonzero digit is held)
    uint64_t eight;
    while ((!fraction || m != 0) && sig <= 11 && k + 8 <= n && eight_digits(b + k, &eight)) {
      m = m * 100000000 + eight;
      sig += 8;
      exp -= fraction ? 8 : 0;
      k += 8;
    }
    for (; k < n && is_digit(b[k]) && sig < 19; ++k) {
      m = m * 10 + unsigned(b[k] - '0');
      sig += m != 0;  // leading zeros of a fraction are not significant
      exp -= fraction;
    }
    num.digits = m;
    num.significant = sig;
    num.exponent = exp;
  }
  for (; k < n && is_digit(b[k]); ++k) wide_digit(num, b[k], fraction);
  return k;
}

// JSON's grammar exactly: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
Number Cursor::number() {
  Number num;
  size_t k = i;
  if (b[k] == '-') num.neg = true, ++k;
  if (!is_digit(need(k))) fail_at(k, "bad number");
  if (b[k] == '0') {
    ++k;
    if (k < n && is_digit(b[k])) fail_at(k, "bad number (leading zero)");
  } else {
    k = digits(k, num, false);
  }
  if (k < n && b[k] == '.') {
    num.integral_syntax = false;
    if (!is_digit(need(++k))) fail_at(k, "bad number");
    k = digits(k, num, true);
  }
  if (k < n && (b[k] == 'e' || b[k] == 'E')) {
    num.integral_syntax = false;
    bool eneg = false;
    if (need(++k) == '+' || b[k] == '-') eneg = b[k++] == '-';
    if (!is_digit(need(k))) fail_at(k, "bad number");
    int64_t e = 0;
    while (k < n && is_digit(b[k])) {
      if (e < 1000000) e = e * 10 + (b[k] - '0');  // saturates far beyond any fit
      ++k;
    }
    num.exponent += eneg ? -e : e;
  }
  if (k >= n && !final) throw NeedMore{};  // the number may continue in the next buffer
  i = k;
  return num;
}

// A number skipped: the same grammar as number(), nothing accumulated.
void Cursor::skip_number() {
  size_t k = i;
  if (b[k] == '-') ++k;
  if (!is_digit(need(k))) fail_at(k, "bad number");
  if (b[k] == '0') {
    ++k;
    if (k < n && is_digit(b[k])) fail_at(k, "bad number (leading zero)");
  } else {
    while (k < n && is_digit(b[k])) ++k;
  }
  if (k < n && b[k] == '.') {
    if (!is_digit(need(++k))) fail_at(k, "bad number");
    while (k < n && is_digit(b[k])) ++k;
  }
  if (k < n && (b[k] == 'e' || b[k] == 'E')) {
    if (need(++k) == '+' || b[k] == '-') ++k;
    if (!is_digit(need(k))) fail_at(k, "bad number");
    while (k < n && is_digit(b[k])) ++k;
  }
  if (k >= n && !final) throw NeedMore{};  // the number may continue in the next buffer
  i = k;
}

void Cursor::literal(const char* word) {
  size_t len = std::strlen(word);
  for (size_t j = 0; j < len; ++j)
    if (need(i + j) != word[j]) fail_at(i + j, "invalid literal");
  i += len;
}

// Skips one value of any type: iterative, validating, with a depth limit.
void Cursor::skip_value() {
  char stack[kMaxDepth];
  int depth = 0;
  for (;;) {
    char c = peek();
    if (c == '{' || c == '[') {
      if (depth == kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
      ++i;
      char close = c == '{' ? '}' : ']';
      if (peek() == close) {
        ++i;
      } else {
        stack[depth++] = close;
        if (c == '{') {
          if (peek() != '"') fail("expected a string key in object");
          skip_string();
          expect(':');
        }
        continue;
      }
    } else if (c == '"') {
      skip_string();
    } else if (c == 't') {
      literal("true");
    } else if (c == 'f') {
      literal("false");
    } else if (c == 'n') {
      literal("null");
    } else if (c == '-' || is_digit(c)) {
      skip_number();
    } else {
      fail("unexpected '" + printable(c) + "'");
    }
    // after a complete value: close containers or move to the next element
    for (;;) {
      if (depth == 0) return;
      char close = stack[depth - 1];
      if (next_or_close(close, close == '}' ? "in object" : "in list")) {
        if (close == '}') {
          if (peek() != '"') fail("expected a string key in object");
          skip_string();
          expect(':');
        }
        break;
      }
      --depth;
    }
  }
}

}  // namespace skipnative::kineto
