#include "monitor/webhook_sender.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/crypto.h"
#include "core/time_text.h"

namespace till {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr auto kDeadline = 10s;

// Polls `done` until it holds or kDeadline passes; returns whether it held.
template <typename Pred>
bool eventually(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A JSON string's text, or a marker that makes the comparison fail.
std::string text_of(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : "<not a string: " + json::serialize(v) + ">";
}

std::optional<std::string> header(const Headers& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return std::nullopt;
}

// A webhook endpoint: records every call, answers from a script (then `otherwise`), and can hold
// calls until released. Shared with the sender's post function, so it outlives a detached worker.
class FakeEndpoint : public std::enable_shared_from_this<FakeEndpoint> {
 public:
  struct Call {
    std::string url;
    Headers headers;
    std::string body;
    std::chrono::steady_clock::time_point at;
  };

  static std::shared_ptr<FakeEndpoint> make() { return std::make_shared<FakeEndpoint>(); }

  WebhookPost post() {
    return [self = shared_from_this()](const std::string& url, const Headers& headers,
                                       const std::string& body) {
      return self->handle(url, headers, body);
    };
  }

  void answer(std::vector<Result<int>> script) {
    std::lock_guard lock(mu_);
    script_.assign(script.begin(), script.end());
  }
  void otherwise(Result<int> response) {
    std::lock_guard lock(mu_);
    otherwise_ = std::move(response);
  }
  // Calls block until release().
  void hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void release() {
    std::lock_guard lock(mu_);
    held_ = false;
    cv_.notify_all();
  }

  bool wait_for_calls(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] { return calls_.size() >= n; });
  }
  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  // Calls that have returned.
  int completed() const {
    std::lock_guard lock(mu_);
    return completed_;
  }

