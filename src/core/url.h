// Request-target parsing: path and query string, with strict percent-decoding.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace till {

struct RequestTarget {
  std::string_view path;   // raw, not decoded: "/api/v1/keys"
  std::string_view query;  // raw, without '?': "status=active&limit=10"
};

RequestTarget split_target(std::string_view target);

// Decodes %XX escapes and, if `plus_is_space`, '+' as ' '. nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// Query parameters in order; nullopt if any name or value is malformed.
using QueryParams = std::vector<std::pair<std::string, std::string>>;
std::optional<QueryParams> parse_query(std::string_view query);

// Encodes everything but unreserved characters (RFC 3986).
std::string percent_encode(std::string_view text);

}  // namespace till
