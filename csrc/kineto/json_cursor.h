// A resumable JSON cursor over one buffer of a document fed in chunks.
//
// Every read either completes or throws: ReadError for input that is not JSON
// (RFC 8259: no leading zeros, no NaN, no control characters in strings), or
// NeedMore where the buffer ends before the value does and more input may
// follow; the caller then retries the whole step from its start once more
// input has arrived. Strings are scanned eight bytes at a time for the three
// bytes that end the fast path ('"', '\\', and controls below 0x20).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "kineto/json_number.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace skipnative::kineto {

class ReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct NeedMore {};

constexpr int kMaxDepth = 512;

// What a value that starts with c is, for messages; nullptr if no value does.
inline const char* type_name(char c) {
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

inline bool starts_value(char c) { return type_name(c) != nullptr; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

inline std::string printable(char c) {
  if (c >= 32 && c < 127) return std::string(1, c);
  char tmp[8];
  std::snprintf(tmp, sizeof tmp, "\\x%02x", unsigned(uint8_t(c)));
  return tmp;
}

void put_utf8(std::string& out, uint32_t cp);

// Error paths are out of line and marked cold: the hot reads stay small
// functions with no string building in them.
#define SKIPNATIVE_COLD [[noreturn, gnu::cold, gnu::noinline]]

struct Cursor {
  const char* b;
  size_t n;
  size_t i;
  bool final;     // no input follows this buffer
  uint64_t base;  // byte offset of b[0] in the document

  SKIPNATIVE_COLD void fail(const std::string& what) const;
  SKIPNATIVE_COLD void fail_at(size_t k, const std::string& what);
  SKIPNATIVE_COLD void end_of_input(size_t k);
  SKIPNATIVE_COLD void expected(char want, char got);
  SKIPNATIVE_COLD void expected_separator(char close, const char* where);
  SKIPNATIVE_COLD void expected_string();

  void ws() {
    // any byte above ' ' ends it: one compare in the usual case
    while (i < n && uint8_t(b[i]) <= ' ' &&
           (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t'))
      ++i;
  }
  char peek() {
    ws();
    if (i >= n) end_of_input(i);
    return b[i];
  }
  char need(size_t k) {
    if (k >= n) end_of_input(k);
    return b[k];
  }
  void expect(char c) {
    char got = peek();
    if (got != c) expected(c, got);
    ++i;
  }
  // After a member or element: true at ',' (consumed), false at the closer (consumed).
  bool next_or_close(char close, const char* where) {
    char c = peek();
    ++i;
    if (c == ',') return true;
    if (c == close) return false;
    --i;
    expected_separator(close, where);
  }

  size_t find_special(size_t k) const;
  // A string; the view points into the buffer, or into scratch if it had escapes.
  std::string_view string(std::string& scratch) {
    if (peek() != '"') expected_string();
    const size_t start = i + 1;
    const size_t k = find_special(start);
    if (k < n && b[k] == '"') {
      i = k + 1;
      return std::string_view(b + start, k - start);
    }
    return string_slow(start, k, scratch);
  }
  void skip_string();
  Number number();
  void skip_number();
  void literal(const char* word);
  void skip_value();

 private:
  std::string_view string_slow(size_t start, size_t k, std::string& scratch);
  size_t escape(size_t k, std::string* out);
  size_t digits(size_t k, Number& num, bool fraction);
  uint32_t hex4(size_t k);
};

// First position at or after k holding '"', '\\' or a byte below 0x20; n if none.
// Sixteen bytes a step with SSE2 (every x86-64), then eight bytes a step: in each of the three
// masks the lowest set bit is exact (a borrow can only mark bytes above a true match), so their
// union's lowest set bit is the first special byte. Little-endian loads; elsewhere bytewise.
inline size_t Cursor::find_special(size_t k) const {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\');
  const __m128i below = _mm_set1_epi8(0x20 - 0x80), flip = _mm_set1_epi8(char(0x80));
  while (k + 16 <= n) {
    __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + k));
    __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, slash));
    // unsigned w < 0x20 as a signed compare of both sides shifted by 0x80
    hit = _mm_or_si128(hit, _mm_cmplt_epi8(_mm_xor_si128(w, flip), below));
    if (int mask = _mm_movemask_epi8(hit)) return k + size_t(__builtin_ctz(unsigned(mask)));
    k += 16;
  }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  while (k + 8 <= n) {
    uint64_t w;
    std::memcpy(&w, b + k, 8);
    uint64_t q = w ^ (kOnes * uint8_t('"')), s = w ^ (kOnes * uint8_t('\\'));
    uint64_t hit = ((q - kOnes) & ~q) | ((s - kOnes) & ~s) | ((w - kOnes * 0x20) & ~w);
    hit &= kHigh;
    if (hit) return k + size_t(__builtin_ctzll(hit) >> 3);
    k += 8;
  }
#endif
  while (k < n && b[k] != '"' && b[k] != '\\' && uint8_t(b[k]) >= 0x20) ++k;
  return k;
}

}  // namespace skipnative::kineto
