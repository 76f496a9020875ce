// HttpServer forwarding (include/till/forward.h) against a scripted fake upstream: relaying heads
// and bodies, streaming, the upstream connection pool, every failure path and its single report to
// the observer, graceful stop, and TLS verification.
#include "till/forward.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http/server.h"
#include "unit/http/fake_upstream.h"
#include "unit/http/test_net.h"

namespace till {
namespace {

using namespace std::chrono_literals;
using test::FakeConnection;
using test::FakeUpstream;
using test::Latch;
using test::RawConnection;
using test::RawResponse;
using test::SeenRequest;
using SteadyClock = std::chrono::steady_clock;

HttpResponse render_server_error(const Error& error) {
  HttpResponse response;
  response.status = http_status(error.code);
  response.headers.push_back({"content-type", "application/json"});
  response.body = "{\"error\":{\"code\":\"" + std::string(to_string(error.code)) + "\"}}";
  return response;
}

// What one exchange's observer saw, readable from the test thread.
class ObserverLog {
 public:
  void add(const std::string& event, const std::function<void(ObserverLog&)>& update = {}) {
    {
      std::lock_guard lock(mutex_);
      if (update) update(*this);
      events_.push_back(event);
    }
    cv_.notify_all();
  }

  bool wait_destroyed(std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout,
                        [this] { return !events_.empty() && events_.back() == "destroyed"; });
  }

  // The events in order, consecutive "body" events shown once: "head body complete destroyed".
  std::string sequence() {
    std::lock_guard lock(mutex_);
    std::string out;
    for (size_t i = 0; i < events_.size(); ++i) {
      if (events_[i] == "body" && i > 0 && events_[i - 1] == "body") continue;
      if (!out.empty()) out += ' ';
      out += events_[i];
    }
    return out;
  }

  std::vector<std::string> chunks() {
    std::lock_guard lock(mutex_);
    return chunks_;
  }
  std::string body() {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const std::string& chunk : chunks_) out += chunk;
    return out;
  }
  int status() {
    std::lock_guard lock(mutex_);
    return status_;
  }
  std::optional<Error> failure() {
    std::lock_guard lock(mutex_);
    return failure_;
  }

  int status_ = 0;
  std::vector<std::string> chunks_;
  std::optional<Error> failure_;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
};

// Records every call; edits the response head (adds x-observed, removes x-drop-me) to show that
// the client gets the headers as the observer leaves them.
class RecordingObserver final : public ExchangeObserver {
 public:
  explicit RecordingObserver(std::shared_ptr<ObserverLog> log) : log_(std::move(log)) {}
  ~RecordingObserver() override { log_->add("destroyed"); }

  void on_response_head(int status, HttpHeaders& headers) override {
    log_->add("head", [status](ObserverLog& log) { log.status_ = status; });
    std::erase_if(headers, [](const HttpHeader& h) { return h.name == "x-drop-me"; });
    headers.push_back({"x-observed", "yes"});
  }
  void on_response_body(std::string_view chunk) override {
    log_->add("body", [chunk](ObserverLog& log) { log.chunks_.emplace_back(chunk); });
  }
  void on_complete() override { log_->add("complete"); }
  void on_failure(const Error& error) override {
    log_->add("failure", [&error](ObserverLog& log) { log.failure_ = error; });
  }
  HttpResponse render_error(const Error& error) override {
    log_->add("render");
    HttpResponse response = render_server_error(error);
    response.headers.push_back({"x-rendered-by", "observer"});
    return response;
  }

 private:
  std::shared_ptr<ObserverLog> log_;
};

// A port nothing listens on.
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string chunk(std::string_view data) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + std::string(data) + "\r\n";
}

void answer_ok(const SeenRequest&, FakeConnection& connection) {
  connection.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok");
}

constexpr std::string_view kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

class ForwardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new test::TestPki(test::make_test_pki({"localhost"}, {})); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  static ServerOptions default_options() {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 1;  // one pool: connection reuse is deterministic
    options.header_timeout = 3000ms;
    options.body_timeout = 3000ms;
    options.idle_timeout = 3000ms;
    options.send_timeout = 3000ms;
    options.shutdown_grace = 1000ms;
    options.upstream.connect_timeout = 2000ms;
    options.upstream.response_timeout = 3000ms;
    options.upstream.idle_timeout = 3000ms;
    return options;
  }

  void start(const std::string& upstream_url, ServerOptions options = default_options()) {
    auto endpoint = UpstreamEndpoint::parse(upstream_url);
    ASSERT_TRUE(endpoint.has_value()) << endpoint.error().message;
    endpoint_ = *endpoint;
    auto server = HttpServer::start(
        std::move(options), [this](HttpRequest& request) { return handle(request); },
        render_server_error);
    ASSERT_TRUE(server.has_value()) << server.error().message;
    server_ = std::move(*server);
  }

  void TearDown() override {
    for (Latch& gate : gates_) gate.open();
    server_.reset();
    upstream_.reset();
  }

  HandlerResult handle(HttpRequest& request) {
    auto log = std::make_shared<ObserverLog>();
    {
      std::lock_guard lock(logs_mutex_);
      logs_.push_back(log);
    }
    logs_cv_.notify_all();
    Forward forward;
    forward.request.upstream = endpoint_;
    forward.request.method = request.method;
    forward.request.target = endpoint_.base_path + request.target;
    forward.request.headers = std::move(request.headers);
    forward.request.body = std::move(request.body);
    forward.request.idempotent = request.method == "GET" || request.method == "HEAD";
    forward.observer = std::make_unique<RecordingObserver>(log);
    return forward;
  }

  // The observer log of the i-th forwarded request (0-based), once the handler has created it.
  std::shared_ptr<ObserverLog> log(size_t i) {
    std::unique_lock lock(logs_mutex_);
    logs_cv_.wait_for(lock, 5s, [&] { return logs_.size() > i; });
    return i < logs_.size() ? logs_[i] : std::make_shared<ObserverLog>();
  }

  std::string address() const { return server_->local_address(); }

  static inline test::TestPki* pki_ = nullptr;
  std::array<Latch, 6> gates_;  // opened by the test to let the fake upstream go on
  std::unique_ptr<FakeUpstream> upstream_;
  std::unique_ptr<HttpServer> server_;
  UpstreamEndpoint endpoint_;
  std::mutex logs_mutex_;
  std::condition_variable logs_cv_;
  std::vector<std::shared_ptr<ObserverLog>> logs_;
};

TEST_F(ForwardTest, RelaysHeadersBothWaysAndStripsHopByHopOnes) {
  const std::string body = R"({"id":"chatcmpl-1","usage":{"prompt_tokens":3}})";
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection& c) {
    c.write(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Upstream: yes\r\n"
        "X-Drop-Me: 1\r\nConnection: keep-alive, X-Resp-Hop\r\nX-Resp-Hop: secret\r\n"
        "Keep-Alive: timeout=5\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body);
  });
  start(upstream_->url() + "/base/");
  RawConnection client(address());
  const std::string request_body = R"({"model":"gpt-4o-mini"})";
  ASSERT_TRUE(client.send(
      "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: till.local\r\n"
      "Content-Type: application/json\r\nX-Custom: abc\r\nConnection: keep-alive, X-Hop\r\n"
      "X-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\n"
      "Content-Length: " +
      std::to_string(request_body.size()) + "\r\n\r\n" + request_body));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, body);
  EXPECT_TRUE(response->has_header("x-upstream: yes")) << response->head;
  EXPECT_TRUE(response->has_header("content-type: application/json"));
  EXPECT_TRUE(response->has_header("content-length: " + std::to_string(body.size())));
  EXPECT_TRUE(response->has_header("x-observed: yes"));
  EXPECT_FALSE(response->has_header_named("x-drop-me"));
  EXPECT_FALSE(response->has_header_named("x-resp-hop"));
  EXPECT_FALSE(response->has_header_named("keep-alive"));
  EXPECT_FALSE(response->has_header_named("connection"));
  EXPECT_FALSE(response->has_header_named("transfer-encoding"));

  auto requests = upstream_->requests();
  ASSERT_EQ(requests.size(), 1u);
  const SeenRequest& seen = requests[0];
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/base/v1/chat/completions?x=1");
  EXPECT_EQ(seen.body, request_body);
  EXPECT_EQ(seen.header("host"), "127.0.0.1:" + std::to_string(upstream_->port()));
  EXPECT_EQ(seen.header("content-length"), std::to_string(request_body.size()));
  EXPECT_EQ(seen.header("content-type"), "application/json");
  EXPECT_EQ(seen.header("x-custom"), "abc");
  for (const char* hop : {"connection", "x-hop", "keep-alive", "te", "proxy-authorization",
                          "transfer-encoding", "upgrade"}) {
    EXPECT_FALSE(seen.header(hop).has_value()) << hop;
  }
  size_t host_headers = 0;
  for (const HttpHeader& h : seen.headers) host_headers += h.name == "host";
  EXPECT_EQ(host_headers, 1u);

  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "head body complete destroyed");
  EXPECT_EQ(log->status(), 200);
  EXPECT_EQ(log->body(), body);
}

