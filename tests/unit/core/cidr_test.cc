#include "core/cidr.h"

#include <gtest/gtest.h>

namespace till {
namespace {

TEST(Cidr, ContainsIpv4AndMappedIpv6) {
  auto c = Cidr::parse("10.0.0.0/8", "f");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains("10.1.2.3"));
  EXPECT_TRUE(c->contains("::ffff:10.1.2.3"));
  EXPECT_FALSE(c->contains("11.0.0.1"));
  EXPECT_FALSE(c->contains("not an address"));
  EXPECT_EQ(c->to_string(), "10.0.0.0/8");
}

TEST(Cidr, BareAddressesAndIpv6) {
  EXPECT_EQ(Cidr::parse("127.0.0.1", "f")->to_string(), "127.0.0.1/32");
  EXPECT_EQ(Cidr::parse("::1", "f")->to_string(), "::1/128");
  auto v6 = Cidr::parse("2001:db8::/32", "f");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains("2001:db8:1::5"));
  EXPECT_FALSE(v6->contains("2001:db9::1"));
  EXPECT_FALSE(v6->contains("10.0.0.1"));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0", "f")->contains("8.8.8.8"));
  EXPECT_TRUE(Cidr::parse("10.0.0.0/9", "f")->contains("10.127.0.1"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/9", "f")->contains("10.128.0.1"));
}

TEST(Cidr, RefusesMalformedAndHostBits) {
  for (const char* bad : {"", "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "abc",
                          "::1/129", "10.0.0.0/8x"}) {
    auto c = Cidr::parse(bad, "allowed_cidrs");
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().field, "allowed_cidrs");
  }
}

}  // namespace
}  // namespace till

namespace till {
namespace {

TEST(Cidr, ContainsNarrowerRanges) {
  auto wide = Cidr::parse("10.0.0.0/8", "f");
  auto narrow = Cidr::parse("10.1.0.0/16", "f");
  auto other = Cidr::parse("11.0.0.0/16", "f");
  auto v6 = Cidr::parse("::/0", "f");
  ASSERT_TRUE(wide && narrow && other && v6);
  EXPECT_TRUE(wide->contains(*narrow));
  EXPECT_TRUE(wide->contains(*wide));
  EXPECT_FALSE(narrow->contains(*wide));
  EXPECT_FALSE(wide->contains(*other));
  EXPECT_FALSE(v6->contains(*wide));  // families differ
}

}  // namespace
}  // namespace till
