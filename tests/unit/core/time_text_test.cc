#include "core/time_text.h"

#include <gtest/gtest.h>

namespace till {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;

TEST(Duration, ParsesUnitsAndCombinations) {
  EXPECT_EQ(*parse_duration("90m", "f"), minutes(90));
  EXPECT_EQ(*parse_duration("24h", "f"), hours(24));
  EXPECT_EQ(*parse_duration("7d", "f"), hours(24 * 7));
  EXPECT_EQ(*parse_duration("1h30m", "f"), minutes(90));
  EXPECT_EQ(*parse_duration("250ms", "f"), milliseconds(250));
  EXPECT_EQ(*parse_duration("2w", "f"), hours(24 * 14));
}

TEST(Duration, RefusesMalformed) {
  for (const char* bad : {"", "10", "m", "10 m", "-5m", "+5m", "5x", "0s", "1h-5m", "999999999d"}) {
    auto d = parse_duration(bad, "expires_in");
    ASSERT_FALSE(d) << bad;
    EXPECT_EQ(d.error().field, "expires_in");
  }
}

TEST(Duration, Formats) {
  EXPECT_EQ(format_duration(minutes(90)), "1h30m");
  EXPECT_EQ(format_duration(hours(48)), "2d");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1s500ms");
}

TEST(Rfc3339, RoundTripsAndHonoursOffsets) {
  auto t = parse_rfc3339("2026-12-04T15:00:00Z", "f");
  ASSERT_TRUE(t);
  EXPECT_EQ(format_rfc3339(*t), "2026-12-04T15:00:00Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-12-04T16:30:00+01:30", "f")),
            "2026-12-04T15:00:00Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("2026-12-04T15:00:00.5Z", "f")),
            "2026-12-04T15:00:00.500Z");
  EXPECT_EQ(to_unix_ms(*parse_rfc3339("1970-01-01T00:00:00Z", "f")), 0);
}

TEST(Rfc3339, RefusesMalformed) {
  for (const char* bad : {"", "2026-12-04", "2026-12-04 15:00:00Z", "2026-13-04T15:00:00Z",
                          "2026-02-30T15:00:00Z", "2026-12-04T15:00:00", "2026-12-04T15:00:00+1",
                          "2026-12-04T15:00:00Zjunk", "2026-12-04T25:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad, "expires_at")) << bad;
  }
}

}  // namespace
}  // namespace till
