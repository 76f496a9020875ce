// The contract between the request path (src/proxy, transport-free) and the transport (src/http):
// how a handler asks the server to forward a request upstream and stream the answer back, and
// how the proxy observes that exchange to meter and settle it.
//
// Flow for one proxied request:
//   1. The server calls the handler (synchronously, on an I/O thread). The handler routes,
//      authenticates, authorizes and reserves budget, then returns either a complete
//      HttpResponse (e.g. an error in the client's dialect) or a Forward.
//   2. For a Forward, the server sends `request` to `request.upstream` over a pooled connection
//      (asynchronously, on the same I/O thread), and relays the response to the client as it
//      arrives: head first, then each body chunk as soon as it is read — never buffered whole.
//   3. The server reports the exchange to `observer`, in this order:
//        on_response_head(...)            once, if the upstream answered with a head
//        on_response_body(chunk)          zero or more times, before the chunk is sent on
//        on_complete() or on_failure(e)   exactly one of them, last
//      If the failure happens before anything was sent to the client, the server sends
//      observer->render_error(e) as the response. After the last call the server destroys the
//      observer (on the same thread).
//
// Threading: all observer calls for one exchange happen on one I/O thread, one at a time; an
// observer need not be thread-safe, but what it shares with other requests must be.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "till/error.h"
#include "till/http.h"

namespace till {

// Where a request goes: parsed from a provider base URL such as "https://api.openai.com/v1".
struct UpstreamEndpoint {
  bool tls = true;
  std::string host;         // name or IP literal (no brackets)
  uint16_t port = 443;
  std::string base_path;    // path prefix without trailing '/', e.g. "" or "/openai"

  // "https://api.openai.com", "http://127.0.0.1:9000/prefix". kInvalidRequest on anything else
  // (other schemes, user info, query, fragment).
  static Result<UpstreamEndpoint> parse(std::string_view url);
  std::string origin() const;  // "https://api.openai.com:443" style, for pool keys and messages
};

struct UpstreamRequest {
  UpstreamEndpoint upstream;
  std::string method;
  std::string target;    // full path + query to send, base_path already prepended
  HttpHeaders headers;   // sent as given; the transport sets Host, Content-Length and
                         // Connection itself and never forwards hop-by-hop headers
  std::string body;
  bool idempotent = false;  // a failed non-idempotent request is never retried
};

class ExchangeObserver {
 public:
  virtual ~ExchangeObserver() = default;

  // The upstream's status and headers (hop-by-hop headers already removed). The observer may
  // edit `headers`: what it leaves is what the client gets.
  virtual void on_response_head(int status, HttpHeaders& headers) = 0;

  // One chunk of the response body (de-chunked) as read from upstream, before it is sent on.
  virtual void on_response_body(std::string_view chunk) = 0;

  // The whole response was read from upstream. Called before its last bytes are written to the
  // client, so a client that has read the whole response sees the exchange's effects (its
  // settled budget) in its next request; a client that fails to read the end changes nothing.
  virtual void on_complete() = 0;

  // The exchange failed: upstream unreachable (kUpstreamError), timed out (kUpstreamTimeout),
  // reset mid-body (kUpstreamError), or the client went away (kUnavailable, source kClient), or
  // the server is shutting down (kUnavailable).
  virtual void on_failure(const Error& error) = 0;

  // The response to send when the exchange fails before anything reached the client.
  virtual HttpResponse render_error(const Error& error) = 0;
};

struct Forward {
  UpstreamRequest request;
  std::unique_ptr<ExchangeObserver> observer;  // never null
};

// What a handler returns: an immediate response, or a request to forward.
using HandlerResult = std::variant<HttpResponse, Forward>;

// Upstream connection settings, set once when the server starts.
struct UpstreamOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds response_timeout{600'000};  // request sent → response head
  std::chrono::milliseconds idle_timeout{300'000};      // between two body reads
  size_t max_idle_connections_per_host = 64;           // per I/O thread
  std::string extra_ca_file;  // PEM file of additional trusted CAs (--upstream-ca); empty = none
};

}  // namespace till
