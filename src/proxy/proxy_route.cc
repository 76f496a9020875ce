#include "proxy/proxy_route.h"

#include "core/url.h"
#include "provider/provider_table.h"

namespace till {
namespace {

constexpr std::string_view kProxyPrefix = "/proxy/";
constexpr std::string_view kOpenAiPrefix = "/v1/";

Error unsafe(std::string_view why) {
  return Error::invalid("path", "till: the request path " + std::string(why) +
                                    "; send a plain path such as /v1/chat/completions");
}

// Checks every segment of `path` (which starts with '/').
Result<void> check_path(std::string_view path) {
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return fail(unsafe("contains a control character"));
    if (c == '\\') return fail(unsafe("contains a backslash"));
  }
  size_t start = 1;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const std::string_view segment =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    const bool last = slash == std::string_view::npos;
    if (segment.empty() && !last) return fail(unsafe("contains an empty segment (\"//\")"));
    // Percent-escapes of '/', '\', '%' and NUL could be decoded into path structure upstream.
    for (size_t i = 0; i < segment.size(); ++i) {
      if (segment[i] != '%') continue;
      if (i + 2 >= segment.size()) {
        return fail(unsafe("contains a malformed percent-escape"));
      }
      const std::string_view escape = segment.substr(i + 1, 2);
      if (escape == "2f" || escape == "2F" || escape == "5c" || escape == "5C" ||
          escape == "25" || escape == "00") {
        return fail(unsafe("contains an encoded slash, backslash, percent sign or NUL"));
      }
    }
    auto decoded = percent_decode(segment, false);
    if (!decoded) return fail(unsafe("contains a malformed percent-escape"));
    if (*decoded == "." || *decoded == "..") return fail(unsafe("contains a \".\" or \"..\" segment"));
    if (last) break;
    start = slash + 1;
  }
  return {};
}

}  // namespace

bool is_proxy_path(std::string_view path) {
  return path.starts_with(kProxyPrefix) || path.starts_with(kOpenAiPrefix) || path == "/proxy" ||
         path == "/v1";
}

Result<ProxyRoute> parse_proxy_route(std::string_view target) {
  const RequestTarget parts = split_target(target);
  if (auto safe = check_path(parts.path); !safe) return fail(safe.error());
  ProxyRoute route;
  route.query = std::string(parts.query);
  if (parts.path.starts_with(kProxyPrefix)) {
    std::string_view rest = parts.path.substr(kProxyPrefix.size());
    const size_t slash = rest.find('/');
    const std::string_view provider = rest.substr(0, slash);
    if (!find_provider(provider)) {
      return fail(Error::client(ErrorCode::kNotFound,
                                "till: unknown provider \"" + std::string(provider) +
                                    "\" in the path; use /proxy/{provider}/… with one of the "
                                    "providers till knows"));
    }
    if (slash == std::string_view::npos || slash + 1 == rest.size()) {
      return fail(Error::client(ErrorCode::kNotFound,
                                "till: no API path after /proxy/" + std::string(provider) + "/"));
    }
    route.provider = std::string(provider);
    route.upstream_path = std::string(rest.substr(slash));
    return route;
  }
  if (parts.path.starts_with(kOpenAiPrefix) && parts.path.size() > kOpenAiPrefix.size()) {
    route.upstream_path = std::string(parts.path);
    return route;
  }
  return fail(Error::client(ErrorCode::kNotFound,
                            "till: no API path; use /proxy/{provider}/… or /v1/…"));
}

}  // namespace till
