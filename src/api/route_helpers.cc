#include "api/route_helpers.h"

#include <charconv>

namespace till {

Error no_such_endpoint(std::string_view path) {
  return Error::client(ErrorCode::kNotFound, "no such endpoint: " + std::string(path));
}

Error method_not_allowed(std::string_view method, std::string_view path) {
  return Error::client(ErrorCode::kMethodNotAllowed,
                       "method " + std::string(method) + " is not allowed on " + std::string(path));
}

Result<int> parse_page_limit(std::string_view value) {
  int limit = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
  if (ec != std::errc() || end != value.data() + value.size() || limit < 1 || limit > 1000) {
    return fail(Error::invalid("limit", "limit: must be a whole number from 1 to 1000"));
  }
  return limit;
}

}  // namespace till
