// Money as an exact integer number of nano-dollars (1e-9 USD). Never floating point: limits and
// counters must compare exactly. int64 holds ±9.2 billion USD.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "till/error.h"

namespace till {

class Money {
 public:
  static constexpr int64_t kNanosPerDollar = 1'000'000'000;
  static constexpr int64_t kNanosPerCent = 10'000'000;

  constexpr Money() = default;
  static constexpr Money from_nanos(int64_t nanos) { return Money(nanos); }

  // Parses a non-negative decimal USD amount such as "5", "5.00", "0.000011" (at most 9 decimals,
  // at most $1,000,000,000). Errors are kInvalidRequest naming `field`.
  static Result<Money> parse_usd(std::string_view text, std::string_view field);
  // Converts a whole number of cents; errors (negative, too large) name `field`.
  static Result<Money> from_cents(int64_t cents, std::string_view field);

  constexpr int64_t nanos() const { return nanos_; }

  // Decimal USD with at least two decimals and no trailing zeros beyond them:
  // 5 → "5.00", 0.000011 → "0.000011", 1.5 → "1.50".
  std::string to_usd_string() const;

  constexpr Money operator+(Money o) const { return Money(nanos_ + o.nanos_); }
  constexpr Money operator-(Money o) const { return Money(nanos_ - o.nanos_); }
  constexpr Money& operator+=(Money o) { nanos_ += o.nanos_; return *this; }
  constexpr Money& operator-=(Money o) { nanos_ -= o.nanos_; return *this; }
  constexpr auto operator<=>(const Money&) const = default;

 private:
  constexpr explicit Money(int64_t nanos) : nanos_(nanos) {}
  int64_t nanos_ = 0;
};

}  // namespace till
