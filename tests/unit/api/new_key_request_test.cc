#include "api/new_key_request.h"

#include <gtest/gtest.h>

#include "core/time_text.h"

namespace till {
namespace {

const Timestamp kNow = *parse_rfc3339("2026-12-04T15:00:00Z", "now");

TEST(NewKeyRequest, ParsesEveryField) {
  auto spec = parse_new_key_request(R"({
    "provider": "openai", "upstream_key": "sk-abc", "name": "agent", "metadata": {"a": [1]},
    "max_requests": 50, "max_tokens": 100000, "max_spend_usd": "5.00", "expires_in": "90m",
    "models": ["gpt-4o", "gpt-4o", "gpt-4o-mini"], "rpm": 60, "max_concurrency": 2,
    "allowed_cidrs": ["10.0.0.0/8", "::1"]})",
                                    kNow);
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->provider, "openai");
  EXPECT_EQ(spec->upstream_key, "sk-abc");
  EXPECT_EQ(spec->metadata_json, R"({"a":[1]})");
  EXPECT_EQ(spec->limits.max_requests, 50);
  EXPECT_EQ(spec->limits.max_tokens, 100000);
  EXPECT_EQ(spec->limits.max_spend->nanos(), 5'000'000'000);
  EXPECT_EQ(*spec->expires_at, kNow + std::chrono::minutes(90));
  EXPECT_EQ(spec->scope.models, (std::vector<std::string>{"gpt-4o", "gpt-4o-mini"}));
  EXPECT_EQ(spec->scope.allowed_cidrs, (std::vector<std::string>{"10.0.0.0/8", "::1/128"}));
  EXPECT_EQ(spec->scope.rpm, 60);
  EXPECT_EQ(spec->scope.max_concurrency, 2);
}

TEST(NewKeyRequest, NumericSpendIsExact) {
  auto a = parse_new_key_request(R"({"provider":"openai","upstream_key":"k","max_spend_usd":0.1})",
                                 kNow);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->limits.max_spend->nanos(), 100'000'000);
  auto b = parse_new_key_request(R"({"provider":"openai","upstream_key":"k","max_spend_usd":3})",
                                 kNow);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->limits.max_spend->nanos(), 3'000'000'000);
  auto c = parse_new_key_request(
      R"({"provider":"openai","upstream_key":"k","max_spend_cents":199})", kNow);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->limits.max_spend->nanos(), 1'990'000'000);
}

TEST(NewKeyRequest, NamesTheFieldAtFault) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"upstream_key":"k"})", "provider"},
      {R"({"provider":"openai"})", "upstream_key"},
      {R"({"provider":7,"upstream_key":"k"})", "provider"},
      {R"({"provider":"openai","upstream_key":"k","max_requests":18446744073709551615})",
       "max_requests"},
      {R"({"provider":"openai","upstream_key":"k","max_tokens":0})", "max_tokens"},
      {R"({"provider":"openai","upstream_key":"k","expires_at":"2026-12-04T14:59:59Z"})",
       "expires_at"},
      {R"({"provider":"openai","upstream_key":"k","expires_in":"1h","expires_at":"2027-01-01T00:00:00Z"})",
       "expires_at"},
      {R"({"provider":"openai","upstream_key":"k","surprise":1})", "surprise"},
  };
  for (const auto& [body, field] : cases) {
    auto spec = parse_new_key_request(body, kNow);
    ASSERT_FALSE(spec) << body;
    EXPECT_EQ(spec.error().code, ErrorCode::kInvalidRequest);
    EXPECT_EQ(spec.error().field, field) << body << " → " << spec.error().message;
  }
}

TEST(NewKeyRequest, RefusesNonObjects) {
  for (const char* body : {"", "{", "[]", "null", "\"x\""}) {
    auto spec = parse_new_key_request(body, kNow);
    ASSERT_FALSE(spec) << body;
    EXPECT_EQ(spec.error().code, ErrorCode::kInvalidRequest);
  }
}

}  // namespace
}  // namespace till