TEST_F(ForwardTest, KeepsTheUpstreamConnectionAliveAcrossRequests) {
  upstream_ = std::make_unique<FakeUpstream>(answer_ok);
  start(upstream_->url());
  {
    RawConnection client(address());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(client.send("GET /r" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
      auto response = client.read_response();
      ASSERT_TRUE(response) << i;
      EXPECT_EQ(response->body, "ok");
    }
  }
  RawConnection other_client(address());  // same I/O thread, same pool
  ASSERT_TRUE(other_client.send("GET /other HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(other_client.read_response());
  EXPECT_EQ(upstream_->accepts(), 1);
  auto requests = upstream_->requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[3].connection, 1);
  EXPECT_EQ(requests[3].index, 4);
}

TEST_F(ForwardTest, NoPoolingWhenNoIdleConnectionIsAllowed) {
  upstream_ = std::make_unique<FakeUpstream>(answer_ok);
  ServerOptions options = default_options();
  options.upstream.max_idle_connections_per_host = 0;
  start(upstream_->url(), options);
  RawConnection client(address());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(client.read_response());
  }
  EXPECT_EQ(upstream_->accepts(), 2);
}

TEST_F(ForwardTest, StreamsServerSentEventsOneByOne) {
  const std::array<std::string, 3> events{"data: {\"n\":1}\n\n", "data: {\"n\":2}\n\n",
                                          "data: [DONE]\n\n"};
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection& c) {
    c.write(kChunkedHead);
    for (size_t i = 0; i < events.size(); ++i) {
      if (!gates_[i].wait()) return;
      c.write(chunk(events[i]));
    }
    if (!gates_[3].wait()) return;
    c.write("0\r\n\r\n");
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
  // The head arrives before any event exists.
  auto head = client.read_head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->has_header("transfer-encoding: chunked")) << head->head;
  EXPECT_TRUE(head->has_header("content-type: text/event-stream"));
  for (size_t i = 0; i < events.size(); ++i) {
    gates_[i].open();  // the upstream sends event i; event i+1 is not sent before we read it
    auto received = client.read_chunk();
    ASSERT_TRUE(received) << "event " << i << " did not arrive while the upstream waited";
    EXPECT_EQ(*received, events[i]);
  }
  gates_[3].open();
  auto last = client.read_chunk();
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, "");
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "head body complete destroyed");
  EXPECT_EQ(log->chunks(), std::vector<std::string>(events.begin(), events.end()));

  // The connection is still good for the next request.
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  for (Latch& gate : gates_) gate.open();
  auto next = client.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST_F(ForwardTest, ContentLengthBodyIsRelayedAsItArrives) {
  const std::string first(256 * 1024, 'a');
  const std::string second(256 * 1024, 'b');
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection& c) {
    c.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(first.size() + second.size()) +
            "\r\n\r\n" + first);
    if (gates_[0].wait()) c.write(second);
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto head = client.read_head();
  ASSERT_TRUE(head);
  EXPECT_TRUE(head->has_header("content-length: " + std::to_string(first.size() + second.size())));
  EXPECT_FALSE(head->has_header_named("transfer-encoding"));
  auto first_received = client.read_exact(first.size());  // before the upstream sends the rest
  ASSERT_TRUE(first_received);
  EXPECT_EQ(*first_received, first);
  gates_[0].open();
  auto second_received = client.read_exact(second.size());
  ASSERT_TRUE(second_received);
  EXPECT_EQ(*second_received, second);
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "head body complete destroyed");
  EXPECT_EQ(log->body().size(), first.size() + second.size());
}

