// Routing of data-plane requests, with the path checks that keep a request inside its route.
//
//   /proxy/{provider}/{path…}   → that provider's base URL + /{path…}
//   /v1/{path…}                 → the key's own provider's base URL + /v1/{path…}
//
// Paths are checked, not rewritten: a path with a "." or ".." segment (literal or
// percent-encoded), an empty segment ("//"), an encoded slash, backslash or percent sign, a
// backslash, or a control character is refused. So no request can reach another route of till
// (such as /api/v1) or climb out of a provider's base path (such as Groq's /openai).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "till/error.h"

namespace till {

struct ProxyRoute {
  std::string provider;       // empty for /v1 routes: the key's own provider
  std::string upstream_path;  // the raw path to append to the base URL, starting with '/'
  std::string query;          // the raw query string without '?', possibly empty
};

// True if `path` is a data-plane path (starts with /proxy/ or /v1/, or is /proxy or /v1).
bool is_proxy_path(std::string_view path);

// Parses a request-target on a data-plane path. Errors: kInvalidRequest for an unsafe path
// (the message says what is wrong), kNotFound for an unknown provider or a missing path.
Result<ProxyRoute> parse_proxy_route(std::string_view target);

}  // namespace till
