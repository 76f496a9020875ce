// UpstreamConnection and UpstreamPool: Asio sockets (optionally wrapped in asio::ssl::stream) and
// Beast's HTTP/1 response parser, driven by the server's coroutines.
//
// Reading. Each connection owns one flat_buffer for its whole life. A subclass of
// beast::http::basic_parser stores the head into a reused HttpHeaders and reports body bytes as
// views into that buffer (body_pieces()); the bytes are consumed only when the caller asks for the
// next pieces, so a body is relayed without being copied and without being buffered whole.
//
// Cancellation. cancel() closes the socket: an operation in progress completes with
// operation_aborted, and because a composed operation (async_write, a TLS read needing several
// socket reads) might sit between two socket operations at that moment, every later step checks
// the sticky `cancelled_` flag first.
#include "http/upstream_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cerrno>
#include <charconv>
#include <tuple>
#include <utility>

namespace till {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCodeT = boost::system::error_code;

struct UpstreamTls::Impl {
  // Mutable: asio::ssl::stream wants a non-const context to create its SSL object; the context
  // itself is not modified after create().
  mutable asio::ssl::context context{asio::ssl::context::tls_client};
};

namespace {

using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Resolver = asio::ip::basic_resolver<tcp, Executor>;
using TlsStream = asio::ssl::stream<Socket>;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

constexpr size_t kReadChunk = 32 * 1024;                  // asked of the socket per read
constexpr uint32_t kMaxResponseHeaderBytes = 256 * 1024;  // status line + header fields
constexpr size_t kTlsCoalesceLimit = 16 * 1024;  // bodies up to this go in the head's TLS record

// The most recent OpenSSL error as text ("no certificate or crl found"), and clears the queue.
std::string openssl_error_text() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(code);
  return reason ? reason : "error " + std::to_string(code);
}

bool is_token_char(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return is_token_char(static_cast<unsigned char>(c));
  });
}

bool is_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

bool is_origin_form_target(std::string_view s) {
  return s.starts_with('/') && std::all_of(s.begin(), s.end(), [](char ch) {
           auto c = static_cast<unsigned char>(ch);
           return c > 0x20 && c != 0x7f;
         });
}

// Hop-by-hop fields (RFC 9110 §7.6.1) plus Keep-Alive and the Proxy-* family, which are
// hop-by-hop in practice.
bool is_hop_by_hop(std::string_view name) {
  if (name.size() >= 6 && header_name_equals(name.substr(0, 6), "proxy-")) return true;
  return header_name_equals(name, "connection") || header_name_equals(name, "keep-alive") ||
         header_name_equals(name, "te") || header_name_equals(name, "trailer") ||
         header_name_equals(name, "transfer-encoding") || header_name_equals(name, "upgrade");
}

// True if the comma-separated `list` (a Connection header value) names `token`.
bool list_contains_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (header_name_equals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// Joins the values of every Connection header into `out` (comma-separated); false if none.
bool collect_connection_tokens(const HttpHeaders& headers, std::string& out) {
  out.clear();
  bool found = false;
  for (const HttpHeader& h : headers) {
    if (!header_name_equals(h.name, "connection")) continue;
    if (found) out.push_back(',');
    out.append(h.value);
    found = true;
  }
  return found;
}

// A short, lower-case cause for a transport error; never contains anything we sent.
std::string describe(const ErrorCodeT& ec) {
  if (ec == asio::error::connection_refused) return "connection refused";
  if (ec == asio::error::connection_reset) return "connection reset";
  if (ec == asio::error::broken_pipe) return "connection closed (broken pipe)";
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    return "connection closed";
  }
  if (ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again) {
    return "unknown host";
  }
  if (ec == asio::error::network_unreachable || ec == asio::error::host_unreachable) {
    return "network unreachable";
  }
  std::string text = ec.message();
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') text[0] = static_cast<char>(text[0] + 32);
  return text;
}

