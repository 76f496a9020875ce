// The HTTP/1.1 server behind `till serve`.
//
// HttpServer owns a listening socket, one accept thread and N I/O threads, each running its own
// io_context ("one io_context per core"). The accept thread hands every accepted connection to the
// I/O thread that currently has the fewest connections; the connection then lives on that thread
// alone, so per-connection state needs no locks. Requests on a connection are read, handled and
// answered one at a time (keep-alive; pipelined requests are answered in order).
//
// The server answers transport-level problems itself, through the ErrorResponder, and then closes
// the connection: a header block or body over the limits → kRequestTooLarge (413), a malformed
// request → kInvalidRequest (400), a client too slow to send its header block or body →
// kRequestTimeout (408). A handler that throws → kInternal (500), and the connection survives.
//
// A handler may answer a request itself (HttpResponse) or ask the server to forward it upstream
// (Forward, include/till/forward.h). A forward runs asynchronously on the connection's I/O thread,
// which serves its other connections meanwhile: the upstream connection comes from that thread's
// pool (keep-alive, plain or TLS), and the response is relayed as it arrives, one chunk read from
// upstream written to the client before the next is read. Failures are reported to the Forward's
// observer exactly once, as forward.h describes: upstream unreachable or broken → kUpstreamError,
// upstream too slow → kUpstreamTimeout, client gone or too slow to read → kUnavailable from
// ErrorSource::kClient, shutdown grace expired → kUnavailable. After a failure that happens once
// part of the response was sent, the client connection is closed.
//
// This header does not include Boost; the implementation lives in server.cc (the upstream client
// in upstream_client.cc).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "till/error.h"
#include "till/forward.h"
#include "till/http.h"

namespace till {

struct ServerOptions {
  // "host:port"; the host is an IP literal or a name resolved once at start ("localhost"); IPv6
  // literals in brackets ("[::1]:0"). Port 0 picks an ephemeral port (see local_address()).
  std::string listen = "127.0.0.1:4100";
  int threads = 0;                           // I/O threads; 0 = std::thread::hardware_concurrency()
  size_t max_header_bytes = 64 * 1024;       // request line + header fields
  size_t max_body_bytes = 32 * 1024 * 1024;  // after de-chunking
  // To receive a complete header block, counted from the connect for a connection's first request
  // and from the first byte for later ones; a client that sends nothing is closed without a word.
  std::chrono::milliseconds header_timeout{30'000};
  std::chrono::milliseconds body_timeout{60'000};    // header complete → complete body
  std::chrono::milliseconds idle_timeout{75'000};    // keep-alive wait for the next request
  std::chrono::milliseconds send_timeout{60'000};    // to write one response to the client
  std::chrono::milliseconds shutdown_grace{10'000};  // how long stop() lets in-flight work run
  UpstreamOptions upstream;  // for forwards: timeouts, pooling, extra trusted CAs
};

// Handles one complete request; called on an I/O thread, concurrently from several threads, so it
// must be thread-safe. It may modify or move from the request. It returns a response, or a Forward
// for the server to perform (its observer must not be null; a null one gets a 500). It should not
// throw; if it does, the client gets the ErrorResponder's 500. While it runs, its I/O thread serves
// no other connection: it must not wait on slow things (a forward's upstream exchange does not
// block the thread).
using RequestHandler = std::function<HandlerResult(HttpRequest&)>;

// Renders the server's own errors (413, 400, 408, 500) in the product's error format. Called on an
// I/O thread; must be thread-safe. Should not throw (a plain-text fallback is sent if it does).
using ErrorResponder = std::function<HttpResponse(const Error&)>;

// Thread-safety: all member functions may be called from any thread, except that wait() and the
// destructor must not be called from a handler (they would wait for themselves).
class HttpServer {
 public:
  // Binds and listens on options.listen, then starts the accept and I/O threads. Errors:
  // kUnavailable if the address is invalid, cannot be resolved or is in use (the message names the
  // address); kInvalidRequest for nonsensical options (negative threads, zero limits or timeouts)
  // or an unreadable options.upstream.extra_ca_file (field "upstream_ca").
  static Result<std::unique_ptr<HttpServer>> start(ServerOptions options, RequestHandler handler,
                                                   ErrorResponder error_responder);

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();  // stop() then wait()

  // The bound address as "127.0.0.1:43123" or "[::1]:43123": the real port when listening on 0.
  std::string local_address() const;

  // Begins a graceful stop and returns at once: closes the listening socket (new connections are
  // refused), closes connections idle in keep-alive and idle pooled upstream connections, lets
  // requests in flight (forwards included) finish and answers them with `Connection: close` (or
  // closes after the response, if its head was already sent). After shutdown_grace, connections
  // still open are closed and forwards still running are cancelled (their observers get
  // on_failure(kUnavailable)). A handler that is running cannot be interrupted: its thread finishes
  // it first. Idempotent.
  void stop();

  // Blocks until the server has fully stopped (after stop(), or never if stop() is not called).
  void wait();

  struct Activity {
    int64_t connections = 0;  // client connections open
    int64_t forwards = 0;     // requests being relayed to an upstream (streams included)
  };
  // A snapshot, from any thread (relaxed counters: each figure is exact at some recent moment).
  Activity activity() const;

 private:
  class Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace till