TEST_F(ForwardTest, CloseDelimitedBodyIsRelayedChunkedToHttp11AndUntilCloseToHttp10) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection& c) {
    c.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\npart one,");
    c.write("part two");
    c.close();
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_TRUE(response->has_header("transfer-encoding: chunked")) << response->head;
  EXPECT_FALSE(response->has_header("connection: close"));
  EXPECT_EQ(response->body, "part one,part two");
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "head body complete destroyed");

  RawConnection old_client(address());
  ASSERT_TRUE(old_client.send("GET /b HTTP/1.0\r\n\r\n"));
  auto old_response = old_client.read_response();
  ASSERT_TRUE(old_response);
  EXPECT_TRUE(old_response->has_header("connection: close")) << old_response->head;
  EXPECT_FALSE(old_response->has_header_named("transfer-encoding"));
  EXPECT_FALSE(old_response->has_header_named("content-length"));
  EXPECT_EQ(old_response->body, "part one,part two");
  EXPECT_EQ(upstream_->accepts(), 2);  // a connection the upstream closes is not pooled
}

TEST_F(ForwardTest, UpstreamErrorStatusIsRelayedAndCompletes) {
  const std::string body = R"({"error":{"message":"overloaded"}})";
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection& c) {
    c.write(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body);
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);
  EXPECT_EQ(response->body, body);
  EXPECT_FALSE(response->has_header_named("x-rendered-by"));
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "head body complete destroyed");
  EXPECT_EQ(log->status(), 500);
  EXPECT_FALSE(log->failure());
}

TEST_F(ForwardTest, HeadRequestGetsTheLengthButNoBody) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest& r, FakeConnection& c) {
    if (r.method == "HEAD") {
      c.write("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
    } else {
      answer_ok(r, c);
    }
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto head = client.read_response(/*head_request=*/true);
  ASSERT_TRUE(head);
  EXPECT_TRUE(head->has_header("content-length: 1234")) << head->head;
  ASSERT_TRUE(client.send("GET /g HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto get = client.read_response();
  ASSERT_TRUE(get);
  EXPECT_EQ(get->body, "ok");  // nothing was left over from the HEAD
  EXPECT_EQ(upstream_->accepts(), 1);
}

TEST_F(ForwardTest, InterimResponsesFromUpstreamAreSkipped) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection& c) {
    c.write(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
        "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone");
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, "done");
  EXPECT_FALSE(response->has_header_named("link"));
}

TEST_F(ForwardTest, LargeRequestBodyArrivesWhole) {
  upstream_ = std::make_unique<FakeUpstream>(answer_ok);
  ServerOptions options = default_options();
  options.max_body_bytes = 8 * 1024 * 1024;
  start(upstream_->url(), options);
  std::string body(6 * 1024 * 1024, 'x');
  for (size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + i / 4096 % 26);
  RawConnection client(address());
  ASSERT_TRUE(client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body));
  auto response = client.read_response(false, 10s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  auto requests = upstream_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(requests[0].body == body)
      << "the upstream received " << requests[0].body.size() << " bytes";
}

TEST_F(ForwardTest, PipelinedRequestsAreForwardedInOrder) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest& r, FakeConnection& c) {
    c.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(r.target.size()) + "\r\n\r\n" +
            r.target);
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(
      client.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = client.read_response();
  auto second = client.read_response();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->body, "/one");
  EXPECT_EQ(second->body, "/two");
}