Error upstream_error(std::string message, bool retryable = false) {
  return Error{
      ErrorCode::kUpstreamError, ErrorSource::kUpstream, retryable, std::move(message), {}};
}

// Beast's response parser writing the head into reused storage and reporting body bytes as views
// into the caller's buffer (valid until the caller consumes them).
class ResponseParser final : public http::basic_parser<false> {
 public:
  ResponseParser(HttpHeaders& headers, std::vector<std::string_view>& pieces,
                 std::string& connection_tokens)
      : headers_(headers), pieces_(pieces), connection_tokens_(connection_tokens) {}

  int status() const { return status_; }

 private:
  void on_request_impl(http::verb /*method*/, beast::string_view /*method_str*/,
                       beast::string_view /*target*/, int /*version*/,
                       ErrorCodeT& /*ec*/) override {}

  void on_response_impl(int code, beast::string_view /*reason*/, int /*version*/,
                        ErrorCodeT& /*ec*/) override {
    status_ = code;
  }

  void on_field_impl(http::field /*field*/, beast::string_view name, beast::string_view value,
                     ErrorCodeT& /*ec*/) override {
    if (header_done_) return;  // trailer fields of a chunked body are dropped
    if (used_ == headers_.size()) headers_.emplace_back();
    HttpHeader& header = headers_[used_++];
    header.name.assign(name.data(), name.size());
    for (char& c : header.name) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    header.value.assign(value.data(), value.size());
  }

  void on_header_impl(ErrorCodeT& /*ec*/) override {
    header_done_ = true;
    headers_.resize(used_);
    // Remove hop-by-hop fields and those the Connection header names, keeping the order and the
    // kept strings' capacity.
    bool listed = collect_connection_tokens(headers_, connection_tokens_);
    size_t kept = 0;
    for (size_t i = 0; i < headers_.size(); ++i) {
      const std::string& name = headers_[i].name;
      if (is_hop_by_hop(name) || (listed && list_contains_token(connection_tokens_, name)))
        continue;
      if (kept != i) std::swap(headers_[kept], headers_[i]);
      ++kept;
    }
    headers_.resize(kept);
  }

  void on_body_init_impl(const boost::optional<std::uint64_t>& /*content_length*/,
                         ErrorCodeT& /*ec*/) override {}

  size_t on_body_impl(beast::string_view body, ErrorCodeT& /*ec*/) override {
    if (!body.empty()) pieces_.emplace_back(body.data(), body.size());
    return body.size();
  }

  void on_chunk_header_impl(std::uint64_t /*size*/, beast::string_view /*extensions*/,
                            ErrorCodeT& /*ec*/) override {}

  size_t on_chunk_body_impl(std::uint64_t /*remain*/, beast::string_view body,
                            ErrorCodeT& /*ec*/) override {
    if (!body.empty()) pieces_.emplace_back(body.data(), body.size());
    return body.size();
  }

  void on_finish_impl(ErrorCodeT& /*ec*/) override {}

  HttpHeaders& headers_;
  std::vector<std::string_view>& pieces_;
  std::string& connection_tokens_;
  int status_ = 0;
  size_t used_ = 0;
  bool header_done_ = false;
};

class UpstreamConnectionImpl final : public UpstreamConnection {
 public:
  UpstreamConnectionImpl(asio::io_context& ioc, const UpstreamEndpoint& endpoint,
                         const UpstreamTls& tls)
      : host_(endpoint.host), port_(std::to_string(endpoint.port)), resolver_(ioc.get_executor()) {
    append_origin(origin_, endpoint);
    bool v6 = host_.find(':') != std::string::npos;
    host_header_ = v6 ? "[" + host_ + "]" : host_;
    if (endpoint.port != (endpoint.tls ? 443 : 80)) host_header_ += ":" + port_;
    if (endpoint.tls) {
      tls_.emplace(ioc.get_executor(), tls.impl().context);
    } else {
      plain_.emplace(ioc.get_executor());
    }
  }

