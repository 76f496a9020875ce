// HttpServer: Boost.Beast's HTTP/1 parser driven by Asio C++20 coroutines.
//
// Threads. One accept thread runs an io_context holding only the listening socket; N I/O threads
// each run their own io_context (concurrency hint 1). When the listening socket is readable the
// accept thread picks the I/O thread with the fewest open connections (round-robin among equals),
// accepts straight onto that thread's io_context and posts the connection to it. From then on the
// connection is touched only by its thread.
//
// Why one acceptor and not SO_REUSEPORT (one listening socket per io_context): the kernel spreads
// SO_REUSEPORT connections by a hash of the 4-tuple, so 32 keep-alive connections over 2 threads
// split like coin flips (19/13 is common) and the imbalance lasts as long as the connections do;
// choosing at accept time gives an exact 16/16 and keeps balancing as connections come and go.
// SO_REUSEPORT would also let a second till bind the same port silently instead of failing with
// "address already in use", drop connections queued on a listener when it closes, and need a
// bind-then-rebind dance for port 0. The price of one acceptor is one accept(2) per connection on
// one thread, which is nothing next to a keep-alive connection's requests. The accept thread is
// separate from the I/O threads so that a handler blocking an I/O thread never delays accepting,
// nor stop() closing the listening socket.
//
// Connection life: run() spawns serve() (read → handle → write, one request at a time) and
// watchdog() (one timer per connection that cancels the socket when the current phase's deadline
// passes). Each phase sets its deadline: header, body, handler (none), send, idle, linger.
//
// Forwarding. When the handler returns a Forward, serve() runs relay() in the same coroutine, on
// the same thread: take a pooled upstream connection (or connect a new one), write the request,
// read the head, then alternately read what upstream has sent and write it to the client, so a
// slow client slows the upstream reads and nothing is buffered beyond one read. The response head
// is held back until the first body bytes (or until a read would block) so that a small response
// goes out in one write. The watchdog also bounds the upstream steps (connect, head, idle between
// body reads); past a deadline it cancels the upstream connection instead of the client socket.
// To notice a client that leaves while upstream is silent (a long generation, an SSE stream), a
// "watch" read is kept pending on the client socket during the forward: EOF or an error there
// cancels the upstream exchange. If the client sends its next request instead, the watch simply
// delivers those bytes to the buffer; if the forward ends first, the pending watch read doubles as
// the keep-alive wait for the next request (so it costs no extra system call). Every cancellation
// records its reason once (interruption_), and the failure reported to the observer is that reason.
//
// Stop: stop() sets the stopping flag and posts to the accept thread, which closes the listening
// socket and posts begin_shutdown() to every I/O thread before releasing their work guards, so no
// accepted connection can be posted to a thread that has already exited. begin_shutdown() cancels
// reads of connections idle between requests and arms the grace timer; connections with a request
// in flight finish it with `Connection: close`. Each io_context runs out of work when its last
// connection closes, its thread returns, and wait() joins it.
#include "http/server.h"


#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "http/upstream_client.h"

namespace till {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Timer = asio::basic_waitable_timer<SteadyClock, asio::wait_traits<SteadyClock>, Executor>;
using WorkGuard = asio::executor_work_guard<Executor>;
using ErrorCodeT = boost::system::error_code;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

constexpr size_t kReadChunk = 16 * 1024;               // bytes asked of the socket per idle read
constexpr size_t kRetainedBodyCapacity = 1024 * 1024;  // larger request bodies are not kept around
constexpr std::chrono::milliseconds kLingerTimeout{1000};  // draining input before a close
constexpr std::chrono::milliseconds kAcceptBackoff{50};    // after EMFILE and friends
constexpr int kAcceptBatch = 64;                           // accepts per readiness wake-up
constexpr std::string_view k100Continue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

Error make_error(ErrorCode code, ErrorSource source, bool retryable, std::string message) {
  return Error{code, source, retryable, std::move(message), {}};
}

Error unavailable(std::string message) {
  return make_error(ErrorCode::kUnavailable, ErrorSource::kInternal, false, std::move(message));
}

// "64 KiB", "32 MiB", "1000 bytes": limits as a person would write them.
std::string describe_bytes(size_t n) {
  if (n >= 1024 * 1024 && n % (1024 * 1024) == 0) return std::to_string(n / (1024 * 1024)) + " MiB";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n / 1024) + " KiB";
  return std::to_string(n) + " bytes";
}

