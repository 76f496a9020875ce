#include "till/money.h"

#include <charconv>
#include <string>

namespace till {
namespace {

constexpr int64_t kMaxDollars = 1'000'000'000;
constexpr int kMaxDecimals = 9;

}  // namespace

Result<Money> Money::parse_usd(std::string_view text, std::string_view field) {
  auto invalid = [&](std::string why) {
    return fail(Error::invalid(std::string(field), std::string(field) + ": " + why));
  };
  if (text.empty()) return invalid("expected a decimal amount of US dollars, such as \"5.00\"");
  std::string_view whole = text, fraction;
  if (auto dot = text.find('.'); dot != std::string_view::npos) {
    whole = text.substr(0, dot);
    fraction = text.substr(dot + 1);
    if (fraction.empty()) return invalid("expected digits after the decimal point");
  }
  auto all_digits = [](std::string_view s) {
    for (char c : s) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  };
  if (whole.empty() || !all_digits(whole) || !all_digits(fraction)) {
    return invalid("expected a non-negative decimal amount of US dollars, such as \"5.00\"");
  }
  if (fraction.size() > kMaxDecimals) return invalid("at most 9 decimal places are supported");
  if (whole.size() > 10) return invalid("must be at most 1000000000");
  int64_t dollars = 0;
  std::from_chars(whole.data(), whole.data() + whole.size(), dollars);
  if (dollars > kMaxDollars) return invalid("must be at most 1000000000");
  int64_t nanos = 0;
  for (int i = 0; i < kMaxDecimals; ++i) {
    nanos = nanos * 10 + (i < static_cast<int>(fraction.size()) ? fraction[i] - '0' : 0);
  }
  if (dollars == kMaxDollars && nanos > 0) return invalid("must be at most 1000000000");
  return Money(dollars * kNanosPerDollar + nanos);
}

Result<Money> Money::from_cents(int64_t cents, std::string_view field) {
  if (cents < 0) {
    return fail(Error::invalid(std::string(field), std::string(field) + ": must not be negative"));
  }
  if (cents > kMaxDollars * 100) {
    return fail(Error::invalid(std::string(field),
                               std::string(field) + ": must be at most 100000000000 cents"));
  }
  return Money(cents * kNanosPerCent);
}

std::string Money::to_usd_string() const {
  const bool negative = nanos_ < 0;
  // Negate in unsigned arithmetic so INT64_MIN stays defined.
  const uint64_t magnitude =
      negative ? ~static_cast<uint64_t>(nanos_) + 1 : static_cast<uint64_t>(nanos_);
  std::string fraction = std::to_string(magnitude % kNanosPerDollar);
  fraction.insert(0, kMaxDecimals - fraction.size(), '0');
  while (fraction.size() > 2 && fraction.back() == '0') fraction.pop_back();
  return (negative ? "-" : "") + std::to_string(magnitude / kNanosPerDollar) + "." + fraction;
}

}  // namespace till