 private:
  Result<int> handle(const std::string& url, const Headers& headers, const std::string& body) {
    std::unique_lock lock(mu_);
    calls_.push_back(Call{url, headers, body, std::chrono::steady_clock::now()});
    cv_.notify_all();
    cv_.wait(lock, [&] { return !held_; });
    ++completed_;
    if (script_.empty()) return otherwise_;
    Result<int> response = std::move(script_.front());
    script_.pop_front();
    return response;
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Call> calls_;
  std::deque<Result<int>> script_;
  Result<int> otherwise_ = 200;
  bool held_ = false;
  int completed_ = 0;
};

AlertRecord sample_alert() {
  AlertRecord alert;
  alert.id = 42;
  alert.key_id = "key_AAAAAAAAAAAAAAAA";
  alert.rule = "loop";
  alert.severity = "warning";
  alert.message = "the same request 20 times in 60 s: check the \"agent\" for a loop";
  alert.action = "suspend";
  alert.created_at = *parse_rfc3339("2026-12-04T15:00:00Z", "t");
  return alert;
}

WebhookOptions fast_options() {
  WebhookOptions options;
  options.initial_backoff = 1ms;
  options.max_backoff = 4ms;
  options.drain_timeout = 2s;
  return options;
}

std::string expected_v1(std::string_view secret, std::string_view t, std::string_view body) {
  const auto key = std::span(reinterpret_cast<const uint8_t*>(secret.data()), secret.size());
  return crypto::hex_encode(crypto::hmac_sha256(key, std::string(t) + "." + std::string(body)));
}

TEST(WebhookSignatureTest, KnownVector) {
  // printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test
  EXPECT_EQ(webhook_signature("whsec_test", 1700000000, "{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91");
  EXPECT_EQ(expected_v1("whsec_test", "1700000000", "{}"),
            "35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91");
}

TEST(WebhookSignatureTest, DependsOnSecretTimeAndBody) {
  const std::string base = webhook_signature("whsec_test", 1700000000, "{}");
  EXPECT_NE(webhook_signature("whsec_other", 1700000000, "{}"), base);
  EXPECT_NE(webhook_signature("whsec_test", 1700000001, "{}"), base);
  EXPECT_NE(webhook_signature("whsec_test", 1700000000, "{ }"), base);
}

TEST(WebhookBodyTest, TillFormatCarriesTheAlert) {
  const json::value body = json::parse(webhook_body(sample_alert(), WebhookTarget::Format::kTill));
  EXPECT_EQ(text_of(body.at("type")), "till.alert");
  const json::object& alert = body.at("alert").as_object();
  EXPECT_EQ(alert.at("id").as_int64(), 42);
  EXPECT_EQ(text_of(alert.at("key_id")), "key_AAAAAAAAAAAAAAAA");
  EXPECT_EQ(text_of(alert.at("rule")), "loop");
  EXPECT_EQ(text_of(alert.at("severity")), "warning");
  EXPECT_EQ(text_of(alert.at("message")), sample_alert().message);
  EXPECT_EQ(text_of(alert.at("action")), "suspend");
  EXPECT_EQ(text_of(alert.at("created_at")), "2026-12-04T15:00:00Z");
  EXPECT_EQ(alert.size(), 7u);
}

TEST(WebhookBodyTest, TillFormatKeyIdIsNullForAlertsWithoutKey) {
  AlertRecord alert = sample_alert();
  alert.key_id.clear();
  const json::value body = json::parse(webhook_body(alert, WebhookTarget::Format::kTill));
  EXPECT_TRUE(body.at("alert").at("key_id").is_null());
}

TEST(WebhookBodyTest, SlackFormatIsOneLineOfText) {
  const json::value body = json::parse(webhook_body(sample_alert(), WebhookTarget::Format::kSlack));
  EXPECT_EQ(body.as_object().size(), 1u);
  EXPECT_EQ(text_of(body.at("text")),
            "till alert [warning] loop: the same request 20 times in 60 s: check the \"agent\" "
            "for a loop (key key_AAAAAAAAAAAAAAAA)");
  AlertRecord no_key = sample_alert();
  no_key.key_id.clear();
  EXPECT_EQ(text_of(json::parse(webhook_body(no_key, WebhookTarget::Format::kSlack)).at("text")),
            "till alert [warning] loop: the same request 20 times in 60 s: check the \"agent\" "
            "for a loop");
}

TEST(WebhookSenderTest, SignsEachRequest) {
  auto endpoint = FakeEndpoint::make();
  WebhookSender sender({{"https://hooks.example/till"}}, "whsec_secret", endpoint->post(),
                       fast_options());
  sender.send(sample_alert());
  ASSERT_TRUE(eventually([&] { return sender.delivered() == 1; }));

  const auto calls = endpoint->calls();
  ASSERT_EQ(calls.size(), 1u);
  const auto& call = calls[0];
  EXPECT_EQ(call.url, "https://hooks.example/till");
  EXPECT_EQ(call.body, webhook_body(sample_alert(), WebhookTarget::Format::kTill));
  EXPECT_EQ(header(call.headers, "Content-Type"), "application/json");
  EXPECT_EQ(header(call.headers, "User-Agent"), "till");

  const std::string signature = header(call.headers, "Till-Signature").value_or("");
  ASSERT_TRUE(signature.starts_with("t=")) << signature;
  const size_t comma = signature.find(",v1=");
  ASSERT_NE(comma, std::string::npos) << signature;
  const std::string t = signature.substr(2, comma - 2);
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_LE(std::llabs(now - std::stoll(t)), 60) << "t is the current unix time";
  EXPECT_EQ(signature.substr(comma + 4), expected_v1("whsec_secret", t, call.body));
}

TEST(WebhookSenderTest, EachTargetGetsItsFormat) {
  auto endpoint = FakeEndpoint::make();
  WebhookSender sender({{"https://a.example/till", WebhookTarget::Format::kTill},
                        {"https://hooks.slack.example/T/B/x", WebhookTarget::Format::kSlack}},
                       "s", endpoint->post(), fast_options());
  sender.send(sample_alert());
  ASSERT_TRUE(eventually([&] { return sender.delivered() == 2; }));
  std::map<std::string, std::string> bodies;
  for (const auto& call : endpoint->calls()) bodies[call.url] = call.body;
  EXPECT_EQ(bodies["https://a.example/till"],
            webhook_body(sample_alert(), WebhookTarget::Format::kTill));
  EXPECT_EQ(bodies["https://hooks.slack.example/T/B/x"],
            webhook_body(sample_alert(), WebhookTarget::Format::kSlack));
}

TEST(WebhookSenderTest, RetriesWithBackoffUntilA2xx) {
  auto endpoint = FakeEndpoint::make();
  endpoint->answer({500, 500, 200});
  WebhookOptions options = fast_options();
  options.initial_backoff = 20ms;
  options.max_backoff = 30ms;
  WebhookSender sender({{"https://hooks.example/till"}}, "s", endpoint->post(), options);
  sender.send(sample_alert());
  ASSERT_TRUE(eventually([&] { return sender.delivered() == 1; }));

  const auto calls = endpoint->calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(sender.dropped(), 0);
  EXPECT_GE(calls[1].at - calls[0].at, 20ms) << "first backoff: initial_backoff";
  EXPECT_GE(calls[2].at - calls[1].at, 30ms) << "second: doubled, capped at max_backoff";
  EXPECT_EQ(calls[0].body, calls[2].body);
}

TEST(WebhookSenderTest, TransportErrorsAndNon2xxAreRetried) {
  auto endpoint = FakeEndpoint::make();
  endpoint->answer(
      {fail(Error{ErrorCode::kUpstreamError, ErrorSource::kUpstream, true, "connection refused"}),
       302, 404, 204});
  WebhookSender sender({{"https://hooks.example/till"}}, "s", endpoint->post(), fast_options());
  sender.send(sample_alert());
  ASSERT_TRUE(eventually([&] { return sender.delivered() == 1; }));
  EXPECT_EQ(endpoint->calls().size(), 4u);
}

TEST(WebhookSenderTest, GivesUpAfterMaxAttempts) {
  auto endpoint = FakeEndpoint::make();
  endpoint->otherwise(500);
  WebhookOptions options = fast_options();
  options.max_attempts = 3;
  WebhookSender sender({{"https://hooks.example/till"}}, "s", endpoint->post(), options);
  sender.send(sample_alert());
  ASSERT_TRUE(eventually([&] { return sender.dropped() == 1; }));
  EXPECT_EQ(endpoint->calls().size(), 3u);
  EXPECT_EQ(sender.delivered(), 0);

  // A later alert is still delivered.
  endpoint->otherwise(200);
  sender.send(sample_alert());
  ASSERT_TRUE(eventually([&] { return sender.delivered() == 1; }));
  EXPECT_EQ(endpoint->calls().size(), 4u);
}

TEST(WebhookSenderTest, DropsBeyondQueueLimit) {
  auto endpoint = FakeEndpoint::make();
  endpoint->hold();
  WebhookOptions options = fast_options();
  options.queue_limit = 2;
  WebhookSender sender({{"https://hooks.example/till"}}, "s", endpoint->post(), options);
  sender.send(sample_alert());
  ASSERT_TRUE(endpoint->wait_for_calls(1));  // in progress: no longer waiting in the queue
  sender.send(sample_alert());
  sender.send(sample_alert());
  sender.send(sample_alert());  // the third waiting one
  EXPECT_EQ(sender.dropped(), 1);
  endpoint->release();
  ASSERT_TRUE(eventually([&] { return sender.delivered() == 3; }));
  EXPECT_EQ(sender.dropped(), 1);
  EXPECT_EQ(endpoint->calls().size(), 3u);
}

TEST(WebhookSenderTest, SendNeverBlocksWhileADeliveryIsInProgress) {
  auto endpoint = FakeEndpoint::make();
  endpoint->hold();
  WebhookSender sender({{"https://hooks.example/till"}}, "s", endpoint->post(), fast_options());
  sender.send(sample_alert());
  ASSERT_TRUE(endpoint->wait_for_calls(1));

  std::atomic<bool> sent{false};
  std::thread sending([&] {
    for (int i = 0; i < 100; ++i) sender.send(sample_alert());
    sent = true;
  });
  const bool returned = eventually([&] { return sent.load(); });
  endpoint->release();  // lets the test end either way
  sending.join();
  EXPECT_TRUE(returned) << "send() waited for the delivery in progress";
  ASSERT_TRUE(eventually([&] { return sender.delivered() == 101; }));
}

TEST(WebhookSenderTest, DestructorReturnsPromptlyWhileRetrying) {
  auto endpoint = FakeEndpoint::make();
  endpoint->otherwise(503);
  WebhookOptions options = fast_options();
  options.initial_backoff = std::chrono::hours(1);
  options.max_backoff = std::chrono::hours(1);
  const auto started = std::chrono::steady_clock::now();
  {
    WebhookSender sender({{"https://hooks.example/till"}}, "s", endpoint->post(), options);
    sender.send(sample_alert());
    sender.send(sample_alert());
    ASSERT_TRUE(endpoint->wait_for_calls(2));  // both now in their hour-long backoff
  }
  // Far below the backoff: the worker's wait ended on shutdown, not on its deadline.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(endpoint->calls().size(), 2u);
}

TEST(WebhookSenderTest, DestructorStopsWaitingForAStuckPostAfterDrainTimeout) {
  auto endpoint = FakeEndpoint::make();
  endpoint->hold();
  WebhookOptions options = fast_options();
  options.drain_timeout = 50ms;
  const auto started = std::chrono::steady_clock::now();
  {
    WebhookSender sender({{"https://hooks.example/till"}}, "s", endpoint->post(), options);
    sender.send(sample_alert());
    ASSERT_TRUE(endpoint->wait_for_calls(1));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(endpoint->completed(), 0) << "the destructor did not wait for the stuck post";
  // The detached worker holds its own reference to the endpoint and finishes once released;
  // the test waits for that, so that nothing of the worker outlives the process's last checks.
  endpoint->release();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (endpoint.use_count() > 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(endpoint.use_count(), 1) << "the detached worker never finished";
}

TEST(WebhookSenderTest, DestructorLetsADeliveryInProgressFinishWithinDrainTimeout) {
  auto endpoint = FakeEndpoint::make();
  endpoint->hold();
  std::thread releaser;
  {
    WebhookSender sender({{"https://hooks.example/till"}}, "s", endpoint->post(), fast_options());
    sender.send(sample_alert());
    ASSERT_TRUE(endpoint->wait_for_calls(1));
    // Released while (or just before) the destructor runs: it must wait for the post to return.
    releaser = std::thread([&] { endpoint->release(); });
  }
  releaser.join();
  EXPECT_EQ(endpoint->completed(), 1);
}

}  // namespace
}  // namespace till