  const std::string& origin() const override { return origin_; }

  asio::awaitable<Result<void>> connect() override {
    if (cancelled_) co_return fail(cancelled_error());
    ErrorCodeT ec;
    asio::ip::address literal = asio::ip::make_address(host_, ec);
    ErrorCodeT connect_ec;
    if (!ec) {
      std::array<tcp::endpoint, 1> endpoints{tcp::endpoint(literal, port_number())};
      auto [e, unused] = co_await asio::async_connect(socket(), endpoints, kUseTuple);
      connect_ec = e;
    } else {
      auto [resolve_ec, results] = co_await resolver_.async_resolve(host_, port_, kUseTuple);
      if (cancelled_) co_return fail(cancelled_error());
      if (resolve_ec || results.empty()) {
        co_return fail(upstream_error("cannot resolve the host of upstream " + origin_ + ": " +
                                          (resolve_ec ? describe(resolve_ec) : "no address"),
                                      /*retryable=*/true));
      }
      auto [e, unused] = co_await asio::async_connect(socket(), results, kUseTuple);
      connect_ec = e;
    }
    if (cancelled_) co_return fail(cancelled_error());
    if (connect_ec) {
      co_return fail(upstream_error(
          "cannot connect to upstream " + origin_ + ": " + describe(connect_ec), true));
    }
    socket().set_option(tcp::no_delay(true), ec);
    if (!tls_) co_return Result<void>{};

    SSL* ssl = tls_->native_handle();
    asio::ip::make_address(host_, ec);
    if (!ec) {
      // An IP literal: verified against the certificate's IP SANs; no SNI (RFC 6066 §3).
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host_.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, host_.c_str());
      SSL_set1_host(ssl, host_.c_str());
    }
    auto [handshake_ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kUseTuple);
    if (cancelled_) co_return fail(cancelled_error());
    if (handshake_ec) {
      long verify = SSL_get_verify_result(ssl);
      std::string cause;
      if (verify != X509_V_OK) {
        cause = std::string("certificate verification failed: ") +
                X509_verify_cert_error_string(verify);
      } else {
        cause = describe(handshake_ec);
      }
      ERR_clear_error();
      co_return fail(upstream_error("TLS handshake with upstream " + origin_ + " failed: " + cause,
                                    /*retryable=*/true));
    }
    co_return Result<void>{};
  }

  asio::awaitable<Result<void>> write_request(const UpstreamRequest& request) override {
    if (cancelled_) co_return fail(cancelled_error());
    if (Result<void> built = serialize(request); !built) co_return built;
    // Reset the exchange state before anything can be answered.
    release();
    exchange_bytes_ = 0;
    eof_ = false;
    parser_.reset();
    pieces_.clear();
    std::string_view body = request.body;
    ErrorCodeT ec;
    if (tls_) {
      if (body.size() <= kTlsCoalesceLimit) {
        out_.append(body);  // one TLS record instead of two
        std::tie(ec, std::ignore) =
            co_await asio::async_write(*tls_, asio::buffer(out_), kUseTuple);
      } else {
        std::array<asio::const_buffer, 2> buffers{asio::buffer(out_), asio::buffer(body)};
        std::tie(ec, std::ignore) = co_await asio::async_write(*tls_, buffers, kUseTuple);
      }
    } else {
      std::array<asio::const_buffer, 2> buffers{asio::buffer(out_), asio::buffer(body)};
      std::tie(ec, std::ignore) = co_await asio::async_write(*plain_, buffers, kUseTuple);
    }
    if (cancelled_) co_return fail(cancelled_error());
    if (ec) {
      co_return fail(upstream_error("upstream " + origin_ +
                                    " failed while the request was being sent: " + describe(ec)));
    }
    co_return Result<void>{};
  }

  asio::awaitable<Result<void>> read_head(bool head_request) override {
    if (cancelled_) co_return fail(cancelled_error());
    head_request_ = head_request;
    start_message();
    for (;;) {
      if (buffer_.size() > parsed_) {
        if (Result<void> parsed = parse(); !parsed) co_return parsed;
        if (parser_->is_header_done()) {
          int status = parser_->status();
          if (status == 101) {
            co_return fail(upstream_error("upstream " + origin_ +
                                          " switched protocols (101), which till does not relay"));
          }
          if (status >= 200) {
            parser_->eager(true);
            co_return Result<void>{};
          }
          release();  // an interim 1xx response: the final one follows
          start_message();
          continue;
        }
      }
      auto [ec, n] = co_await read_some();
      if (cancelled_) co_return fail(cancelled_error());
      if (ec) {
        if (is_eof(ec)) {
          co_return fail(upstream_error(
              exchange_bytes_ == 0
                  ? "upstream " + origin_ + " closed the connection without answering"
                  : "upstream " + origin_ +
                        " closed the connection in the middle of the response "
                        "head"));
        }
        co_return fail(upstream_error("upstream " + origin_ +
                                      " failed before sending a response: " + describe(ec)));
      }
    }
  }

  int status() const override { return parser_ ? parser_->status() : 0; }
  HttpHeaders& headers() override { return headers_; }
  std::optional<uint64_t> content_length() const override {
    if (!parser_) return std::nullopt;
    boost::optional<std::uint64_t> length = parser_->content_length();
    if (!length) return std::nullopt;
    return *length;
  }

  Result<void> take_buffered_body() override {
    release();
    if (cancelled_) return fail(cancelled_error());
    if (!parser_ || parser_->is_done() || buffer_.size() == 0) return {};
    return parse();
  }

  asio::awaitable<Result<void>> read_body() override {
    if (Result<void> buffered = take_buffered_body(); !buffered) co_return buffered;
    while (pieces_.empty() && parser_ && !parser_->is_done()) {
      release();
      auto [ec, n] = co_await read_some();
      if (cancelled_) co_return fail(cancelled_error());
      if (ec) {
        if (is_eof(ec)) {
          eof_ = true;
          ErrorCodeT eof_ec;
          parser_->put_eof(eof_ec);  // completes a body delimited by the close
          if (!eof_ec) co_return Result<void>{};
          co_return fail(upstream_error("upstream " + origin_ +
                                        " closed the connection in the middle of the response"));
        }
        co_return fail(upstream_error("upstream " + origin_ +
                                      " failed in the middle of the response: " + describe(ec)));
      }
      if (Result<void> parsed = parse(); !parsed) co_return parsed;
    }
    co_return Result<void>{};
  }

  const std::vector<std::string_view>& body_pieces() const override { return pieces_; }
  bool body_done() const override { return parser_ && parser_->is_done(); }
  bool received_response_bytes() const override { return exchange_bytes_ > 0; }

  bool reusable() const override {
    return !cancelled_ && !eof_ && parser_ && parser_->is_done() && parser_->keep_alive() &&
           buffer_.size() == parsed_;  // nothing unexpected after the response
  }

  bool idle_and_open() override {
    if (cancelled_ || eof_ || !socket().is_open()) return false;
    char byte;
    ssize_t n = ::recv(socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void cancel() override {
    cancelled_ = true;
    resolver_.cancel();
    ErrorCodeT ec;
    socket().close(ec);
  }

 private:
  Socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }

  uint16_t port_number() const { return static_cast<uint16_t>(std::stoi(port_)); }

  Error cancelled_error() const {
    return upstream_error("the exchange with upstream " + origin_ + " was cancelled");
  }

  static bool is_eof(const ErrorCodeT& ec) {
    return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
  }

  // Builds the request head into out_. Nothing is sent if this fails.
  Result<void> serialize(const UpstreamRequest& request) {
    if (!is_token(request.method)) {
      return fail(Error::internal("the upstream request's method is not a valid HTTP token"));
    }
    if (!is_origin_form_target(request.target)) {
      return fail(Error::internal(
          "the upstream request's target must start with '/' and contain no spaces or control "
          "characters"));
    }
    out_.clear();
    out_.append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\n");
    out_.append("host: ").append(host_header_).append("\r\n");
    bool listed = collect_connection_tokens(request.headers, connection_tokens_);
    for (const HttpHeader& h : request.headers) {
      if (is_hop_by_hop(h.name) || header_name_equals(h.name, "host") ||
          header_name_equals(h.name, "content-length") || header_name_equals(h.name, "expect") ||
          (listed && list_contains_token(connection_tokens_, h.name))) {
        continue;
      }
      if (!is_token(h.name)) {
        return fail(Error::internal("an upstream request header name is not a valid token"));
      }
      if (!is_field_value(h.value)) {
        // Name the header, never its value: it may be a credential.
        return fail(Error::internal("the value of upstream request header \"" + h.name +
                                    "\" contains a line break or control character"));
      }
      out_.append(h.name).append(": ").append(h.value).append("\r\n");
    }
    const std::string& m = request.method;
    if (!request.body.empty() || m == "POST" || m == "PUT" || m == "PATCH") {
      out_.append("content-length: ").append(std::to_string(request.body.size())).append("\r\n");
    }
    out_.append("\r\n");
    return {};
  }

  void start_message() {
    parser_.emplace(headers_, pieces_, connection_tokens_);
    parser_->header_limit(kMaxResponseHeaderBytes);
    parser_->body_limit(boost::none);
    parser_->eager(false);  // stop after the head; the body is parsed on request
    parser_->skip(head_request_);
  }

  // Drops the pieces handed out and the bytes they came from.
  void release() {
    buffer_.consume(parsed_);
    parsed_ = 0;
    pieces_.clear();
  }

  // Feeds the parser the buffered bytes it has not seen; stops at the end of the head (while the
  // parser is not eager), at the end of the message, or when it needs more bytes.
  Result<void> parse() {
    while (parsed_ < buffer_.size() && !parser_->is_done()) {
      auto data = static_cast<const char*>(buffer_.data().data());
      ErrorCodeT ec;
      size_t used = parser_->put(asio::const_buffer(data + parsed_, buffer_.size() - parsed_), ec);
      parsed_ += used;
      if (ec == http::error::need_more) break;
      if (ec == http::error::header_limit) {
        return fail(upstream_error("upstream " + origin_ + " sent a response head over " +
                                   std::to_string(kMaxResponseHeaderBytes / 1024) + " KiB"));
      }
      if (ec) {
        return fail(upstream_error("upstream " + origin_ + " sent a malformed response (" +
                                   ec.message() + ")"));
      }
      if (used == 0) break;
      if (parser_->is_header_done() && !parser_->eager()) break;
    }
    return {};
  }

  asio::awaitable<std::tuple<ErrorCodeT, size_t>> read_some() {
    ErrorCodeT ec;
    size_t n = 0;
    if (tls_) {
      std::tie(ec, n) = co_await tls_->async_read_some(buffer_.prepare(kReadChunk), kUseTuple);
    } else {
      std::tie(ec, n) = co_await plain_->async_read_some(buffer_.prepare(kReadChunk), kUseTuple);
    }
    buffer_.commit(n);
    exchange_bytes_ += n;
    co_return std::tuple<ErrorCodeT, size_t>{ec, n};
  }

  std::string host_;
  std::string port_;
  std::string origin_;
  std::string host_header_;
  Resolver resolver_;
  std::optional<Socket> plain_;
  std::optional<TlsStream> tls_;

  beast::flat_buffer buffer_;
  size_t parsed_ = 0;  // leading bytes of buffer_ the parser has seen
  std::optional<ResponseParser> parser_;
  HttpHeaders headers_;
  std::vector<std::string_view> pieces_;
  std::string out_;                // the serialized request head
  std::string connection_tokens_;  // scratch: Connection header values
  size_t exchange_bytes_ = 0;      // response bytes received in the current exchange
  bool head_request_ = false;
  bool eof_ = false;
  bool cancelled_ = false;
};

}  // namespace