std::string describe_duration(std::chrono::milliseconds d) {
  if (d.count() >= 1000 && d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

bool ascii_iequals(std::string_view a, std::string_view b) { return header_name_equals(a, b); }

void to_lower_ascii(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

bool is_token_char(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_valid_header_name(std::string_view name) {
  return !name.empty() &&
         std::all_of(name.begin(), name.end(), [](char c) { return is_token_char(c); });
}

// Rejects control characters (response splitting); HTAB and obs-text are allowed.
bool is_valid_header_value(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

// The IMF-fixdate for the Date header, formatted at most once a second per thread.
std::string_view http_date() {
  static constexpr std::array<const char*, 7> kDays{"Sun", "Mon", "Tue", "Wed",
                                                    "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  thread_local std::time_t cached_second = -1;
  thread_local std::array<char, 40> text{};
  thread_local size_t length = 0;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    int n = std::snprintf(text.data(), text.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                          kDays[static_cast<size_t>(tm.tm_wday) % 7], tm.tm_mday,
                          kMonths[static_cast<size_t>(tm.tm_mon) % 12], tm.tm_year + 1900,
                          tm.tm_hour, tm.tm_min, tm.tm_sec);
    length = n > 0 ? static_cast<size_t>(n) : 0;
    cached_second = now;
  }
  return {text.data(), length};
}

std::string format_endpoint(const tcp::endpoint& endpoint) {
  const asio::ip::address& address = endpoint.address();
  std::string host = address.to_string();
  if (address.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

std::string peer_address_text(const Socket& socket) {
  ErrorCodeT ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return {};
  asio::ip::address address = peer.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address.to_string();
}

// Parses "host:port" / "[v6]:port" and resolves the host (IP literal, or a name looked up once).
Result<tcp::endpoint> resolve_listen_address(const std::string& listen) {
  auto invalid = [&](std::string_view why) {
    return fail(unavailable("cannot listen on \"" + listen + "\": " + std::string(why) +
                            " (expected HOST:PORT, e.g. 127.0.0.1:4100 or [::1]:4100)"));
  };
  std::string_view text = listen;
  std::string host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return invalid("malformed bracketed IPv6 address");
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return invalid("missing port");
    host = std::string(text.substr(0, colon));
    if (host.find(':') != std::string::npos) return invalid("put IPv6 addresses in brackets");
    port_text = text.substr(colon + 1);
  }
  if (host.empty()) return invalid("missing host (use 0.0.0.0 to listen on every interface)");
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return invalid("the port is not a number");
  }
  unsigned port = 0;
  std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port > 65535) return invalid("the port is above 65535");

  ErrorCodeT ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(address, static_cast<uint16_t>(port));
  asio::io_context ioc(1);
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, std::string(port_text), tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return fail(unavailable("cannot listen on \"" + listen + "\": cannot resolve \"" + host + "\"" +
                            (ec ? ": " + ec.message() : std::string())));
  }
  return results.begin()->endpoint();
}

// Everything connections share with the server; immutable after start except stopping_.
struct ServerCore {
  ServerOptions options;
  RequestHandler handler;
  ErrorResponder error_responder;
  std::unique_ptr<UpstreamTls> tls;  // shared by every worker's upstream pool
  std::atomic<bool> stopping{false};

  bool is_stopping() const { return stopping.load(std::memory_order_acquire); }

  // The ErrorResponder's rendering of `error`, or a plain-text fallback if it throws.
  HttpResponse render_error(const Error& error) const {
    try {
      return error_responder(error);
    } catch (...) {
      HttpResponse fallback;
      fallback.status = http_status(error.code);
      fallback.headers.push_back({"content-type", "text/plain; charset=utf-8"});
      fallback.body = error.message + "\n";
      return fallback;
    }
  }
};

// Beast's HTTP/1 parser, writing straight into a reused HttpRequest: header names lower-cased,
// strings and the header vector keep their capacity from one request to the next.
class RequestParser final : public http::basic_parser<true> {
 public:
  explicit RequestParser(HttpRequest& request) : request_(request) {}

  bool expects_continue() const { return expects_continue_; }

 private:
  void on_request_impl(http::verb /*method*/, beast::string_view method, beast::string_view target,
                       int version, ErrorCodeT& /*ec*/) override {
    request_.method.assign(method.data(), method.size());
    request_.target.assign(target.data(), target.size());
    request_.version = version;
  }

  void on_response_impl(int /*code*/, beast::string_view /*reason*/, int /*version*/,
                        ErrorCodeT& /*ec*/) override {}

  void on_field_impl(http::field field, beast::string_view name, beast::string_view value,
                     ErrorCodeT& /*ec*/) override {
    if (header_done_) return;  // trailer fields of a chunked body are not headers
    HttpHeaders& headers = request_.headers;
    if (used_ == headers.size()) headers.emplace_back();
    HttpHeader& header = headers[used_++];
    header.name.assign(name.data(), name.size());
    to_lower_ascii(header.name);
    header.value.assign(value.data(), value.size());
    if (field == http::field::expect &&
        ascii_iequals({value.data(), value.size()}, "100-continue")) {
      expects_continue_ = true;
    }
  }

  void on_header_impl(ErrorCodeT& /*ec*/) override {
    request_.headers.resize(used_);
    header_done_ = true;
  }

  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         ErrorCodeT& /*ec*/) override {
    // Content-Length was checked against body_limit before this is called.
    if (content_length) request_.body.reserve(static_cast<size_t>(*content_length));
  }

  size_t on_body_impl(beast::string_view body, ErrorCodeT& /*ec*/) override {
    request_.body.append(body.data(), body.size());
    return body.size();
  }

  void on_chunk_header_impl(std::uint64_t /*size*/, beast::string_view /*extensions*/,
                            ErrorCodeT& /*ec*/) override {}

  size_t on_chunk_body_impl(std::uint64_t /*remain*/, beast::string_view body,
                            ErrorCodeT& /*ec*/) override {
    request_.body.append(body.data(), body.size());
    return body.size();
  }

  void on_finish_impl(ErrorCodeT& /*ec*/) override {}

  HttpRequest& request_;
  size_t used_ = 0;  // header slots filled so far
  bool header_done_ = false;
  bool expects_continue_ = false;
};

class Connection;

// One I/O thread and its io_context. Members other than `connections` are touched only on the
// thread (or before it starts / after it is joined).
struct Worker {
  ~Worker() { tearing_down = true; }

  // Open connections, including ones posted but not started; the accept thread increments it.
  std::atomic<int> connections{0};
  std::atomic<int> forwards{0};  // relays running (read by metrics from any thread)
  Connection* first = nullptr;  // intrusive list of started connections
  bool draining = false;        // begin_shutdown() ran
  bool tearing_down = false;    // being destroyed: the list and the grace timer are off limits
  // Declared after the fields above so that it is destroyed before them: destroying it destroys
  // suspended connections, whose destructors look at the fields above.
  asio::io_context ioc{1};
  Timer grace_timer{ioc.get_executor()};
  std::optional<WorkGuard> guard{ioc.get_executor()};
  std::thread thread;
  // Idle upstream connections of this thread. Declared last so that its sockets are closed before
  // the io_context they belong to is destroyed.
  std::unique_ptr<UpstreamPool> pool;

  void link(Connection* connection);
  void unlink(Connection* connection);
  void begin_shutdown(std::chrono::milliseconds grace);
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(const ServerCore& core, Worker& worker, Socket socket)
      : core_(core),
        worker_(worker),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        watch_signal_(socket_.get_executor()),
        remote_address_(peer_address_text(socket_)) {}

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ~Connection() {
    worker_.unlink(this);
    worker_.connections.fetch_sub(1, std::memory_order_relaxed);
  }

  // Starts serving; on the worker's thread.
  void start() {
    worker_.link(this);
    first_header_deadline_ = SteadyClock::now() + core_.options.header_timeout;
    deadline_ = first_header_deadline_;
    asio::co_spawn(socket_.get_executor(), run(shared_from_this()), asio::detached);
    asio::co_spawn(socket_.get_executor(), watchdog(shared_from_this()), asio::detached);
  }

  // Part of stop(): a connection waiting for its next request is closed now.
  void close_if_idle() {
    if (phase_ == Phase::kIdle) {
      ErrorCodeT ec;
      socket_.cancel(ec);
    }
  }

  // The shutdown grace expired: close whatever the connection is doing.
  void abort() {
    aborted_ = true;
    if (forwarding_) {
      interrupt(make_error(ErrorCode::kUnavailable, ErrorSource::kInternal, /*retryable=*/true,
                           "the server is shutting down"));
    }
    ErrorCodeT ec;
    socket_.close(ec);
  }

  Connection* prev = nullptr;  // Worker's list
  Connection* next = nullptr;

 private:
  enum class Phase { kIdle, kReading, kHandling, kUpstream, kWriting, kClosing };
  enum class UpstreamStep { kConnect, kHead, kBody };  // which upstream deadline is running
  enum class BodyFraming { kNone, kLength, kChunked, kUntilClose };
  enum class AfterForward { kKeepAlive, kLingerClose, kDrop };

  // Marks the connection as forwarding for the lifetime of one relay() and makes sure no pointer
  // to the upstream connection outlives it, however the coroutine ends.
  class ForwardScope {
   public:
    explicit ForwardScope(Connection& connection) : connection_(connection) {
      connection_.forwarding_ = true;
      connection_.interruption_.reset();
      connection_.worker_.forwards.fetch_add(1, std::memory_order_relaxed);
    }
    ForwardScope(const ForwardScope&) = delete;
    ForwardScope& operator=(const ForwardScope&) = delete;
    ~ForwardScope() {
      connection_.forwarding_ = false;
      connection_.upstream_ = nullptr;
      connection_.worker_.forwards.fetch_sub(1, std::memory_order_relaxed);
    }

   private:
    Connection& connection_;
  };

  asio::awaitable<void> run(std::shared_ptr<Connection> /*self*/) {
    try {
      co_await serve();
    } catch (...) {
      // Only allocation failures can get here; the connection is dropped, the server lives on.
    }
    closed_ = true;
    ErrorCodeT ec;
    socket_.close(ec);
    timer_.cancel();  // the watchdog sees closed_ and ends; the last shared_ptr goes with it
  }

  // One timer per connection, re-armed only when a phase's deadline is earlier than the armed one.
  asio::awaitable<void> watchdog(std::shared_ptr<Connection> /*self*/) {
    while (!closed_) {
      if (SteadyClock::now() >= deadline_) {
        timed_out_ = true;
        deadline_ = SteadyClock::time_point::max();
        on_deadline();
      }
      timer_.expires_at(deadline_);
      co_await timer_.async_wait(kUseTuple);
    }
  }

  // The current phase's deadline passed: cancel what it waits for.
  void on_deadline() {
    if (phase_ == Phase::kUpstream) {
      interrupt(upstream_timeout_error());
      return;
    }
    if (forwarding_) {
      interrupt(client_error("the client did not accept the response within " +
                             describe_duration(core_.options.send_timeout)));
    }
    ErrorCodeT ec;
    socket_.cancel(ec);
  }

  void set_deadline(std::chrono::milliseconds timeout) {
    set_deadline_at(SteadyClock::now() + timeout);
  }

  void set_deadline_at(SteadyClock::time_point deadline) {
    timed_out_ = false;
    deadline_ = deadline;
    if (deadline < timer_.expiry()) timer_.expires_at(deadline);  // wakes the watchdog to re-arm
  }

  asio::awaitable<void> serve() {
    const ServerOptions& options = core_.options;
    bool first_request = true;
    for (;;) {
      // Wait for the first byte of the next request unless a pipelined one is already buffered.
      if (buffer_.size() == 0) {
        if (core_.is_stopping() || watch_failed_) co_return;
        phase_ = Phase::kIdle;
        // A new connection gets header_timeout to start its first request.
        if (!first_request) set_deadline(options.idle_timeout);
        if (watch_pending_) {
          // The read that watched the client during the last forward is waiting for this request.
          co_await wait_for_watch();
          if (watch_failed_) co_return;
        } else {
          auto [ec, n] = co_await socket_.async_read_some(buffer_.prepare(kReadChunk), kUseTuple);
          if (ec) co_return;  // closed by the peer, idle too long or stop(): close without a word
          buffer_.commit(n);
        }
      }
      // Counted from the connect for a new connection, from the first byte on a kept-alive one.
      set_deadline_at(first_request ? first_header_deadline_
                                    : SteadyClock::now() + options.header_timeout);
      first_request = false;

      phase_ = Phase::kReading;
      reset_request();
      parser_.emplace(request_);
      parser_->header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
      parser_->body_limit(static_cast<std::uint64_t>(options.max_body_bytes));
      {
        auto [ec, n] = co_await http::async_read_header(socket_, buffer_, *parser_, kUseTuple);
        if (ec) co_return co_await reject(ec, /*reading_body=*/false);
      }
      if (!parser_->is_done()) {
        if (parser_->expects_continue() && request_.version >= 11 && buffer_.size() == 0) {
          set_deadline(options.send_timeout);
          auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(k100Continue), kUseTuple);
          if (ec) co_return;
        }
        set_deadline(options.body_timeout);
        auto [ec, n] = co_await http::async_read(socket_, buffer_, *parser_, kUseTuple);
        if (ec) co_return co_await reject(ec, /*reading_body=*/true);
      }

      // The handler answers at once or asks for a forward, which runs here, on this thread.
      phase_ = Phase::kHandling;
      set_deadline_at(SteadyClock::time_point::max());
      bool keep_alive = parser_->keep_alive();
      bool head = request_.method == "HEAD";
      int version = request_.version;
      HandlerResult result = call_handler();
      if (Forward* forward_request = std::get_if<Forward>(&result)) {
        AfterForward after = co_await relay(*forward_request, keep_alive, version, head);
        if (after == AfterForward::kDrop) co_return;
        if (after == AfterForward::kLingerClose) co_return co_await linger_close();
        continue;
      }
      const HttpResponse& response = std::get<HttpResponse>(result);
      keep_alive = keep_alive && !core_.is_stopping() && !asks_to_close(response.headers);
      if (!co_await send(response, keep_alive, version, head)) co_return;
      if (!keep_alive) co_return co_await linger_close();
    }
  }

  // Answers a request that could not be read, then closes; or just closes if nobody is listening.
  asio::awaitable<void> reject(ErrorCodeT ec, bool reading_body) {
    const ServerOptions& options = core_.options;
    if (aborted_) co_return;
    std::optional<Error> error;
    if (timed_out_) {
      error = Error::client(ErrorCode::kRequestTimeout,
                            reading_body ? "the request body did not arrive within " +
                                               describe_duration(options.body_timeout)
                                         : "the request header did not arrive within " +
                                               describe_duration(options.header_timeout));
    } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      error = Error::client(ErrorCode::kRequestTooLarge,
                            "the request header block is larger than the " +
                                describe_bytes(options.max_header_bytes) + " limit");
    } else if (ec == http::error::body_limit) {
      error = Error::client(ErrorCode::kRequestTooLarge,
                            "the request body is larger than the " +
                                describe_bytes(options.max_body_bytes) + " limit");
    } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      error = Error::client(ErrorCode::kInvalidRequest, "malformed HTTP request: " + ec.message());
    }
    if (!error) co_return;  // the peer went away (EOF, reset) or the server is stopping
    HttpResponse response = core_.render_error(*error);
    if (!co_await send(response, /*keep_alive=*/false, /*version=*/11, /*head=*/false)) co_return;
    co_await linger_close();
  }

  HandlerResult call_handler() {
    try {
      return core_.handler(request_);
    } catch (...) {
      return core_.render_error(Error::internal("the server failed while handling this request"));
    }
  }

  static bool asks_to_close(const HttpHeaders& headers) {
    std::optional<std::string_view> connection = find_header(headers, "connection");
    return connection && ascii_iequals(*connection, "close");
  }

  // ---- Forwarding (include/till/forward.h) ----

  // Performs `forward` and reports it to its observer. Returns what to do with the client
  // connection afterwards.
  asio::awaitable<AfterForward> relay(Forward& forward, bool keep_alive, int version,
                                      bool head_request) {
    if (!forward.observer) {
      HttpResponse response = core_.render_error(
          Error::internal("the server was asked to forward a request without an observer"));
      keep_alive = keep_alive && !core_.is_stopping();
      if (!co_await send(response, keep_alive, version, head_request))
        co_return AfterForward::kDrop;
      co_return keep_alive ? AfterForward::kKeepAlive : AfterForward::kLingerClose;
    }
    ForwardScope scope(*this);
    ExchangeObserver& observer = *forward.observer;
    const UpstreamRequest& request = forward.request;
    const UpstreamOptions& options = core_.options.upstream;
    UpstreamPool& pool = *worker_.pool;
    start_watch();

    // Connection and response head. A pooled connection the upstream closed just as it was
    // reused fails before any response byte; an idempotent request then gets one more try on a
    // fresh connection. A non-idempotent one does not: the upstream may have acted on it.
    std::unique_ptr<UpstreamConnection> upstream;
    for (int attempt = 0;; ++attempt) {
      upstream = attempt == 0 ? pool.take_idle(request.upstream) : nullptr;
      bool pooled = upstream != nullptr;
      if (!pooled) upstream = pool.make(request.upstream);
      upstream_ = upstream.get();
      Result<void> step;
      if (interruption_) step = fail(*interruption_);
      if (step && !pooled) {
        enter_upstream_step(UpstreamStep::kConnect, options.connect_timeout);
        step = co_await upstream->connect();
      }
      if (step) {
        enter_upstream_step(UpstreamStep::kHead, options.response_timeout);
        step = co_await upstream->write_request(request);
      }
      if (step) step = co_await upstream->read_head(request.method == "HEAD");
      if (step) break;
      bool stale = pooled && !interruption_ && step.error().code == ErrorCode::kUpstreamError &&
                   !upstream->received_response_bytes();
      if (stale && request.idempotent && attempt == 0) {
        upstream_ = nullptr;
        upstream.reset();
        continue;
      }
      co_return co_await finish_failed(forward, std::move(upstream), cause(step.error()),
                                       /*sent=*/false, keep_alive, version, head_request);
    }

    int status = upstream->status();
    HttpHeaders& headers = upstream->headers();
    if (!guarded([&] { observer.on_response_head(status, headers); })) {
      co_return co_await finish_failed(forward, std::move(upstream), observer_error(),
                                       /*sent=*/false, keep_alive, version, head_request);
    }
    // Framing towards the client: the upstream's length if it gave one, otherwise chunked (or, for
    // an HTTP/1.0 client, the end of the connection).
    BodyFraming framing = BodyFraming::kChunked;
    uint64_t length = 0;
    if (status == 204 || status == 304) {
      framing = BodyFraming::kNone;
    } else if (std::optional<uint64_t> upstream_length = upstream->content_length()) {
      framing = BodyFraming::kLength;
      length = *upstream_length;
    } else if (request.method == "HEAD") {
      framing = BodyFraming::kNone;
    } else if (version < 11) {
      framing = BodyFraming::kUntilClose;
    }
    keep_alive = keep_alive && framing != BodyFraming::kUntilClose && !core_.is_stopping() &&
                 !asks_to_close(headers);
    const bool send_body = !head_request && framing != BodyFraming::kNone;
    if (!serialize_head(status, headers, framing, length, keep_alive, version)) {
      Error error = make_error(ErrorCode::kUpstreamError, ErrorSource::kUpstream, false,
                               "upstream " + upstream->origin() +
                                   " sent a response that cannot be relayed (status or header)");
      co_return co_await finish_failed(forward, std::move(upstream), std::move(error),
                                       /*sent=*/false, keep_alive, version, head_request);
    }

    // The body: what upstream has sent is written to the client before the next read.
    bool sent = false;
    for (;;) {
      Result<void> step = upstream->take_buffered_body();
      if (step && upstream->body_pieces().empty() && !upstream->body_done()) {
        if (!sent) {  // nothing more yet (a stream, a slow upstream): the head goes out alone
          sent = true;
          out_buffers_.clear();
          out_buffers_.push_back(asio::buffer(head_));
          if (!co_await write_forwarded()) {
            co_return co_await finish_failed(forward, std::move(upstream), client_write_failure(),
                                             sent, keep_alive, version, head_request);
          }
        }
        enter_upstream_step(UpstreamStep::kBody, options.idle_timeout);
        step = co_await upstream->read_body();
      }
      if (!step) {
        co_return co_await finish_failed(forward, std::move(upstream), cause(step.error()), sent,
                                         keep_alive, version, head_request);
      }
      const std::vector<std::string_view>& pieces = upstream->body_pieces();
      size_t total = 0;
      for (std::string_view piece : pieces) total += piece.size();
      if (!guarded([&] {
            for (std::string_view piece : pieces) observer.on_response_body(piece);
          })) {
        co_return co_await finish_failed(forward, std::move(upstream), observer_error(), sent,
                                         keep_alive, version, head_request);
      }
      const bool done = upstream->body_done();
      if (done) {
        // Completed before the last write, so a client that has read the whole response sees
        // its effects (the settled budget) in its next request.
        guarded([&] { observer.on_complete(); });
      }
      out_buffers_.clear();
      if (!sent) out_buffers_.push_back(asio::buffer(head_));
      if (send_body && total > 0) {
        const bool chunked = framing == BodyFraming::kChunked;
        if (chunked) out_buffers_.push_back(chunk_size_line(total));
        for (std::string_view piece : pieces) {
          out_buffers_.push_back(asio::buffer(piece.data(), piece.size()));
        }
        if (chunked) out_buffers_.push_back(asio::buffer(kCrlf));
      }
      if (done && send_body && framing == BodyFraming::kChunked) {
        out_buffers_.push_back(asio::buffer(kLastChunk));
      }
      if (!out_buffers_.empty()) {
        sent = true;
        if (!co_await write_forwarded()) {
          if (done) {  // the observer has completed: nothing more to report
            forward.observer.reset();
            co_return AfterForward::kDrop;
          }
          co_return co_await finish_failed(forward, std::move(upstream), client_write_failure(),
                                           sent, keep_alive, version, head_request);
        }
      }
      if (done) break;
    }

    upstream_ = nullptr;
    pool.release(std::move(upstream));  // kept only if the upstream keeps the connection open
    forward.observer.reset();
    co_return keep_alive ? AfterForward::kKeepAlive : AfterForward::kLingerClose;
  }

  // Reports a failed forward and answers the client if nothing was sent to it yet.
  asio::awaitable<AfterForward> finish_failed(Forward& forward,
                                              std::unique_ptr<UpstreamConnection> upstream,
                                              Error error, bool sent, bool keep_alive, int version,
                                              bool head_request) {
    upstream_ = nullptr;
    upstream.reset();  // the exchange is incomplete: the connection cannot be reused
    forwarding_ = false;
    ExchangeObserver& observer = *forward.observer;
    if (sent || aborted_ || error.source == ErrorSource::kClient) {
      // Nobody to answer, or a response already under way that cannot be completed.
      guarded([&] { observer.on_failure(error); });
      forward.observer.reset();
      co_return AfterForward::kDrop;
    }
    HttpResponse response;
    try {
      response = observer.render_error(error);
    } catch (...) {
      response = core_.render_error(error);
    }
    guarded([&] { observer.on_failure(error); });
    forward.observer.reset();
    keep_alive = keep_alive && !core_.is_stopping() && !asks_to_close(response.headers);
    if (!co_await send(response, keep_alive, version, head_request)) co_return AfterForward::kDrop;
    co_return keep_alive ? AfterForward::kKeepAlive : AfterForward::kLingerClose;
  }

  void enter_upstream_step(UpstreamStep step, std::chrono::milliseconds timeout) {
    phase_ = Phase::kUpstream;
    upstream_step_ = step;
    set_deadline(timeout);
  }

  // Writes out_buffers_ to the client within send_timeout.
  asio::awaitable<bool> write_forwarded() {
    if (interruption_) co_return false;
    phase_ = Phase::kWriting;
    set_deadline(core_.options.send_timeout);
    auto [ec, n] = co_await asio::async_write(socket_, out_buffers_, kUseTuple);
    co_return !ec;
  }

  // "1a2b\r\n" for a chunk of `size` bytes, in chunk_line_.
  asio::const_buffer chunk_size_line(size_t size) {
    char* begin = chunk_line_.data();
    auto [end, ec] = std::to_chars(begin, begin + chunk_line_.size() - 2, size, 16);
    *end++ = '\r';
    *end++ = '\n';
    return asio::buffer(begin, static_cast<size_t>(end - begin));
  }

  // Stops the forward in progress for `reason` (the first reason given is the one reported).
  void interrupt(Error reason) {
    if (!interruption_) interruption_ = std::move(reason);
    if (upstream_) upstream_->cancel();
  }

  // The error to report for a failed step: why we cancelled it, if we did.
  Error cause(Error step_error) const {
    return interruption_ ? *interruption_ : std::move(step_error);
  }

  Error client_write_failure() const {
    return interruption_ ? *interruption_ : client_gone_error();
  }

  static Error client_error(std::string message) {
    return make_error(ErrorCode::kUnavailable, ErrorSource::kClient, false, std::move(message));
  }

  static Error client_gone_error() {
    return client_error("the client closed the connection before the response was complete");
  }

  static Error observer_error() {
    return Error::internal("the server failed while relaying the upstream response");
  }

  Error upstream_timeout_error() const {
    const UpstreamOptions& options = core_.options.upstream;
    std::string origin = upstream_ ? upstream_->origin() : std::string("upstream");
    switch (upstream_step_) {
      case UpstreamStep::kConnect:
        return make_error(ErrorCode::kUpstreamTimeout, ErrorSource::kUpstream, /*retryable=*/true,
                          "no connection to upstream " + origin + " within " +
                              describe_duration(options.connect_timeout));
      case UpstreamStep::kHead:
        return make_error(ErrorCode::kUpstreamTimeout, ErrorSource::kUpstream, false,
                          "upstream " + origin + " did not answer within " +
                              describe_duration(options.response_timeout));
      case UpstreamStep::kBody:
        break;
    }
    return make_error(ErrorCode::kUpstreamTimeout, ErrorSource::kUpstream, false,
                      "upstream " + origin + " sent nothing for " +
                          describe_duration(options.idle_timeout) +
                          " in the middle of the response");
  }

  // Runs an observer callback; false if it threw (the exchange then fails as kInternal).
  template <typename Callback>
  static bool guarded(Callback&& callback) {
    try {
      callback();
      return true;
    } catch (...) {
      return false;
    }
  }

  // ---- Watching the client during a forward ----

  // Starts a read on the client socket that completes when the client sends more (its next
  // request) or goes away. Not started if input is already buffered (a pipelining client).
  void start_watch() {
    if (watch_pending_ || buffer_.size() > 0) return;
    watch_pending_ = true;
    watch_failed_ = false;
    socket_.async_read_some(
        buffer_.prepare(kReadChunk),
        [self = shared_from_this()](const ErrorCodeT& ec, size_t n) { self->on_watch(ec, n); });
  }

  void on_watch(const ErrorCodeT& ec, size_t n) {
    watch_pending_ = false;
    if (!ec) {
      buffer_.commit(n);
    } else {
      watch_failed_ = true;
      if (forwarding_) {
        interrupt(client_gone_error());
      }
    }
    watch_signal_.cancel();
  }

  asio::awaitable<void> wait_for_watch() {
    while (watch_pending_) {
      watch_signal_.expires_at(SteadyClock::time_point::max());
      co_await watch_signal_.async_wait(kUseTuple);
    }
  }

  // ---- Writing responses ----

  // Writes `response`. Returns false if the connection is unusable afterwards.
  asio::awaitable<bool> send(const HttpResponse& response, bool keep_alive, int version,
                             bool head) {
    const HttpResponse* out = &response;
    std::optional<HttpResponse> replacement;
    if (!serialize_response_head(*out, keep_alive, version)) {
      replacement = core_.render_error(
          Error::internal("the server produced an invalid response (bad status or header)"));
      out = &*replacement;
      if (!serialize_response_head(*out, keep_alive, version)) {
        replacement = HttpResponse{500, {}, "internal error\n"};
        serialize_response_head(*out, keep_alive, version);
      }
    }
    phase_ = Phase::kWriting;
    set_deadline(core_.options.send_timeout);
    bool bodiless = out->status == 204 || out->status == 304;
    std::string_view body = head || bodiless ? std::string_view() : std::string_view(out->body);
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body)};
    auto [ec, n] = co_await asio::async_write(socket_, buffers, kUseTuple);
    co_return !ec;
  }

  bool serialize_response_head(const HttpResponse& response, bool keep_alive, int version) {
    bool bodiless = response.status == 204 || response.status == 304;
    return serialize_head(response.status, response.headers,
                          bodiless ? BodyFraming::kNone : BodyFraming::kLength,
                          response.body.size(), keep_alive, version);
  }

  // Fills head_ with the status line and headers; false if the response cannot be sent as is.
  // The framing headers (and Date, Connection) are the server's: those in `headers` are ignored.
  bool serialize_head(int status_code, const HttpHeaders& headers, BodyFraming framing,
                      uint64_t length, bool keep_alive, int version) {
    if (status_code < 200 || status_code > 599) return false;
    for (const HttpHeader& h : headers) {
      if (!is_valid_header_name(h.name) || !is_valid_header_value(h.value)) return false;
    }
    auto status = static_cast<http::status>(status_code);
    beast::string_view reason = http::obsolete_reason(status);
    if (reason.starts_with('<')) reason = {};  // "<unknown-status>"
    head_.clear();
    head_.append("HTTP/1.1 ");
    append_number(head_, static_cast<uint64_t>(status_code));
    head_.push_back(' ');
    head_.append(reason.data(), reason.size());
    head_.append("\r\n");
    for (const HttpHeader& h : headers) {
      if (ascii_iequals(h.name, "content-length") || ascii_iequals(h.name, "transfer-encoding") ||
          ascii_iequals(h.name, "connection") || ascii_iequals(h.name, "date")) {
        continue;
      }
      head_.append(h.name).append(": ").append(h.value).append("\r\n");
    }
    head_.append("date: ").append(http_date()).append("\r\n");
    if (framing == BodyFraming::kLength) {
      head_.append("content-length: ");
      append_number(head_, length);
      head_.append("\r\n");
    } else if (framing == BodyFraming::kChunked) {
      head_.append("transfer-encoding: chunked\r\n");
    }
    if (!keep_alive) {
      head_.append("connection: close\r\n");
    } else if (version < 11) {
      head_.append("connection: keep-alive\r\n");
    }
    head_.append("\r\n");
    return true;
  }

  static void append_number(std::string& out, uint64_t value) {
    std::array<char, 24> digits{};
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
    out.append(digits.data(), end);
  }

  // Half-closes, then reads and discards what the client still sends (up to kLingerTimeout) so
  // that our response is not destroyed by a TCP reset caused by unread input.
  asio::awaitable<void> linger_close() {
    phase_ = Phase::kClosing;
    ErrorCodeT ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    set_deadline(kLingerTimeout);
    if (watch_pending_) {  // the forward's watch read is still pending: it is the linger read
      co_await wait_for_watch();
      if (watch_failed_) co_return;
    }
    buffer_.consume(buffer_.size());
    for (;;) {
      auto [read_ec, n] = co_await socket_.async_read_some(buffer_.prepare(kReadChunk), kUseTuple);
      if (read_ec) co_return;
    }
  }

  void reset_request() {
    request_.method.clear();
    request_.target.clear();
    if (request_.body.capacity() > kRetainedBodyCapacity) {
      std::string().swap(request_.body);
    } else {
      request_.body.clear();
    }
    request_.remote_address.assign(remote_address_);
    request_.version = 11;
  }

  const ServerCore& core_;
  Worker& worker_;
  Socket socket_;
  Timer timer_;
  Timer watch_signal_;  // cancelled when the watch read completes; wait_for_watch() waits on it
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  HttpRequest request_;
  std::string head_;  // serialized response head
  std::string remote_address_;
  Phase phase_ = Phase::kIdle;
  SteadyClock::time_point first_header_deadline_;
  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
  bool timed_out_ = false;  // the watchdog cancelled the current phase
  bool aborted_ = false;    // the shutdown grace expired
  bool closed_ = false;

  // Forward state; reused from one forward to the next.
  UpstreamConnection* upstream_ = nullptr;  // the forward's upstream connection, while it runs
  std::optional<Error> interruption_;       // why the current forward was cancelled, if it was
  UpstreamStep upstream_step_ = UpstreamStep::kConnect;
  bool forwarding_ = false;
  bool watch_pending_ = false;  // the watch read is in flight
  bool watch_failed_ = false;   // the watch read ended in EOF or an error: the client is gone
  std::vector<asio::const_buffer> out_buffers_;
  std::array<char, 24> chunk_line_{};
};

