// HttpServer and http_call against each other and against raw sockets: request limits, timeouts,
// keep-alive, pipelining, handler failures, graceful stop and the client's error messages.
#include "http/server.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "http/client.h"
#include "unit/http/fake_upstream.h"
#include "unit/http/test_net.h"

namespace till {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using test::eventually;
using test::RawConnection;

// Renders errors the way the product does, close enough for the tests to see the code.
HttpResponse render_error(const Error& error) {
  HttpResponse response;
  response.status = http_status(error.code);
  response.headers.push_back({"content-type", "application/json"});
  response.body = "{\"error\":{\"code\":\"" + std::string(to_string(error.code)) +
                  "\",\"message\":\"" + error.message + "\"}}";
  return response;
}

// A handler that blocks until the test releases it; tells the test when it has been entered.
class Gate {
 public:
  void enter() {
    if (!entered_flag_.exchange(true)) entered_promise_.set_value();
    released_.wait();
  }
  bool wait_entered(std::chrono::milliseconds timeout) {
    return entered_.wait_for(timeout) == std::future_status::ready;
  }
  void release() {
    std::call_once(release_once_, [this] { release_promise_.set_value(); });
  }

 private:
  std::atomic<bool> entered_flag_{false};
  std::promise<void> entered_promise_;
  std::shared_future<void> entered_ = entered_promise_.get_future().share();
  std::promise<void> release_promise_;
  std::shared_future<void> released_ = release_promise_.get_future().share();
  std::once_flag release_once_;
};

// Small limits and short timeouts so that every limit can be hit quickly.
ServerOptions small_options() {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 2;
  options.max_header_bytes = 1024;
  options.max_body_bytes = 1024;
  options.header_timeout = 2000ms;
  options.body_timeout = 2000ms;
  options.idle_timeout = 2000ms;
  options.shutdown_grace = 2000ms;
  return options;
}

class HttpServerTest : public ::testing::Test {
 protected:
  // Echoes the request back; "/throw" throws, "/slow" waits on gate_.
  HttpResponse handle(HttpRequest& request) {
    if (request.target == "/throw") throw std::runtime_error("handler bug");
    if (request.target == "/slow") gate_.enter();
    HttpResponse response;
    response.headers.push_back({"content-type", "text/plain"});
    response.headers.push_back({"x-remote", request.remote_address});
    if (auto test = request.header("X-Test"))
      response.headers.push_back({"x-test", std::string(*test)});
    response.body = request.method + " " + request.target + " " + request.body;
    return response;
  }

  void start(ServerOptions options = small_options()) {
    auto server = HttpServer::start(
        std::move(options), [this](HttpRequest& request) { return handle(request); }, render_error);
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(*server);
  }

  void TearDown() override {
    gate_.release();
    server_.reset();
  }

  std::string url() const { return "http://" + server_->local_address(); }

  Gate gate_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, GetRoundTripThroughHttpCall) {
  start();
  auto response = http_call(url(), "GET", "/api/v1/keys?status=active", {{"X-Test", "hello"}}, "");
  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "GET /api/v1/keys?status=active ");
  EXPECT_EQ(response->header("x-test"), "hello");
  EXPECT_EQ(response->header("x-remote"), "127.0.0.1");
  EXPECT_TRUE(response->header("date").has_value());
  EXPECT_EQ(response->header("content-length"), "31");
}

TEST_F(HttpServerTest, PostRoundTripWithBody) {
  start();
  std::string body(1000, 'b');
  auto response = http_call(url() + "/", "POST", "/echo", {{"content-type", "text/plain"}}, body);
  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "POST /echo " + body);
}

TEST_F(HttpServerTest, ServesIpv6AndReportsTheBoundPort) {
  ServerOptions options = small_options();
  options.listen = "[::1]:0";
  auto server = HttpServer::start(
      options, [this](HttpRequest& request) { return handle(request); }, render_error);
  if (!server) GTEST_SKIP() << "no IPv6 loopback: " << server.error().message;
  server_ = std::move(*server);
  std::string address = server_->local_address();
  ASSERT_TRUE(address.starts_with("[::1]:")) << address;
  EXPECT_NE(address, "[::1]:0");
  auto response = http_call("http://" + address, "GET", "/v6", {}, "");
  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->header("x-remote"), "::1");
}

