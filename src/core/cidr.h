// IP address ranges in CIDR notation ("10.0.0.0/8", "2001:db8::/32", or a bare address).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "till/error.h"

namespace till {

class Cidr {
 public:
  // Parses "addr/len" or a bare address (a /32 or /128). Host bits beyond the prefix are
  // refused ("10.0.0.1/8" is almost always a typo for "10.0.0.0/8"). Errors name `field`.
  static Result<Cidr> parse(std::string_view text, std::string_view field);

  // True if `address` (textual IPv4 or IPv6; IPv4-mapped IPv6 counts as IPv4) is in the range.
  bool contains(std::string_view address) const;

  // True if every address of `range` is in this range.
  bool contains(const Cidr& range) const;

  std::string to_string() const;

 private:
  bool v6_ = false;
  std::array<uint8_t, 16> bytes_{};
  int prefix_ = 0;
};

}  // namespace till
