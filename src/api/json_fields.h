// Reading the fields of JSON request bodies: one place for the checks and messages every
// control-plane request shares. Every error is kInvalidRequest whose `field` names the field and
// whose message starts with it ("max_requests: must be a whole number of at least 1").
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "till/error.h"

namespace till::json_fields {

Error invalid(std::string_view field, std::string_view why);

// The body as a JSON object; an empty body is an empty object when `empty_is_object`.
Result<boost::json::object> parse_object(std::string_view body, bool empty_is_object = false);

Result<std::string> get_string(const boost::json::value& v, std::string_view field);

// A whole number in [1, max]. JSON numbers with a fraction or given as strings are refused.
Result<int64_t> get_count(const boost::json::value& v, std::string_view field, int64_t max);

// An array of at most 1000 non-empty strings.
Result<std::vector<std::string>> get_string_list(const boost::json::value& v,
                                                 std::string_view field);

// A duration string ("10m", "7d"); `min` is the smallest accepted (zero allows "0s").
Result<std::chrono::milliseconds> get_duration(const boost::json::value& v, std::string_view field,
                                               std::chrono::milliseconds min);

// A provider API key: 1 to 4096 printable ASCII characters without spaces.
Result<std::string> get_secret(const boost::json::value& v, std::string_view field);

// A provider name from the provider table; the message lists the known ones.
Result<std::string> get_provider(const boost::json::value& v, std::string_view field);

bool has_control_chars(std::string_view s);

}  // namespace till::json_fields
