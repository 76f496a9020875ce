#include "api/new_key_request.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <set>

#include "api/credential_request.h"
#include "api/json_fields.h"
#include "core/cidr.h"
#include "core/time_text.h"
#include "provider/provider_table.h"

namespace till {
namespace {

namespace json = boost::json;
using json_fields::get_count;
using json_fields::get_string;
using json_fields::get_string_list;
using json_fields::has_control_chars;
using json_fields::invalid;

constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxMetadataBytes = 16 * 1024;
constexpr size_t kMaxModelBytes = 200;
constexpr std::chrono::minutes kMinRotateEvery{1};
constexpr std::chrono::days kMaxGrace{30};

// USD as a decimal string ("5.00") or a JSON number (5, 5.5). Numbers go through their shortest
// round-trip decimal text, so 0.1 is exactly ten cents.
Result<Money> get_usd(const json::value& v, std::string_view field) {
  if (v.is_string()) return Money::parse_usd(v.get_string(), field);
  char buf[64];
  std::to_chars_result r{};
  if (v.is_int64()) {
    r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
  } else if (v.is_uint64()) {
    r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
  } else if (v.is_double()) {
    r = std::to_chars(buf, buf + sizeof buf, v.get_double(), std::chars_format::fixed);
  } else {
    return fail(invalid(field, "must be a decimal amount of US dollars, such as \"5.00\""));
  }
  if (r.ec != std::errc()) return fail(invalid(field, "is out of range"));
  return Money::parse_usd(std::string_view(buf, static_cast<size_t>(r.ptr - buf)), field);
}

}  // namespace

Result<NewKeySpec> parse_new_key_request(std::string_view body, Timestamp now,
                                         KeyRequestKind kind) {
  auto parsed = json_fields::parse_object(body, kind == KeyRequestKind::kSubKey);
  if (!parsed) return fail(parsed.error());
  const json::object& obj = *parsed;

  NewKeySpec spec;
  std::optional<Money> spend_usd, spend_cents;
  bool has_expires_in = false;
  for (const auto& [name, value] : obj) {
    const std::string_view field = name;
    if (field == "provider") {
      auto s = json_fields::get_provider(value, field);
      if (!s) return fail(s.error());
      spec.provider = std::move(*s);
    } else if ((field == "upstream_key" || field == "credential") &&
               kind == KeyRequestKind::kSubKey) {
      return fail(invalid(field, "a sub-key uses its parent's upstream credential"));
    } else if (field == "upstream_key") {
      auto s = json_fields::get_secret(value, field);
      if (!s) return fail(s.error());
      spec.upstream_key = std::move(*s);
    } else if (field == "credential") {
      auto s = get_string(value, field);
      if (!s) return fail(s.error());
      if (!is_credential_name(*s)) return fail(invalid(field, kCredentialNameRule));
      spec.credential = std::move(*s);
    } else if (field == "rotate_every") {
      auto d = json_fields::get_duration(value, field, kMinRotateEvery);
      if (!d) return fail(d.error());
      spec.rotate_every = *d;
    } else if (field == "name") {
      auto s = get_string(value, field);
      if (!s) return fail(s.error());
      if (s->size() > kMaxNameBytes || has_control_chars(*s)) {
        return fail(invalid(field, "must be at most 200 bytes without control characters"));
      }
      spec.name = std::move(*s);
    } else if (field == "metadata") {
      if (!value.is_object()) return fail(invalid(field, "must be a JSON object"));
      spec.metadata_json = json::serialize(value);
      if (spec.metadata_json.size() > kMaxMetadataBytes) {
        return fail(invalid(field, "must be at most 16 KiB when serialised"));
      }
    } else if (field == "max_requests") {
      auto n = get_count(value, field, 1'000'000'000'000LL);
      if (!n) return fail(n.error());
      spec.limits.max_requests = *n;
    } else if (field == "max_tokens") {
      auto n = get_count(value, field, 1'000'000'000'000'000LL);
      if (!n) return fail(n.error());
      spec.limits.max_tokens = *n;
    } else if (field == "max_spend_usd") {
      auto m = get_usd(value, field);
      if (!m) return fail(m.error());
      spend_usd = *m;
    } else if (field == "max_spend_cents") {
      if (!value.is_int64()) return fail(invalid(field, "must be a whole number of cents"));
      auto m = Money::from_cents(value.get_int64(), field);
      if (!m) return fail(m.error());
      spend_cents = *m;
    } else if (field == "expires_in") {
      auto s = get_string(value, field);
      if (!s) return fail(s.error());
      auto d = parse_duration(*s, field);
      if (!d) return fail(d.error());
      spec.expires_at = now + *d;
      has_expires_in = true;
    } else if (field == "expires_at") {
      auto s = get_string(value, field);
      if (!s) return fail(s.error());
      auto t = parse_rfc3339(*s, field);
      if (!t) return fail(t.error());
      if (*t <= now) return fail(invalid(field, "must be in the future"));
      spec.expires_at = *t;
    } else if (field == "models") {
      auto models = get_string_list(value, field);
      if (!models) return fail(models.error());
      std::set<std::string> seen;
      for (auto& m : *models) {
        if (m.size() > kMaxModelBytes || has_control_chars(m)) {
          return fail(invalid(field, "model names must be at most 200 bytes"));
        }
        if (seen.insert(m).second) spec.scope.models.push_back(std::move(m));
      }
    } else if (field == "rpm") {
      auto n = get_count(value, field, 1'000'000'000);
      if (!n) return fail(n.error());
      spec.scope.rpm = *n;
    } else if (field == "max_concurrency") {
      auto n = get_count(value, field, 1'000'000);
      if (!n) return fail(n.error());
      spec.scope.max_concurrency = *n;
    } else if (field == "allowed_cidrs") {
      auto cidrs = get_string_list(value, field);
      if (!cidrs) return fail(cidrs.error());
      for (const auto& text : *cidrs) {
        auto cidr = Cidr::parse(text, field);
        if (!cidr) return fail(cidr.error());
        spec.scope.allowed_cidrs.push_back(cidr->to_string());
      }
    } else {
      return fail(
          invalid(field, "unknown field; see the API reference for the fields a key takes"));
    }
  }

  if (kind == KeyRequestKind::kKey) {
    if (spec.provider.empty()) return fail(invalid("provider", "is required"));
    if (!spec.upstream_key.empty() && spec.credential) {
      return fail(invalid("credential", "give upstream_key or credential, not both"));
    }
    if (spec.upstream_key.empty() && !spec.credential) {
      return fail(invalid("upstream_key",
                          "is required: the provider API key to seal into the "
                          "key (or name a vault credential with credential)"));
    }
  }
  if (spend_usd && spend_cents) {
    return fail(invalid("max_spend_cents", "give max_spend_usd or max_spend_cents, not both"));
  }
  spec.limits.max_spend = spend_usd ? spend_usd : spend_cents;
  if (has_expires_in && obj.contains("expires_at")) {
    return fail(invalid("expires_at", "give expires_in or expires_at, not both"));
  }
  return spec;
}

Result<RotationSpec> parse_rotation_request(std::string_view body, bool accepts_upstream_key) {
  auto parsed = json_fields::parse_object(body, /*empty_is_object=*/true);
  if (!parsed) return fail(parsed.error());
  RotationSpec spec;
  for (const auto& [name, value] : *parsed) {
    const std::string_view field = name;
    if (field == "grace") {
      auto d = json_fields::get_duration(value, field, std::chrono::milliseconds::zero());
      if (!d) return fail(d.error());
      if (*d > kMaxGrace) return fail(invalid(field, "must be at most 30d"));
      spec.grace = *d;
    } else if (field == "upstream_key" && accepts_upstream_key) {
      auto s = json_fields::get_secret(value, field);
      if (!s) return fail(s.error());
      spec.upstream_key = std::move(*s);
    } else {
      return fail(invalid(field, accepts_upstream_key
                                     ? "unknown field; a rotation takes grace and upstream_key"
                                     : "unknown field; a rotation takes grace"));
    }
  }
  return spec;
}

}  // namespace till