TEST_F(ForwardTest, RefusedConnectionRenders502AndFailsOnce) {
  uint16_t port = closed_port();
  start("http://127.0.0.1:" + std::to_string(port));
  RawConnection client(address());
  ASSERT_TRUE(client.send("POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 502);
  EXPECT_TRUE(response->has_header("x-rendered-by: observer"));
  EXPECT_NE(response->body.find("upstream_error"), std::string::npos) << response->body;
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "render failure destroyed");
  auto failure = log->failure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->code, ErrorCode::kUpstreamError);
  EXPECT_EQ(failure->source, ErrorSource::kUpstream);
  EXPECT_TRUE(failure->retryable);
  EXPECT_EQ(failure->message, "cannot connect to upstream http://127.0.0.1:" +
                                  std::to_string(port) + ": connection refused");
  // The client connection survives an upstream failure.
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto again = client.read_response();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 502);
}

TEST_F(ForwardTest, SilentUpstreamRenders504) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection&) {
    gates_[0].wait();  // never answers
  });
  ServerOptions options = default_options();
  options.upstream.response_timeout = 200ms;
  start(upstream_->url(), options);
  RawConnection client(address());
  auto started = SteadyClock::now();
  ASSERT_TRUE(client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_GE(SteadyClock::now() - started, 150ms);
  EXPECT_EQ(response->status, 504);
  EXPECT_NE(response->body.find("upstream_timeout"), std::string::npos);
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "render failure destroyed");
  auto failure = log->failure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->code, ErrorCode::kUpstreamTimeout);
  EXPECT_EQ(failure->message, "upstream " + upstream_->url() + " did not answer within 200 ms");
  gates_[0].open();
  EXPECT_TRUE(test::eventually([&] { return upstream_->closed_by_peer() == 1; }))
      << "the timed-out upstream connection was not closed";
}

TEST_F(ForwardTest, UpstreamResetMidBodyFailsAndClosesTheClient) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection& c) {
    c.write(std::string(kChunkedHead) + chunk("first"));
    gates_[0].wait();
    c.reset();
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(client.read_head());
  auto first = client.read_chunk();
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, "first");
  gates_[0].open();
  EXPECT_FALSE(client.read_chunk()) << "the client got an end to a broken response";
  EXPECT_TRUE(client.closed());
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "head body failure destroyed");
  auto failure = log->failure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->code, ErrorCode::kUpstreamError);
  EXPECT_EQ(failure->source, ErrorSource::kUpstream);
  EXPECT_NE(failure->message.find(upstream_->url()), std::string::npos) << failure->message;
  EXPECT_NE(failure->message.find("middle of the response"), std::string::npos) << failure->message;
}

TEST_F(ForwardTest, UpstreamSilentMidBodyTimesOut) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection& c) {
    c.write(std::string(kChunkedHead) + chunk("first"));
    gates_[0].wait();
  });
  ServerOptions options = default_options();
  options.upstream.idle_timeout = 200ms;
  start(upstream_->url(), options);
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(client.read_head());
  ASSERT_TRUE(client.read_chunk());
  EXPECT_TRUE(client.closed());
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "head body failure destroyed");
  auto failure = log->failure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->code, ErrorCode::kUpstreamTimeout);
  EXPECT_EQ(failure->message, "upstream " + upstream_->url() +
                                  " sent nothing for 200 ms in the middle of the response");
}

TEST_F(ForwardTest, ClientLeavingMidStreamCancelsTheUpstream) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection& c) {
    c.write(std::string(kChunkedHead) + chunk("data: 1\n\n"));
    // ...and nothing more: the generation is "still running" when the client leaves.
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
  ASSERT_TRUE(client.read_head());
  ASSERT_TRUE(client.read_chunk());
  client.close();
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "head body failure destroyed");
  auto failure = log->failure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->code, ErrorCode::kUnavailable);
  EXPECT_EQ(failure->source, ErrorSource::kClient);
  EXPECT_TRUE(test::eventually([&] { return upstream_->closed_by_peer() == 1; }))
      << "the upstream connection was left open";
}

