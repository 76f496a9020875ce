#include "api/new_key_request.h"

#include <charconv>
#include <set>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/cidr.h"
#include "core/time_text.h"
#include "provider/provider_table.h"

namespace till {
namespace {

namespace json = boost::json;

constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxMetadataBytes = 16 * 1024;
constexpr size_t kMaxUpstreamKeyBytes = 4096;
constexpr size_t kMaxListItems = 1000;
constexpr size_t kMaxModelBytes = 200;

Error invalid(std::string_view field, std::string_view why) {
  return Error::invalid(std::string(field), std::string(field) + ": " + std::string(why));
}

bool has_control_chars(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

std::string known_providers() {
  std::string out;
  for (const ProviderInfo& p : all_providers()) {
    if (!out.empty()) out += ", ";
    out += p.name;
  }
  return out;
}

Result<std::string> get_string(const json::value& v, std::string_view field) {
  if (!v.is_string()) return fail(invalid(field, "must be a string"));
  return std::string(v.get_string());
}

// A whole number in [1, max]. JSON numbers with a fraction or given as strings are refused.
Result<int64_t> get_count(const json::value& v, std::string_view field, int64_t max) {
  if (v.is_uint64() || (v.is_int64() && v.get_int64() > max)) {  // uint64: above INT64_MAX
    return fail(invalid(field, "must be at most " + std::to_string(max)));
  }
  if (!v.is_int64() || v.get_int64() < 1) {
    return fail(invalid(field, "must be a whole number of at least 1"));
  }
  return v.get_int64();
}

Result<std::vector<std::string>> get_string_list(const json::value& v, std::string_view field) {
  if (!v.is_array()) return fail(invalid(field, "must be an array of strings"));
  const json::array& items = v.get_array();
  if (items.size() > kMaxListItems) {
    return fail(invalid(field, "must have at most " + std::to_string(kMaxListItems) + " items"));
  }
  std::vector<std::string> out;
  for (const json::value& item : items) {
    if (!item.is_string() || item.get_string().empty()) {
      return fail(invalid(field, "must be an array of non-empty strings"));
    }
    out.emplace_back(item.get_string());
  }
  return out;
}

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

Result<NewKeySpec> parse_new_key_request(std::string_view body, Timestamp now) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec) {
    return fail(Error::invalid("", "request body is not valid JSON: " + ec.message()));
  }
  if (!doc.is_object()) return fail(Error::invalid("", "request body must be a JSON object"));
  const json::object& obj = doc.get_object();

  NewKeySpec spec;
  std::optional<Money> spend_usd, spend_cents;
  bool has_expires_in = false;
  for (const auto& [name, value] : obj) {
    const std::string_view field = name;
    if (field == "provider") {
      auto s = get_string(value, field);
      if (!s) return fail(s.error());
      if (!find_provider(*s)) {
        return fail(invalid(field, "unknown provider \"" + *s + "\"; known providers: " +
                                       known_providers()));
      }
      spec.provider = std::move(*s);
    } else if (field == "upstream_key") {
      auto s = get_string(value, field);
      if (!s) return fail(s.error());
      bool printable = !s->empty() && s->size() <= kMaxUpstreamKeyBytes;
      for (unsigned char c : *s) printable = printable && c > 0x20 && c < 0x7f;
      if (!printable) {
        return fail(invalid(field, "must be the provider's API key: 1 to 4096 printable ASCII "
                                   "characters without spaces"));
      }
      spec.upstream_key = std::move(*s);
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
      return fail(invalid(field, "unknown field; see the API reference for the fields a key takes"));
    }
  }

  if (spec.provider.empty()) return fail(invalid("provider", "is required"));
  if (spec.upstream_key.empty()) {
    return fail(invalid("upstream_key", "is required: the provider API key to seal into the key"));
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

}  // namespace till
