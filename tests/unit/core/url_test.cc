#include "core/url.h"

#include <gtest/gtest.h>

namespace till {
namespace {

TEST(Url, SplitsTarget) {
  auto t = split_target("/api/v1/keys?status=active");
  EXPECT_EQ(t.path, "/api/v1/keys");
  EXPECT_EQ(t.query, "status=active");
  EXPECT_EQ(split_target("/x").query, "");
}

TEST(Url, DecodesQueries) {
  auto q = parse_query("a=1&b=x%20y&c=p+q&&d");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[1].second, "x y");
  EXPECT_EQ((*q)[2].second, "p q");
  EXPECT_EQ((*q)[3].first, "d");
  EXPECT_FALSE(parse_query("a=%zz"));
  EXPECT_FALSE(parse_query("a=%4"));
  EXPECT_FALSE(parse_query("a=%"));
}

TEST(Url, EncodesAllButUnreserved) {
  EXPECT_EQ(percent_encode("a b/c~"), "a%20b%2Fc~");
  EXPECT_EQ(*percent_decode(percent_encode("ü&=?"), false), "ü&=?");
}

}  // namespace
}  // namespace till