TEST_F(ForwardTest, ClientLeavingBeforeTheHeadCancelsTheUpstream) {
  upstream_ = std::make_unique<FakeUpstream>([](const SeenRequest&, FakeConnection&) {});
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(upstream_->wait_for_requests(1));
  client.close();
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "failure destroyed");  // nobody to render an error for
  auto failure = log->failure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->source, ErrorSource::kClient);
  EXPECT_TRUE(test::eventually([&] { return upstream_->closed_by_peer() == 1; }));
}

TEST_F(ForwardTest, StaleIdleConnectionIsNotUsedForAPost) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest& r, FakeConnection& c) {
    answer_ok(r, c);
    if (r.connection == 1) {  // closes its idle connection once the test says so
      gates_[0].wait();
      c.close();
      gates_[1].open();
    }
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(client.read_response());
  gates_[0].open();
  ASSERT_TRUE(gates_[1].wait());  // the pooled connection is now closed by the upstream
  ASSERT_TRUE(client.send("POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(upstream_->accepts(), 2);
  auto requests = upstream_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].method, "POST");
  EXPECT_EQ(requests[1].connection, 2);
  auto log = this->log(1);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "head body complete destroyed");
}

TEST_F(ForwardTest, BrokenReusedConnectionIsRetriedForAGetButNeverForAPost) {
  // The upstream drops every connection on its second request without answering, as an
  // upstream that closed an idle connection at the moment it was reused would.
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest& r, FakeConnection& c) {
    if (r.index >= 2) {
      c.reset();
      return;
    }
    answer_ok(r, c);
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(client.read_response());
  ASSERT_TRUE(client.send("GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto get = client.read_response();
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200) << "an idempotent request is retried on a fresh connection";
  EXPECT_EQ(upstream_->accepts(), 2);

  ASSERT_TRUE(client.send("POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
  auto post = client.read_response();
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 502);
  EXPECT_EQ(upstream_->accepts(), 2) << "a POST that may have been received is not retried";
  size_t posts = 0;
  for (const SeenRequest& r : upstream_->requests()) posts += r.method == "POST";
  EXPECT_EQ(posts, 1u);
  auto log = this->log(2);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "render failure destroyed");
  EXPECT_EQ(log->failure()->code, ErrorCode::kUpstreamError);
}

TEST_F(ForwardTest, GracefulStopLetsAForwardInFlightFinish) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest&, FakeConnection& c) {
    gates_[0].wait();
    c.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
  });
  start(upstream_->url());
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(upstream_->wait_for_requests(1));
  server_->stop();
  gates_[0].open();
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "done");
  EXPECT_TRUE(response->has_header("connection: close"));
  EXPECT_TRUE(client.closed_without_data());
  client.close();
  server_->wait();
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "head body complete destroyed");
}