void Worker::link(Connection* connection) {
  connection->next = first;
  if (first) first->prev = connection;
  first = connection;
}

void Worker::unlink(Connection* connection) {
  if (tearing_down) return;
  if (connection->prev) connection->prev->next = connection->next;
  if (connection->next) connection->next->prev = connection->prev;
  if (first == connection) first = connection->next;
  connection->prev = connection->next = nullptr;
  if (draining && first == nullptr) grace_timer.cancel();
}

void Worker::begin_shutdown(std::chrono::milliseconds grace) {
  draining = true;
  if (pool) pool->close_all();
  for (Connection* c = first; c != nullptr; c = c->next) c->close_if_idle();
  if (first == nullptr) return;
  grace_timer.expires_after(grace);
  grace_timer.async_wait([this](const ErrorCodeT& ec) {
    if (ec) return;
    for (Connection* c = first; c != nullptr; c = c->next) c->abort();
  });
}

// Runs an io_context until it is out of work. A handler that throws does not end the thread.
void run_until_out_of_work(asio::io_context& ioc) {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (...) {
    }
  }
}

}  // namespace

class HttpServer::Impl {
 public:
  Impl(ServerOptions options, RequestHandler handler, ErrorResponder error_responder,
       std::unique_ptr<UpstreamTls> tls) {
    core_.options = std::move(options);
    core_.handler = std::move(handler);
    core_.error_responder = std::move(error_responder);
    core_.tls = std::move(tls);
  }