UpstreamTls::UpstreamTls(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UpstreamTls::~UpstreamTls() = default;

Result<std::unique_ptr<UpstreamTls>> UpstreamTls::create(const UpstreamOptions& options) {
  std::unique_ptr<Impl> impl;
  try {
    impl = std::make_unique<Impl>();
  } catch (const std::exception& e) {
    return fail(Error::internal(std::string("cannot create the TLS client context: ") + e.what()));
  }
  SSL_CTX* ctx = impl->context.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  // A missing system store is not fatal here: handshakes then fail with a clear verify error.
  SSL_CTX_set_default_verify_paths(ctx);
  ERR_clear_error();
  if (!options.extra_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.extra_ca_file.c_str(), nullptr) != 1) {
      return fail(Error::invalid("upstream_ca", "cannot load upstream CA certificates from \"" +
                                                    options.extra_ca_file +
                                                    "\": " + openssl_error_text()));
    }
  }
  return std::unique_ptr<UpstreamTls>(new UpstreamTls(std::move(impl)));
}

std::unique_ptr<UpstreamConnection> make_upstream_connection(asio::io_context& ioc,
                                                             const UpstreamEndpoint& endpoint,
                                                             const UpstreamTls& tls) {
  return std::make_unique<UpstreamConnectionImpl>(ioc, endpoint, tls);
}