TEST_F(ForwardTest, StopCancelsForwardsStillRunningAfterTheGrace) {
  upstream_ = std::make_unique<FakeUpstream>([&](const SeenRequest& r, FakeConnection& c) {
    if (r.target == "/streaming") c.write(std::string(kChunkedHead) + chunk("partial"));
    gates_[0].wait();
  });
  ServerOptions options = default_options();
  options.shutdown_grace = 200ms;
  start(upstream_->url(), options);
  RawConnection streaming(address());
  ASSERT_TRUE(streaming.send("GET /streaming HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(streaming.read_head());
  ASSERT_TRUE(streaming.read_chunk());
  RawConnection waiting(address());
  ASSERT_TRUE(waiting.send("GET /waiting HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(upstream_->wait_for_requests(2));
  auto stopping_since = SteadyClock::now();
  server_->stop();
  server_->wait();
  EXPECT_LT(SteadyClock::now() - stopping_since, 2000ms);
  EXPECT_TRUE(streaming.closed());
  EXPECT_TRUE(waiting.closed_without_data());
  for (size_t i = 0; i < 2; ++i) {
    auto log = this->log(i);
    ASSERT_TRUE(log->wait_destroyed());
    auto failure = log->failure();
    ASSERT_TRUE(failure) << i;
    EXPECT_EQ(failure->code, ErrorCode::kUnavailable) << i;
    EXPECT_EQ(failure->message, "the server is shutting down");
  }
  EXPECT_EQ(log(0)->sequence(), "head body failure destroyed");
  EXPECT_EQ(log(1)->sequence(), "failure destroyed");
}

TEST_F(ForwardTest, TlsUpstreamVerifiedWithTheExtraCa) {
  upstream_ = std::make_unique<FakeUpstream>(answer_ok, pki_);
  test::TempFile ca(pki_->ca_cert_pem);
  ServerOptions options = default_options();
  options.upstream.extra_ca_file = ca.path();
  start(upstream_->url("https://localhost"), options);
  RawConnection client(address());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(client.send("POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
    auto response = client.read_response();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
    EXPECT_EQ(response->body, "ok");
  }
  EXPECT_EQ(upstream_->accepts(), 1) << "the TLS connection was not reused";
  EXPECT_EQ(upstream_->server_names(), std::vector<std::string>{"localhost"});
  auto requests = upstream_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].header("host"), "localhost:" + std::to_string(upstream_->port()));
}

TEST_F(ForwardTest, TlsUpstreamWithAnUntrustedCertificateFails) {
  upstream_ = std::make_unique<FakeUpstream>(answer_ok, pki_);
  start(upstream_->url("https://localhost"));  // no extra CA: the test CA is unknown
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 502);
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  EXPECT_EQ(log->sequence(), "render failure destroyed");
  auto failure = log->failure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->code, ErrorCode::kUpstreamError);
  EXPECT_NE(failure->message.find("certificate"), std::string::npos) << failure->message;
  EXPECT_NE(failure->message.find("https://localhost:"), std::string::npos) << failure->message;
  EXPECT_TRUE(upstream_->requests().empty());
}

TEST_F(ForwardTest, TlsUpstreamWithTheWrongHostNameFails) {
  upstream_ = std::make_unique<FakeUpstream>(answer_ok, pki_);  // certificate for "localhost"
  test::TempFile ca(pki_->ca_cert_pem);
  ServerOptions options = default_options();
  options.upstream.extra_ca_file = ca.path();
  start(upstream_->url("https://127.0.0.1"), options);
  RawConnection client(address());
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto response = client.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 502);
  auto log = this->log(0);
  ASSERT_TRUE(log->wait_destroyed());
  auto failure = log->failure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->code, ErrorCode::kUpstreamError);
  EXPECT_NE(failure->message.find("certificate"), std::string::npos) << failure->message;
  EXPECT_NE(failure->message.find("mismatch"), std::string::npos) << failure->message;
  EXPECT_TRUE(upstream_->requests().empty());
}

TEST_F(ForwardTest, UnreadableCaFileFailsStart) {
  ServerOptions options = default_options();
  options.upstream.extra_ca_file = "/nonexistent/till-ca.pem";
  auto server = HttpServer::start(
      options, [](HttpRequest&) { return HttpResponse{}; }, render_server_error);
  ASSERT_FALSE(server.has_value());
  EXPECT_EQ(server.error().code, ErrorCode::kInvalidRequest);
  EXPECT_NE(server.error().message.find("/nonexistent/till-ca.pem"), std::string::npos)
      << server.error().message;
}

TEST_F(ForwardTest, NonPositiveUpstreamTimeoutsAreRejected) {
  ServerOptions options = default_options();
  options.upstream.response_timeout = 0ms;
  auto server = HttpServer::start(
      options, [](HttpRequest&) { return HttpResponse{}; }, render_server_error);
  ASSERT_FALSE(server.has_value());
  EXPECT_EQ(server.error().code, ErrorCode::kInvalidRequest);
}

}  // namespace
}  // namespace till
