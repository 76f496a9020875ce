// A small blocking HTTP/1.1 client for the CLI and tests: one request per connection.
//
// http:// and https:// (certificates verified against the system's CAs and the host name). This
// header does not include Boost; the implementation lives in client.cc. Thread-safety: http_call may be called from any number of threads at once; each call
// uses its own connection and I/O context.
#pragma once

#include <chrono>
#include <string_view>

#include "till/error.h"
#include "till/http.h"

namespace till {

// Sends one request to `base_url` + `target` and returns the complete response, whatever its
// status.
//
// base_url: "http[s]://HOST[:PORT][/PREFIX][/]" — HOST is a name ("localhost"), an IPv4 literal or
// a bracketed IPv6 literal ("[::1]"); PORT defaults to 80 (443 for https); a PREFIX path is
// prepended to `target`.
// target: starts with '/', may carry a query string. `headers` are sent as given, except that the
// client sets Content-Length and Connection itself (and Host, unless `headers` has one). The
// response's header names are lower-cased.
// `timeout` bounds the whole exchange (connect, send, receive); name resolution is not bounded.
//
// Errors (messages never contain header values, which may be secrets):
//   kInvalidRequest — base_url is not a usable URL (the message names TILL_URL, where the CLI gets
//                     it), or the method, target or a header cannot be sent (line breaks, …).
//   kUnavailable    — "cannot reach till at http://127.0.0.1:4100: connection refused", likewise
//                     for unknown hosts, timeouts, resets and malformed responses. `retryable` is
//                     true only when the request was certainly not delivered (connect failed).
Result<HttpResponse> http_call(std::string_view base_url, std::string_view method,
                               std::string_view target, const HttpHeaders& headers,
                               std::string_view body,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace till