void append_origin(std::string& out, const UpstreamEndpoint& endpoint) {
  out.append(endpoint.tls ? "https://" : "http://");
  bool v6 = endpoint.host.find(':') != std::string::npos;
  if (v6) out.push_back('[');
  out.append(endpoint.host);
  if (v6) out.push_back(']');
  out.push_back(':');
  std::array<char, 8> digits{};
  auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), endpoint.port);
  out.append(digits.data(), end);
}

UpstreamPool::UpstreamPool(asio::io_context& ioc, const UpstreamTls& tls,
                           size_t max_idle_connections_per_host)
    : ioc_(ioc), tls_(tls), max_idle_per_host_(max_idle_connections_per_host) {}

std::unique_ptr<UpstreamConnection> UpstreamPool::take_idle(const UpstreamEndpoint& endpoint) {
  key_.clear();
  append_origin(key_, endpoint);
  auto it = idle_.find(std::string_view(key_));
  if (it == idle_.end()) return nullptr;
  std::vector<Idle>& list = it->second;
  auto now = std::chrono::steady_clock::now();
  while (!list.empty()) {
    Idle idle = std::move(list.back());
    list.pop_back();
    if (now - idle.since > kMaxIdleTime) {
      list.clear();  // the rest are older still
      break;
    }
    if (idle.connection->idle_and_open()) return std::move(idle.connection);
  }
  return nullptr;
}

std::unique_ptr<UpstreamConnection> UpstreamPool::make(const UpstreamEndpoint& endpoint) {
  return make_upstream_connection(ioc_, endpoint, tls_);
}

void UpstreamPool::release(std::unique_ptr<UpstreamConnection> connection) {
  if (closed_ || max_idle_per_host_ == 0 || !connection || !connection->reusable()) return;
  auto it = idle_.find(std::string_view(connection->origin()));
  if (it == idle_.end()) it = idle_.emplace(connection->origin(), std::vector<Idle>()).first;
  std::vector<Idle>& list = it->second;
  if (list.size() >= max_idle_per_host_) list.erase(list.begin());
  list.push_back(Idle{std::move(connection), std::chrono::steady_clock::now()});
}

void UpstreamPool::close_all() {
  closed_ = true;
  idle_.clear();
}

size_t UpstreamPool::idle_count() const {
  size_t n = 0;
  for (const auto& [origin, list] : idle_) n += list.size();
  return n;
}

}  // namespace till
