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

struct Cursor {
  const char* b;
  size_t n;
  size_t i;
  bool final;     // no input follows this buffer
  uint64_t base;  // byte offset of b[0] in the document

  [[noreturn]] void fail(const std::string& what) const {
    throw ReadError("invalid JSON at byte " + std::to_string(base + i) + ": " + what);
  }
  [[noreturn]] void fail_at(size_t k, const std::string& what) {
    i = k;
    fail(what);
  }
  [[noreturn]] void end_of_input(size_t k) {
    if (final) fail_at(k, "unexpected end of file (truncated trace?)");
    throw NeedMore{};
  }
  void ws() {
    while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t')) ++i;
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
    if (got != c) fail(std::string("expected '") + c + "', found '" + printable(got) + "'");
    ++i;
  }
  // After a member or element: true at ',' (consumed), false at the closer (consumed).
  bool next_or_close(char close, const char* where) {
    char c = peek();
    ++i;
    if (c == ',') return true;
    if (c == close) return false;
    fail_at(i - 1, std::string("expected ',' or '") + close + "' " + where);
  }

  size_t find_special(size_t k) const;
  std::string_view string(std::string& scratch);
  void skip_string();
  Number number();
  void skip_number();
  void literal(const char* word);
  void skip_value();

 private:
  size_t escape(size_t k, std::string* out);
  size_t digits(size_t k, Number& num, bool fraction);
  uint32_t hex4(size_t k);
};

}  // namespace skipnative::kineto
