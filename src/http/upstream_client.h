// The server's side of forwarding (include/till/forward.h): HTTP/1.1 client connections to
// upstreams, plain or TLS, and the per-I/O-thread pool that keeps them alive between requests.
//
// Internal to src/http (the server is the only user). It exposes Asio's awaitable type, but not
// Beast or OpenSSL: those stay in upstream_client.cc.
//
// Ownership: an UpstreamPool belongs to one I/O thread (one io_context) and hands out connections
// as unique_ptrs; the caller gives a connection back with release() or destroys it (closing the
// socket). UpstreamTls is shared by every pool of a server and outlives them.
//
// Thread-safety: UpstreamTls is immutable after create() and may be used from any thread.
// UpstreamPool and UpstreamConnection are not synchronised: use them only on the thread running
// the io_context they were created with.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "till/error.h"
#include "till/forward.h"
#include "till/http.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace till {

// The TLS client configuration of a server: one SSL_CTX that verifies upstream certificates
// against the system trust store plus UpstreamOptions::extra_ca_file.
class UpstreamTls {
 public:
  // Errors: kInvalidRequest (field "upstream_ca") if extra_ca_file cannot be read or holds no
  // certificate; kInternal if OpenSSL cannot create a context.
  static Result<std::unique_ptr<UpstreamTls>> create(const UpstreamOptions& options);

  UpstreamTls(const UpstreamTls&) = delete;
  UpstreamTls& operator=(const UpstreamTls&) = delete;
  ~UpstreamTls();

  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  explicit UpstreamTls(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One HTTP/1.1 connection to one upstream origin. Exchanges run one after the other:
//   connect() once (fresh connections only), then per request:
//   write_request() → read_head() → { take_buffered_body() | read_body() } until body_done().
// Every awaitable completes on the connection's io_context. None has its own timer: the caller
// bounds each step and calls cancel() when a deadline passes (or the client leaves, or the server
// stops). Errors are kUpstreamError with a message naming origin() and the cause, never a header
// value; after cancel() every step fails (the error to report is then the caller's).
class UpstreamConnection {
 public:
  virtual ~UpstreamConnection() = default;

  // "https://api.openai.com:443": the pool key, and the name used in error messages.
  virtual const std::string& origin() const = 0;

  // Resolves the host (unless it is an IP literal), connects (trying each address in turn), sets
  // TCP_NODELAY and, for https, performs the TLS handshake: SNI, chain verified against the trust
  // store, host name (or IP) verified against the certificate. Errors are retryable: nothing was
  // sent.
  virtual boost::asio::awaitable<Result<void>> connect() = 0;

  // Sends the request line, headers and body. The transport writes Host, Content-Length (when a
  // body is sent or the method usually has one) and drops hop-by-hop headers, Host, Content-Length
  // and Expect from `request.headers`. kInternal if the method, target or a header is not
  // sendable (nothing is sent then).
  virtual boost::asio::awaitable<Result<void>> write_request(const UpstreamRequest& request) = 0;

  // Reads the response head, skipping interim 1xx responses. `head_request`: the response has no
  // body whatever its headers say. Afterwards status() and headers() describe it.
  virtual boost::asio::awaitable<Result<void>> read_head(bool head_request) = 0;

  virtual int status() const = 0;
  // The response headers, names lower-cased, hop-by-hop ones (and those named in Connection)
  // removed. Valid until the next write_request(); the caller may edit them.
  virtual HttpHeaders& headers() = 0;
  // The upstream's Content-Length, if it framed the body with one.
  virtual std::optional<uint64_t> content_length() const = 0;

  // Body access. Both calls first drop the previous pieces, then fill body_pieces() with the body
  // bytes that follow (de-chunked). take_buffered_body() only parses what is already buffered (it
  // may leave body_pieces() empty); read_body() reads from the socket until there is at least one
  // piece or the body is complete. The pieces point into the connection's read buffer and stay
  // valid until the next call on the connection.
  virtual Result<void> take_buffered_body() = 0;
  virtual boost::asio::awaitable<Result<void>> read_body() = 0;
  virtual const std::vector<std::string_view>& body_pieces() const = 0;
  virtual bool body_done() const = 0;

  // True once any byte of the current exchange's response has been received.
  virtual bool received_response_bytes() const = 0;

  // The exchange completed and the upstream keeps the connection open: it may be pooled.
  virtual bool reusable() const = 0;

  // False if the peer has closed the idle connection or sent something unsolicited (checked
  // without blocking). Only meaningful between exchanges.
  virtual bool idle_and_open() = 0;

  // Aborts the step in progress and every later one (sticky). The connection can only be
  // destroyed afterwards.
  virtual void cancel() = 0;
};

// A new, unconnected connection to `endpoint` (its base_path is ignored). `tls` must outlive it.
std::unique_ptr<UpstreamConnection> make_upstream_connection(boost::asio::io_context& ioc,
                                                             const UpstreamEndpoint& endpoint,
                                                             const UpstreamTls& tls);

// Idle keep-alive connections of one I/O thread, keyed by origin, most recently used first.
class UpstreamPool {
 public:
  // Connections idle longer than this are closed rather than reused: upstreams close their idle
  // connections on their own schedule, and an old one is the likeliest to race our next request.
  static constexpr std::chrono::seconds kMaxIdleTime{50};

  UpstreamPool(boost::asio::io_context& ioc, const UpstreamTls& tls,
               size_t max_idle_connections_per_host);

  // An idle connection to `endpoint`'s origin that is still open (stale ones are closed on the
  // way), or nullptr.
  std::unique_ptr<UpstreamConnection> take_idle(const UpstreamEndpoint& endpoint);

  // A new unconnected connection to `endpoint`.
  std::unique_ptr<UpstreamConnection> make(const UpstreamEndpoint& endpoint);

  // Keeps `connection` for reuse if it is reusable() and there is room (the oldest idle one of
  // its origin makes room); otherwise closes it. After close_all(), closes everything it gets.
  void release(std::unique_ptr<UpstreamConnection> connection);

  // Closes every idle connection and stops pooling (server shutdown).
  void close_all();

  size_t idle_count() const;

 private:
  struct Idle {
    std::unique_ptr<UpstreamConnection> connection;
    std::chrono::steady_clock::time_point since;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  boost::asio::io_context& ioc_;
  const UpstreamTls& tls_;
  size_t max_idle_per_host_;
  bool closed_ = false;
  std::string key_;  // scratch for the origin of a lookup, reused to avoid allocating
  // Per origin, oldest first.
  std::unordered_map<std::string, std::vector<Idle>, StringHash, std::equal_to<>> idle_;
};

// Appends `endpoint`'s origin ("https://host:443") to `out`; the same text as origin().
void append_origin(std::string& out, const UpstreamEndpoint& endpoint);

}  // namespace till