  ~Impl() {
    if (!launched_) return;
    stop();
    wait();
  }

  Result<void> listen(const tcp::endpoint& endpoint) {
    ErrorCodeT ec;
    std::string where = "cannot listen on " + core_.options.listen + ": ";
    if (acceptor_.open(endpoint.protocol(), ec); ec) return fail(unavailable(where + ec.message()));
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (acceptor_.bind(endpoint, ec); ec) {
      if (ec == asio::error::address_in_use) {
        return fail(unavailable(where + "address already in use (is another till running?)"));
      }
      return fail(unavailable(where + ec.message()));
    }
    if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) {
      return fail(unavailable(where + ec.message()));
    }
    acceptor_.non_blocking(true, ec);
    tcp::endpoint bound = acceptor_.local_endpoint(ec);
    if (ec) return fail(unavailable(where + ec.message()));
    local_address_ = format_endpoint(bound);
    return {};
  }

  // Starts the threads. Throws std::system_error if a thread cannot be created; the caller
  // converts it.
  void launch() {
    int threads = core_.options.threads;
    if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < threads; ++i) {
      auto worker = std::make_unique<Worker>();
      worker->pool = std::make_unique<UpstreamPool>(
          worker->ioc, *core_.tls, core_.options.upstream.max_idle_connections_per_host);
      workers_.push_back(std::move(worker));
    }
    try {
      for (auto& worker : workers_) {
        Worker* w = worker.get();
        w->thread = std::thread([w] { run_until_out_of_work(w->ioc); });
      }
      asio::co_spawn(accept_ioc_, accept_loop(), asio::detached);
      accept_thread_ = std::thread([this] { run_until_out_of_work(accept_ioc_); });
    } catch (...) {
      for (auto& worker : workers_) {
        worker->ioc.stop();
        if (worker->thread.joinable()) worker->thread.join();
      }
      accept_ioc_.stop();
      throw;
    }
    launched_ = true;
  }

  std::string local_address() const { return local_address_; }

  void stop() {
    if (core_.stopping.exchange(true, std::memory_order_acq_rel)) return;
    // On the accept thread, so that no accepted connection is posted to an I/O thread after its
    // work guard is released.
    asio::post(accept_ioc_, [this] {
      ErrorCodeT ec;
      acceptor_.close(ec);
      accept_backoff_.cancel();
      accept_guard_.reset();
      for (auto& worker : workers_) {
        Worker* w = worker.get();
        asio::post(w->ioc, [this, w] { w->begin_shutdown(core_.options.shutdown_grace); });
        w->guard.reset();
      }
    });
  }

  void wait() {
    std::lock_guard lock(wait_mutex_);
    if (accept_thread_.joinable()) accept_thread_.join();
    for (auto& worker : workers_) {
      if (worker->thread.joinable()) worker->thread.join();
    }
  }

 private:
  // Runs until stop() closes the listening socket. Accept errors (out of descriptors or memory)
  // and allocation failures pause accepting for kAcceptBackoff instead of ending the loop or
  // spinning on a socket that stays readable.
  asio::awaitable<void> accept_loop() {
    while (!core_.is_stopping()) {
      bool back_off = false;
      try {
        auto [wait_ec] = co_await acceptor_.async_wait(tcp::acceptor::wait_read, kUseTuple);
        if (core_.is_stopping() || !acceptor_.is_open()) co_return;
        back_off = static_cast<bool>(wait_ec);
        for (int i = 0; i < kAcceptBatch && !back_off; ++i) {
          Worker& worker = pick_worker();
          ErrorCodeT ec;
          Socket socket = acceptor_.accept(worker.ioc.get_executor(), ec);
          if (ec == asio::error::would_block || ec == asio::error::try_again) break;
          if (ec == asio::error::connection_aborted) continue;
          if (ec) {
            back_off = true;
          } else {
            dispatch(worker, std::move(socket));
          }
        }
      } catch (...) {
        back_off = true;
      }
      if (back_off) {
        accept_backoff_.expires_after(kAcceptBackoff);
        co_await accept_backoff_.async_wait(kUseTuple);
      }
    }
  }

  // The worker with the fewest connections; ties go round-robin. On the accept thread.
  Worker& pick_worker() {
    size_t count = workers_.size();
    size_t best = next_worker_ % count;
    int best_load = workers_[best]->connections.load(std::memory_order_relaxed);
    for (size_t i = 1; i < count && best_load > 0; ++i) {
      size_t k = (next_worker_ + i) % count;
      int load = workers_[k]->connections.load(std::memory_order_relaxed);
      if (load < best_load) {
        best = k;
        best_load = load;
      }
    }
    next_worker_ = best + 1;
    return *workers_[best];
  }

  void dispatch(Worker& worker, Socket socket) {
    ErrorCodeT ec;
    socket.set_option(tcp::no_delay(true), ec);
    worker.connections.fetch_add(1, std::memory_order_relaxed);
    asio::post(worker.ioc, [this, w = &worker, s = std::move(socket)]() mutable {
      std::make_shared<Connection>(core_, *w, std::move(s))->start();
    });
  }

  ServerCore core_;
  asio::io_context accept_ioc_{1};
  tcp::acceptor acceptor_{accept_ioc_};
  asio::steady_timer accept_backoff_{accept_ioc_};
  std::optional<WorkGuard> accept_guard_{accept_ioc_.get_executor()};
  std::vector<std::unique_ptr<Worker>> workers_;

 public:
  HttpServer::Activity activity() const {
    HttpServer::Activity total;
    for (const auto& worker : workers_) {
      total.connections += worker->connections.load(std::memory_order_relaxed);
      total.forwards += worker->forwards.load(std::memory_order_relaxed);
    }
    return total;
  }

 private:
  std::thread accept_thread_;
  size_t next_worker_ = 0;  // accept thread only
  std::string local_address_;
  std::mutex wait_mutex_;
  bool launched_ = false;
};

