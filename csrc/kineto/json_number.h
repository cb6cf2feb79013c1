// A JSON number kept exact, and its conversion to a scaled 64-bit integer.
//
// The cursor collects up to 38 significant decimal digits in an unsigned
// __int128 and a decimal exponent, so that value = digits * 10^exponent
// exactly for every number a trace writes; digits past the 38th only move the
// exponent (integer part) or are dropped (fraction part: they can change a
// result by less than one unit, and rounding is half away from zero, so the
// first 38 digits decide it). Conversion never wraps: a value that does not fit
// is reported as such.
#pragma once

#include <cstdint>

namespace skipnative::kineto {

struct Number {
  bool neg = false;
  bool integral_syntax = true;  // no fraction and no exponent in the text
  unsigned __int128 digits = 0;
  int32_t significant = 0;  // digits collected (leading zeros not counted)
  int64_t exponent = 0;     // value = digits * 10^exponent
};

enum class Fit { kOk, kTooBig, kNotIntegral };

namespace detail {
inline unsigned __int128 pow10_u128(int k) {
  unsigned __int128 p = 1;
  for (int j = 0; j < k; ++j) p *= 10;
  return p;
}
constexpr uint64_t kPow10[20] = {1ULL,
                                 10ULL,
                                 100ULL,
                                 1000ULL,
                                 10000ULL,
                                 100000ULL,
                                 1000000ULL,
                                 10000000ULL,
                                 100000000ULL,
                                 1000000000ULL,
                                 10000000000ULL,
                                 100000000000ULL,
                                 1000000000000ULL,
                                 10000000000000ULL,
                                 100000000000000ULL,
                                 1000000000000000ULL,
                                 10000000000000000ULL,
                                 100000000000000000ULL,
                                 1000000000000000000ULL,
                                 10000000000000000000ULL};
}  // namespace detail

// num * 10^shift as an int64, rounded half away from zero; with exact, a value
// that is not an integer after scaling is kNotIntegral instead of rounded.
inline Fit scaled_int64(const Number& num, int shift, bool exact, int64_t* out) {
  if (num.digits == 0) {
    *out = 0;
    return Fit::kOk;
  }
  const uint64_t limit = num.neg ? uint64_t(1) << 63 : uint64_t(INT64_MAX);
  const int64_t scale = num.exponent + shift;
  // The usual case, in 64 bits: digits that fit, scaled up (integers, and decimals of up to
  // `shift` places); anything else, or a product that does not fit, takes the exact path below.
  if (uint64_t(num.digits >> 64) == 0 && scale >= 0 && scale < 20) {
    uint64_t v;
    if (!__builtin_mul_overflow(uint64_t(num.digits), detail::kPow10[scale], &v) && v <= limit) {
      *out = int64_t(num.neg ? uint64_t(0) - v : v);
      return Fit::kOk;
    }
  }
  unsigned __int128 v;
  if (scale >= 0) {
    if (scale > 38) return Fit::kTooBig;
    unsigned __int128 p = detail::pow10_u128(int(scale));
    if (num.digits > limit / p) return Fit::kTooBig;
    v = num.digits * p;
  } else if (scale < -38) {
    // digits < 10^38, so the value is below one half: rounds to zero
    if (exact) return Fit::kNotIntegral;
    v = 0;
  } else {
    unsigned __int128 p = detail::pow10_u128(int(-scale));
    v = num.digits / p;
    unsigned __int128 rest = num.digits % p;
    if (rest != 0 && exact) return Fit::kNotIntegral;
    if (rest >= p - rest) ++v;  // half away from zero
  }
  if (v > limit) return Fit::kTooBig;
  *out = int64_t(num.neg ? uint64_t(0) - uint64_t(v) : uint64_t(v));
  return Fit::kOk;
}

}  // namespace skipnative::kineto
