#include "till/money.h"

#include <gtest/gtest.h>

namespace till {
namespace {

TEST(Money, ParsesDecimalUsdExactly) {
  EXPECT_EQ(Money::parse_usd("5", "f")->nanos(), 5'000'000'000);
  EXPECT_EQ(Money::parse_usd("5.00", "f")->nanos(), 5'000'000'000);
  EXPECT_EQ(Money::parse_usd("0.1", "f")->nanos(), 100'000'000);
  EXPECT_EQ(Money::parse_usd("0.000000001", "f")->nanos(), 1);
  EXPECT_EQ(Money::parse_usd("1000000000", "f")->nanos(), 1'000'000'000LL * 1'000'000'000);
}

TEST(Money, RefusesWhatIsNotAnAmount) {
  for (const char* bad : {"", "-1", "+1", "1.", ".5", "1.0000000001", "1e3", "five", "1,5",
                          " 1", "1000000000.01", "99999999999"}) {
    auto m = Money::parse_usd(bad, "max_spend_usd");
    ASSERT_FALSE(m) << bad;
    EXPECT_EQ(m.error().code, ErrorCode::kInvalidRequest);
    EXPECT_EQ(m.error().field, "max_spend_usd");
    EXPECT_TRUE(m.error().message.starts_with("max_spend_usd: ")) << m.error().message;
  }
}

TEST(Money, FromCents) {
  EXPECT_EQ(Money::from_cents(250, "c")->to_usd_string(), "2.50");
  EXPECT_FALSE(Money::from_cents(-1, "c"));
}

TEST(Money, FormatsWithTwoToNineDecimals) {
  EXPECT_EQ(Money().to_usd_string(), "0.00");
  EXPECT_EQ(Money::from_nanos(5'000'000'000).to_usd_string(), "5.00");
  EXPECT_EQ(Money::from_nanos(1'500'000'000).to_usd_string(), "1.50");
  EXPECT_EQ(Money::from_nanos(11'000).to_usd_string(), "0.000011");
  EXPECT_EQ(Money::from_nanos(1).to_usd_string(), "0.000000001");
  EXPECT_EQ(Money::from_nanos(-1'250'000'000).to_usd_string(), "-1.25");
}

}  // namespace
}  // namespace till
