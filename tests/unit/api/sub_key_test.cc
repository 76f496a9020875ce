#include "api/sub_key.h"

#include <gtest/gtest.h>

#include "core/time_text.h"

namespace till {
namespace {

const Timestamp kNow = *parse_rfc3339("2026-12-04T15:00:00Z", "now");

KeyRecord narrow_parent() {
  KeyRecord parent;
  parent.id = "key_parent";
  parent.provider = "openai";
  parent.expires_at = kNow + std::chrono::hours(1);
  parent.scope.models = {"gpt-4o-mini", "gpt-4o"};
  parent.scope.rpm = 60;
  parent.scope.max_concurrency = 4;
  parent.scope.allowed_cidrs = {"10.0.0.0/8"};
  return parent;
}

TEST(SubKey, InheritsWhatItLeavesOpen) {
  NewKeySpec spec;
  ASSERT_TRUE(narrow_to_parent(spec, narrow_parent()));
  const KeyRecord parent = narrow_parent();
  EXPECT_EQ(spec.provider, "openai");
  EXPECT_EQ(spec.expires_at, parent.expires_at);
  EXPECT_EQ(spec.scope, parent.scope);
}

TEST(SubKey, MayNarrowEverything) {
  NewKeySpec spec;
  spec.provider = "openai";
  spec.expires_at = kNow + std::chrono::minutes(5);
  spec.scope.models = {"gpt-4o-mini"};
  spec.scope.rpm = 6;
  spec.scope.max_concurrency = 1;
  spec.scope.allowed_cidrs = {"10.1.2.0/24"};
  const NewKeySpec asked = spec;
  ASSERT_TRUE(narrow_to_parent(spec, narrow_parent()));
  EXPECT_EQ(spec.scope, asked.scope);
  EXPECT_EQ(spec.expires_at, asked.expires_at);
}

TEST(SubKey, NeverWiderThanItsParent) {
  const std::vector<std::pair<std::function<void(NewKeySpec&)>, std::string>> widen = {
      {[](NewKeySpec& s) { s.provider = "anthropic"; }, "provider"},
      {[](NewKeySpec& s) { s.expires_at = kNow + std::chrono::hours(2); }, "expires_at"},
      {[](NewKeySpec& s) { s.scope.models = {"o3"}; }, "models"},
      {[](NewKeySpec& s) { s.scope.rpm = 61; }, "rpm"},
      {[](NewKeySpec& s) { s.scope.max_concurrency = 5; }, "max_concurrency"},
      {[](NewKeySpec& s) { s.scope.allowed_cidrs = {"0.0.0.0/0"}; }, "allowed_cidrs"},
      {[](NewKeySpec& s) { s.scope.allowed_cidrs = {"192.168.0.0/16"}; }, "allowed_cidrs"},
  };
  for (const auto& [change, field] : widen) {
    NewKeySpec spec;
    change(spec);
    auto narrowed = narrow_to_parent(spec, narrow_parent());
    ASSERT_FALSE(narrowed) << field;
    EXPECT_EQ(narrowed.error().field, field);
    EXPECT_EQ(narrowed.error().code, ErrorCode::kInvalidRequest);
  }
}

TEST(SubKey, AnUnrestrictedParentLeavesTheChildAsAsked) {
  KeyRecord parent;
  parent.provider = "openai";
  NewKeySpec spec;
  ASSERT_TRUE(narrow_to_parent(spec, parent));
  EXPECT_FALSE(spec.expires_at);
  EXPECT_EQ(spec.scope, Scope{});
}

}  // namespace
}  // namespace till
