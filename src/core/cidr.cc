#include "core/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <optional>

namespace till {
namespace {

struct Address {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
};

std::optional<Address> parse_address(std::string_view text) {
  if (text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  Address a;
  if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) return a;
  if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes.data(), kMapped, 12) == 0) {  // ::ffff:a.b.c.d is IPv4
      std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
      std::memset(a.bytes.data() + 4, 0, 12);
      return a;
    }
    a.v6 = true;
    return a;
  }
  return std::nullopt;
}

bool prefix_equal(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int bits) {
  const int whole = bits / 8;
  if (std::memcmp(a.data(), b.data(), static_cast<size_t>(whole)) != 0) return false;
  if (bits % 8 == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits % 8));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

Result<Cidr> Cidr::parse(std::string_view text, std::string_view field) {
  auto invalid = [&](std::string why) {
    return fail(Error::invalid(std::string(field), std::string(field) + ": " + why));
  };
  std::string_view addr_text = text;
  std::optional<int> prefix;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr_text = text.substr(0, slash);
    std::string_view len = text.substr(slash + 1);
    int value = -1;
    auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), value);
    if (len.empty() || ec != std::errc() || end != len.data() + len.size()) {
      return invalid("\"" + std::string(text) + "\" has an invalid prefix length");
    }
    prefix = value;
  }
  auto address = parse_address(addr_text);
  if (!address) {
    return invalid("\"" + std::string(text) + "\" is not an IP address or CIDR range");
  }
  Cidr cidr;
  cidr.v6_ = address->v6;
  cidr.bytes_ = address->bytes;
  const int max_bits = address->v6 ? 128 : 32;
  cidr.prefix_ = prefix.value_or(max_bits);
  if (cidr.prefix_ < 0 || cidr.prefix_ > max_bits) {
    return invalid("\"" + std::string(text) + "\" has a prefix length outside 0.." +
                   std::to_string(max_bits));
  }
  std::array<uint8_t, 16> zero_host = cidr.bytes_;
  for (int bit = cidr.prefix_; bit < max_bits; ++bit) {
    zero_host[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  if (zero_host != cidr.bytes_) {
    return invalid("\"" + std::string(text) + "\" has bits set beyond its prefix length");
  }
  return cidr;
}

bool Cidr::contains(std::string_view address) const {
  auto a = parse_address(address);
  return a && a->v6 == v6_ && prefix_equal(a->bytes, bytes_, prefix_);
}

bool Cidr::contains(const Cidr& range) const {
  return range.v6_ == v6_ && range.prefix_ >= prefix_ &&
         prefix_equal(range.bytes_, bytes_, prefix_);
}

std::string Cidr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6_ ? AF_INET6 : AF_INET, bytes_.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix_);
}

}  // namespace till
