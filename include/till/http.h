// HTTP messages as the rest of till sees them: plain values, independent of the transport library.
//
// The server (src/http/server.h) fills an HttpRequest per request and sends back the HttpResponse a
// handler returns; the blocking client (src/http/client.h) does the reverse. Nothing here includes
// Boost, so any layer may use these types. All types are plain values: not synchronised, safe to
// use from one thread at a time.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace till {

struct HttpHeader {
  std::string name;   // lower-case when produced by the server or the client
  std::string value;  // may carry a secret (Authorization): never log or echo it in an error
};

using HttpHeaders = std::vector<HttpHeader>;

// ASCII case-insensitive equality, as HTTP field names compare.
inline bool header_name_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// The value of the first header named `name` (compared case-insensitively), or nullopt. The view
// points into `headers` and is valid while they are not modified. Inline so that layers which do
// not link the transport (api, proxy) can use it.
inline std::optional<std::string_view> find_header(const HttpHeaders& headers,
                                                   std::string_view name) {
  for (const HttpHeader& h : headers) {
    if (header_name_equals(h.name, name)) return std::string_view(h.value);
  }
  return std::nullopt;
}

struct HttpRequest {
  std::string method;          // as received, case-sensitive: "GET", "POST", …
  std::string target;          // the raw request-target: "/api/v1/keys?status=active"
  HttpHeaders headers;         // in order received, names lower-cased; trailers are not included
  std::string body;            // de-chunked
  std::string remote_address;  // peer IP as text: "127.0.0.1", "::1" (IPv4-mapped shown as IPv4)
  int version = 11;            // 10 for HTTP/1.0, 11 for HTTP/1.1

  // First header with this name (case-insensitive), or nullopt.
  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }
};

struct HttpResponse {
  int status = 200;
  // Set by the handler. The server owns the framing headers and ignores these if a handler sets
  // them: Content-Length, Transfer-Encoding, Connection, Date. A handler may ask the server to
  // close the connection after this response with `Connection: close`.
  HttpHeaders headers;
  std::string body;

  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }
};

}  // namespace till
