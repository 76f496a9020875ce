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
  auto b =
      parse_new_key_request(R"({"provider":"openai","upstream_key":"k","max_spend_usd":3})", kNow);
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

// The field a request is refused for, or "" if it is accepted.
std::string refused_field(std::string_view body, KeyRequestKind kind = KeyRequestKind::kKey) {
  auto spec = parse_new_key_request(body, kNow, kind);
  return spec ? "" : spec.error().field;
}

TEST(NewKeyRequest, VaultCredentialInsteadOfUpstreamKey) {
  auto spec = parse_new_key_request(
      R"({"provider":"openai","credential":"openai-prod","rotate_every":"7d"})", kNow);
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->credential, "openai-prod");
  EXPECT_TRUE(spec->upstream_key.empty());
  EXPECT_EQ(spec->rotate_every, std::chrono::days(7));

  EXPECT_EQ(refused_field(R"({"provider":"openai","credential":"a","upstream_key":"k"})"),
            "credential");
  EXPECT_EQ(refused_field(R"({"provider":"openai"})"), "upstream_key");
  EXPECT_EQ(refused_field(R"({"provider":"openai","credential":"bad name"})"), "credential");
  EXPECT_EQ(refused_field(R"({"provider":"openai","upstream_key":"k","rotate_every":"30s"})"),
            "rotate_every");
}

TEST(NewKeyRequest, SubKeysTakeTheirParentsCredential) {
  auto spec = parse_new_key_request(R"({"max_requests":3})", kNow, KeyRequestKind::kSubKey);
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_TRUE(spec->provider.empty());
  auto empty = parse_new_key_request("", kNow, KeyRequestKind::kSubKey);
  EXPECT_TRUE(empty) << "an empty body is a sub-key with inherited everything";
  EXPECT_EQ(refused_field(R"({"upstream_key":"k"})", KeyRequestKind::kSubKey), "upstream_key");
  EXPECT_EQ(refused_field(R"({"credential":"c"})", KeyRequestKind::kSubKey), "credential");
  EXPECT_EQ(refused_field("", KeyRequestKind::kKey), "");  // not JSON: no field to name
}

TEST(RotationRequest, GraceAndUpstreamKey) {
  auto defaults = parse_rotation_request("", true);
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->grace, std::chrono::milliseconds::zero());
  auto given = parse_rotation_request(R"({"grace":"10m","upstream_key":"sk-new"})", true);
  ASSERT_TRUE(given) << given.error().message;
  EXPECT_EQ(given->grace, std::chrono::minutes(10));
  EXPECT_EQ(given->upstream_key, "sk-new");
  auto none = parse_rotation_request(R"({"grace":"0s"})", false);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->grace, std::chrono::milliseconds::zero());

  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"grace":"31d"})", "grace"},
           {R"({"grace":"soon"})", "grace"},
           {R"({"grace":10})", "grace"},
           {R"({"upstream_key":"sk"})", "upstream_key"},  // a key holder cannot swap it
           {R"({"limit":1})", "limit"}}) {
    auto refused = parse_rotation_request(body, false);
    ASSERT_FALSE(refused) << body;
    EXPECT_EQ(refused.error().field, field) << body;
  }
}

}  // namespace
}  // namespace till