TEST_F(HttpServerTest, LocalAddressGivesTheRealPort) {
  start();
  std::string address = server_->local_address();
  ASSERT_TRUE(address.starts_with("127.0.0.1:")) << address;
  EXPECT_NE(address, "127.0.0.1:0");
  RawConnection connection(address);
  EXPECT_TRUE(connection.connected());
  // A name works too; "localhost" may resolve to ::1 first, which must fall back to 127.0.0.1.
  auto response =
      http_call("http://localhost:" + address.substr(address.rfind(':') + 1), "GET", "/", {}, "");
  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  RawConnection connection(server_->local_address());
  ASSERT_TRUE(connection.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = connection.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "GET /one ");
  EXPECT_FALSE(first->has_header("connection: close"));
  ASSERT_TRUE(connection.send("POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
  auto second = connection.read_response();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "POST /two abc");
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  RawConnection connection(server_->local_address());
  ASSERT_TRUE(connection.send(
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nxy"
      "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
  for (std::string expected : {"POST /a xy", "GET /b ", "POST /c abc"}) {
    auto response = connection.read_response();
    ASSERT_TRUE(response) << expected;
    EXPECT_EQ(response->body, expected);
  }
}

TEST_F(HttpServerTest, Http10ClosesAfterTheResponse) {
  start();
  RawConnection connection(server_->local_address());
  ASSERT_TRUE(connection.send("GET /old HTTP/1.0\r\n\r\n"));
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(response->head.starts_with("http/1.1 200 ok\r\n")) << response->head;
  EXPECT_TRUE(response->has_header("connection: close"));
  EXPECT_TRUE(connection.closed_without_data());
}

TEST_F(HttpServerTest, HeadSendsTheLengthButNoBody) {
  start();
  RawConnection connection(server_->local_address());
  ASSERT_TRUE(
      connection.send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto head = connection.read_response(/*head_request=*/true);
  ASSERT_TRUE(head);
  EXPECT_TRUE(head->has_header("content-length: 8")) << head->head;  // "HEAD /h "
  auto get = connection.read_response();
  ASSERT_TRUE(get);
  EXPECT_EQ(get->body, "GET /g ");  // nothing of the HEAD body leaked into this response
}

TEST_F(HttpServerTest, Expect100ContinueGetsAnInterimResponse) {
  start();
  RawConnection connection(server_->local_address());
  ASSERT_TRUE(connection.send(
      "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto interim = connection.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(connection.send("hello"));
  auto final_response = connection.read_response();
  ASSERT_TRUE(final_response);
  EXPECT_EQ(final_response->status, 200);
  EXPECT_EQ(final_response->body, "POST /e hello");
}

TEST_F(HttpServerTest, BodyAtTheLimitIsAccepted) {
  start();
  auto response = http_call(url(), "POST", "/max", {}, std::string(1024, 'x'));
  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 200);
}

TEST_F(HttpServerTest, DeclaredBodyOverTheLimitGets413AndClose) {
  start();
  RawConnection connection(server_->local_address());
  ASSERT_TRUE(connection.send(
      "POST /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1025\r\n\r\n"));
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);  // and no 100 Continue before it
  EXPECT_TRUE(response->has_header("connection: close"));
  EXPECT_NE(response->body.find("request_too_large"), std::string::npos) << response->body;
  EXPECT_NE(response->body.find("1 KiB"), std::string::npos) << response->body;
  EXPECT_TRUE(connection.closed_without_data());
}

TEST_F(HttpServerTest, ChunkedBodyOverTheLimitGets413) {
  start();
  RawConnection connection(server_->local_address());
  std::string chunk(600, 'c');
  ASSERT_TRUE(
      connection.send("POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "258\r\n" +
                      chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n"));
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_TRUE(connection.closed_without_data());
}

TEST_F(HttpServerTest, OversizedHeadersGet413) {
  start();
  RawConnection connection(server_->local_address());
  ASSERT_TRUE(connection.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') +
                              "\r\n\r\n"));
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_NE(response->body.find("header"), std::string::npos) << response->body;
  EXPECT_TRUE(connection.closed_without_data());
}

TEST_F(HttpServerTest, GarbageGets400) {
  start();
  for (std::string garbage :
       {std::string("NOT HTTP AT ALL\r\n\r\n"), std::string("\x01\x02\x03 / HTTP/1.1\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n")}) {
    RawConnection connection(server_->local_address());
    ASSERT_TRUE(connection.send(garbage));
    auto response = connection.read_response();
    ASSERT_TRUE(response) << garbage;
    EXPECT_EQ(response->status, 400) << garbage;
    EXPECT_NE(response->body.find("invalid_request"), std::string::npos) << response->body;
    EXPECT_TRUE(response->has_header("connection: close"));
    EXPECT_TRUE(connection.closed_without_data());
  }
}

TEST_F(HttpServerTest, StalledHeaderGets408) {
  ServerOptions options = small_options();
  options.header_timeout = 200ms;
  start(options);
  RawConnection connection(server_->local_address());
  auto started = SteadyClock::now();
  ASSERT_TRUE(connection.send("GET / HTTP/1.1\r\nHost: x\r\n"));  // no blank line: stalls
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_GE(SteadyClock::now() - started, 150ms);
  EXPECT_EQ(response->status, 408);
  EXPECT_NE(response->body.find("request_timeout"), std::string::npos) << response->body;
  EXPECT_TRUE(response->has_header("connection: close"));
  EXPECT_TRUE(connection.closed_without_data());
}

TEST_F(HttpServerTest, StalledBodyGets408) {
  ServerOptions options = small_options();
  options.body_timeout = 200ms;
  start(options);
  RawConnection connection(server_->local_address());
  ASSERT_TRUE(connection.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 408);
  EXPECT_NE(response->body.find("body"), std::string::npos) << response->body;
  EXPECT_TRUE(connection.closed_without_data());
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosedSilently) {
  ServerOptions options = small_options();
  options.idle_timeout = 200ms;
  start(options);
  RawConnection connection(server_->local_address());
  ASSERT_TRUE(connection.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(connection.read_response());
  auto idle_since = SteadyClock::now();
  EXPECT_TRUE(connection.closed_without_data());
  EXPECT_GE(SteadyClock::now() - idle_since, 150ms);
}

TEST_F(HttpServerTest, HandlerExceptionGives500AndTheConnectionSurvives) {
  start();
  RawConnection connection(server_->local_address());
  ASSERT_TRUE(connection.send("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto failed = connection.read_response();
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 500);
  EXPECT_NE(failed->body.find("internal_error"), std::string::npos) << failed->body;
  EXPECT_EQ(failed->body.find("handler bug"), std::string::npos) << "exception text leaked";
  ASSERT_TRUE(connection.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto after = connection.read_response();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(after->body, "GET /after ");
}

TEST_F(HttpServerTest, InvalidResponseHeaderBecomes500) {
  auto server = HttpServer::start(
      small_options(),
      [](HttpRequest&) {
        HttpResponse response;
        response.headers.push_back({"x-split", "a\r\nset-cookie: evil=1"});
        return response;
      },
      render_error);
  ASSERT_TRUE(server.has_value());
  auto response = http_call("http://" + (*server)->local_address(), "GET", "/", {}, "");
  ASSERT_TRUE(response.has_value()) << response.error().message;
  EXPECT_EQ(response->status, 500);
  EXPECT_FALSE(response->header("set-cookie").has_value());
}

TEST_F(HttpServerTest, GracefulStopFinishesInFlightRequestsAndRefusesNewOnes) {
  start();  // two I/O threads; the idle connection and the slow one land on different threads
  std::string address = server_->local_address();
  RawConnection idle(address);
  ASSERT_TRUE(idle.send("GET /warm HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.read_response());

  RawConnection slow(address);  // keep-alive by default, unlike http_call
  ASSERT_TRUE(slow.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(gate_.wait_entered(3s));

  server_->stop();
  EXPECT_TRUE(idle.closed_without_data(2000ms)) << "idle keep-alive connection not closed";
  EXPECT_TRUE(eventually([&] {
    RawConnection probe(address);
    return !probe.connected() && probe.connect_errno() == ECONNREFUSED;
  })) << "new connections are still accepted";

  gate_.release();
  auto response = slow.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "GET /slow ");
  EXPECT_TRUE(response->has_header("connection: close"));
  EXPECT_TRUE(slow.closed_without_data());
  slow.close();  // as a client does after `Connection: close`; the server stops lingering
  auto waiting_since = SteadyClock::now();
  server_->wait();
  EXPECT_LT(SteadyClock::now() - waiting_since, 500ms);
  server_->stop();  // idempotent
  server_->wait();
}

TEST_F(HttpServerTest, StopClosesConnectionsStillOpenAfterTheGrace) {
  ServerOptions options = small_options();
  options.shutdown_grace = 100ms;
  options.send_timeout = 5000ms;
  std::promise<void> handled;
  auto server = HttpServer::start(
      options,
      [&handled](HttpRequest&) {
        handled.set_value();
        return HttpResponse{200, {}, std::string(16 * 1024 * 1024, 'z')};
      },
      render_error);
  ASSERT_TRUE(server.has_value());
  server_ = std::move(*server);
  // A client that asks for a large response and does not read it: the server is stuck writing.
  RawConnection stuck(server_->local_address(), /*receive_buffer=*/4096);
  ASSERT_TRUE(stuck.send("GET /large HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(handled.get_future().wait_for(3s), std::future_status::ready);
  auto stopping_since = SteadyClock::now();
  server_->stop();
  server_->wait();
  auto stop_took = SteadyClock::now() - stopping_since;
  EXPECT_GE(stop_took, 80ms);    // the grace was given…
  EXPECT_LT(stop_took, 1500ms);  // …and not the 5 s send timeout
}

TEST_F(HttpServerTest, SecondServerOnTheSameAddressIsUnavailable) {
  start();
  ServerOptions options = small_options();
  options.listen = server_->local_address();
  auto second = HttpServer::start(
      options, [](HttpRequest&) { return HttpResponse{}; }, render_error);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message.find("address already in use"), std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find(server_->local_address()), std::string::npos);
}

TEST_F(HttpServerTest, InvalidListenAddressIsUnavailable) {
  for (std::string listen : {"nonsense", "127.0.0.1:99999", "::1:4100", "[::1:4100", ":4100"}) {
    ServerOptions options = small_options();
    options.listen = listen;
    auto server = HttpServer::start(
        options, [](HttpRequest&) { return HttpResponse{}; }, render_error);
    ASSERT_FALSE(server.has_value()) << listen;
    EXPECT_EQ(server.error().code, ErrorCode::kUnavailable) << listen;
    EXPECT_NE(server.error().message.find("cannot listen on"), std::string::npos);
  }
}

TEST(HttpClientTest, ClosedPortIsUnavailableWithAClearMessage) {
  std::string address;
  {
    auto server = HttpServer::start(
        small_options(), [](HttpRequest&) { return HttpResponse{}; }, render_error);
    ASSERT_TRUE(server.has_value());
    address = (*server)->local_address();
  }  // stopped and closed: nothing listens there now
  auto response = http_call("http://" + address, "GET", "/healthz", {}, "", 2s);
  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(response.error().message,
            "cannot reach till at http://" + address + ": connection refused");
  EXPECT_TRUE(response.error().retryable);
}

TEST_F(HttpServerTest, ClientTimesOutOnASlowServer) {
  start();
  auto started = SteadyClock::now();
  auto response = http_call(url(), "GET", "/slow", {}, "", 200ms);
  ASSERT_FALSE(response.has_value());
  EXPECT_LT(SteadyClock::now() - started, 1500ms);
  EXPECT_EQ(response.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(response.error().message,
            "cannot reach till at " + url() + ": no response within 200 ms");
}

TEST(HttpClientTest, BadUrlsNameTillUrl) {
  for (std::string bad : {"127.0.0.1:4100", "ftp://x", "http://", "http://:4100", "http://h:0",
                          "http://h:99999", "http://h:port", "https://"}) {
    auto response = http_call(bad, "GET", "/", {}, "", 200ms);
    ASSERT_FALSE(response.has_value()) << bad;
    EXPECT_EQ(response.error().code, ErrorCode::kInvalidRequest) << bad;
    EXPECT_NE(response.error().message.find("TILL_URL"), std::string::npos) << bad;
  }
  auto with_credentials = http_call("http://admin:hunter2@h:1", "GET", "/", {}, "", 200ms);
  ASSERT_FALSE(with_credentials.has_value());
  EXPECT_EQ(with_credentials.error().message.find("hunter2"), std::string::npos);
}

TEST(HttpClientTest, HttpsVerifiesTheServersCertificate) {
  // A certificate from a CA the system does not trust: the handshake must fail, and no request
  // may reach the server.
  const test::TestPki pki = test::make_test_pki({"localhost"}, {});
  test::FakeUpstream upstream(
      [](const test::SeenRequest&, test::FakeConnection& connection) {
        connection.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      },
      &pki);
  auto response = http_call(upstream.url("https://localhost"), "POST", "/hook", {}, "{}", 2s);
  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(response.error().message.find("TLS handshake failed"), std::string::npos)
      << response.error().message;
  EXPECT_TRUE(upstream.requests().empty());
}

TEST(HttpClientTest, HeaderValuesNeverAppearInErrors) {
  auto response = http_call("http://127.0.0.1:1", "GET", "/",
                            {{"authorization", "Bearer till_sk_secret\r\nx-evil: 1"}}, "", 200ms);
  ASSERT_FALSE(response.has_value());
  EXPECT_EQ(response.error().code, ErrorCode::kInvalidRequest);
  EXPECT_NE(response.error().message.find("authorization"), std::string::npos);
  EXPECT_EQ(response.error().message.find("till_sk_secret"), std::string::npos);
}

}  // namespace
}  // namespace till
