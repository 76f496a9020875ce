#include "api/key_json.h"

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include "core/time_text.h"

namespace till {
namespace {

namespace json = boost::json;

json::value optional_int(const std::optional<int64_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

json::value optional_money(const std::optional<Money>& v) {
  return v ? json::value(v->to_usd_string()) : json::value(nullptr);
}

json::value optional_time(const std::optional<Timestamp>& t) {
  return t ? json::value(format_rfc3339(*t)) : json::value(nullptr);
}

json::value optional_string(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

json::array string_array(const std::vector<std::string>& items) {
  json::array out;
  for (const auto& item : items) out.emplace_back(item);
  return out;
}

// limit - used - reserved, never below zero; null when unlimited.
json::value remaining_int(const std::optional<int64_t>& limit, int64_t used, int64_t reserved) {
  if (!limit) return nullptr;
  return std::max<int64_t>(0, *limit - used - reserved);
}

}  // namespace

json::object key_to_json(const KeyRecord& key, Timestamp now) {
  json::object limits{{"max_requests", optional_int(key.limits.max_requests)},
                      {"max_tokens", optional_int(key.limits.max_tokens)},
                      {"max_spend_usd", optional_money(key.limits.max_spend)}};
  json::object used{{"requests", key.used.requests},
                    {"input_tokens", key.used.input_tokens},
                    {"cached_input_tokens", key.used.cached_input_tokens},
                    {"output_tokens", key.used.output_tokens},
                    {"reasoning_tokens", key.used.reasoning_tokens},
                    {"unmetered_tokens", key.used.unmetered_tokens},
                    {"tokens", key.used.tokens()},
                    {"spend_usd", key.used.spend.to_usd_string()}};
  json::object reserved{{"requests", key.reserved.requests},
                        {"tokens", key.reserved.tokens},
                        {"spend_usd", key.reserved.spend.to_usd_string()}};
  json::value remaining_spend = nullptr;
  if (key.limits.max_spend) {
    remaining_spend = std::max(Money(), *key.limits.max_spend - key.used.spend - key.reserved.spend)
                          .to_usd_string();
  }
  json::object remaining{
      {"requests",
       remaining_int(key.limits.max_requests, key.used.requests, key.reserved.requests)},
      {"tokens", remaining_int(key.limits.max_tokens, key.used.tokens(), key.reserved.tokens)},
      {"spend_usd", std::move(remaining_spend)}};
  json::object scope{{"models", string_array(key.scope.models)},
                     {"rpm", optional_int(key.scope.rpm)},
                     {"max_concurrency", optional_int(key.scope.max_concurrency)},
                     {"allowed_cidrs", string_array(key.scope.allowed_cidrs)}};
  boost::system::error_code ec;
  json::value metadata = json::parse(key.metadata_json, ec);
  if (ec || !metadata.is_object()) metadata = json::object();

  return json::object{
      {"id", key.id},
      {"name", key.name},
      {"provider", key.provider},
      {"status", to_string(key.effective_status(now))},
      {"created_at", format_rfc3339(key.created_at)},
      {"updated_at", format_rfc3339(key.updated_at)},
      {"expires_at", optional_time(key.expires_at)},
      {"parent_id", optional_string(key.parent_id)},
      {"credential", optional_string(key.credential)},
      {"rotated_at", format_rfc3339(key.rotated_at)},
      {"rotate_every",
       key.rotate_every ? json::value(format_duration(*key.rotate_every)) : json::value(nullptr)},
      {"rotation_due_at", optional_time(key.rotation_due_at())},
      {"previous_token_valid_until",
       optional_time(key.previous_token && key.previous_token->valid_until > now
                         ? std::optional<Timestamp>(key.previous_token->valid_until)
                         : std::nullopt)},
      {"metadata", std::move(metadata)},
      {"limits", std::move(limits)},
      {"used", std::move(used)},
      {"reserved", std::move(reserved)},
      {"remaining", std::move(remaining)},
      {"scope", std::move(scope)}};
}

}  // namespace till
