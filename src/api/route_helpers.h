// What every control-plane route shares: the errors for a wrong path or method, and the page
// size of list queries.
#pragma once

#include <string>
#include <string_view>

#include "till/error.h"

namespace till {

// 404 "no such endpoint: <path>".
Error no_such_endpoint(std::string_view path);

// 405 "method <method> is not allowed on <path>".
Error method_not_allowed(std::string_view method, std::string_view path);

// The `limit` query parameter of a list: a whole number from 1 to 1000 (kInvalidRequest, field
// "limit", otherwise).
Result<int> parse_page_limit(std::string_view value);

}  // namespace till
