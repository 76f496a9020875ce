#include "api/json_fields.h"

#include <boost/json/parse.hpp>

#include "core/time_text.h"
#include "provider/provider_table.h"

namespace till::json_fields {
namespace {

namespace json = boost::json;

constexpr size_t kMaxListItems = 1000;
constexpr size_t kMaxSecretBytes = 4096;

std::string known_providers() {
  std::string out;
  for (const ProviderInfo& p : all_providers()) {
    if (!out.empty()) out += ", ";
    out += p.name;
  }
  return out;
}

}  // namespace

Error invalid(std::string_view field, std::string_view why) {
  return Error::invalid(std::string(field), std::string(field) + ": " + std::string(why));
}

Result<json::object> parse_object(std::string_view body, bool empty_is_object) {
  if (empty_is_object && body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return json::object();
  }
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec) return fail(Error::invalid("", "request body is not valid JSON: " + ec.message()));
  if (!doc.is_object()) return fail(Error::invalid("", "request body must be a JSON object"));
  return std::move(doc.get_object());
}

bool has_control_chars(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

Result<std::string> get_string(const json::value& v, std::string_view field) {
  if (!v.is_string()) return fail(invalid(field, "must be a string"));
  return std::string(v.get_string());
}

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

Result<std::chrono::milliseconds> get_duration(const json::value& v, std::string_view field,
                                               std::chrono::milliseconds min) {
  auto text = get_string(v, field);
  if (!text) return fail(text.error());
  // parse_duration takes positive durations only; "0s" is how a caller asks for none.
  if (min == std::chrono::milliseconds::zero() && (*text == "0" || *text == "0s")) {
    return std::chrono::milliseconds::zero();
  }
  auto duration = parse_duration(*text, field);
  if (!duration) return fail(duration.error());
  if (*duration < min) {
    return fail(invalid(field, "must be at least " + format_duration(min)));
  }
  return *duration;
}

Result<std::string> get_secret(const json::value& v, std::string_view field) {
  auto s = get_string(v, field);
  if (!s) return fail(s.error());
  bool printable = !s->empty() && s->size() <= kMaxSecretBytes;
  for (unsigned char c : *s) printable = printable && c > 0x20 && c < 0x7f;
  if (!printable) {
    return fail(invalid(field,
                        "must be the provider's API key: 1 to 4096 printable ASCII "
                        "characters without spaces"));
  }
  return s;
}

Result<std::string> get_provider(const json::value& v, std::string_view field) {
  auto s = get_string(v, field);
  if (!s) return fail(s.error());
  if (!find_provider(*s)) {
    return fail(
        invalid(field, "unknown provider \"" + *s + "\"; known providers: " + known_providers()));
  }
  return s;
}

}  // namespace till::json_fields