Result<std::unique_ptr<HttpServer>> HttpServer::start(ServerOptions options, RequestHandler handler,
                                                      ErrorResponder error_responder) {
  if (!handler || !error_responder) {
    return fail(
        Error::invalid("handler", "the server needs a request handler and an error responder"));
  }
  if (options.threads < 0) return fail(Error::invalid("threads", "threads must be 0 or more"));
  if (options.max_header_bytes == 0 ||
      options.max_header_bytes > std::numeric_limits<std::uint32_t>::max()) {
    return fail(Error::invalid("max_header_bytes", "max_header_bytes must be between 1 and 4 GiB"));
  }
  const std::array<std::pair<const char*, std::chrono::milliseconds>, 7> timeouts{{
      {"header_timeout", options.header_timeout},
      {"body_timeout", options.body_timeout},
      {"idle_timeout", options.idle_timeout},
      {"send_timeout", options.send_timeout},
      {"upstream.connect_timeout", options.upstream.connect_timeout},
      {"upstream.response_timeout", options.upstream.response_timeout},
      {"upstream.idle_timeout", options.upstream.idle_timeout},
  }};
  for (const auto& [name, value] : timeouts) {
    if (value.count() <= 0)
      return fail(Error::invalid(name, std::string(name) + " must be positive"));
  }
  if (options.shutdown_grace.count() < 0) {
    return fail(Error::invalid("shutdown_grace", "shutdown_grace must not be negative"));
  }
  try {
    Result<std::unique_ptr<UpstreamTls>> tls = UpstreamTls::create(options.upstream);
    if (!tls) return fail(std::move(tls.error()));
    Result<tcp::endpoint> endpoint = resolve_listen_address(options.listen);
    if (!endpoint) return fail(std::move(endpoint.error()));
    auto impl = std::make_unique<Impl>(std::move(options), std::move(handler),
                                       std::move(error_responder), std::move(*tls));
    if (Result<void> listening = impl->listen(*endpoint); !listening) {
      return fail(std::move(listening.error()));
    }
    impl->launch();
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
  } catch (const std::exception& e) {
    return fail(Error::internal(std::string("cannot start the HTTP server: ") + e.what()));
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() = default;

std::string HttpServer::local_address() const { return impl_->local_address(); }

void HttpServer::stop() { impl_->stop(); }

void HttpServer::wait() { impl_->wait(); }

HttpServer::Activity HttpServer::activity() const { return impl_->activity(); }

}  // namespace till
