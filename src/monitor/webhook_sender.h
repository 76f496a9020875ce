// WebhookSender: delivers alerts to HTTP endpoints (`till serve --alert-webhook URL`) in the
// background, signed, retried with backoff, never blocking the caller.
//
// The body is JSON: {"type":"till.alert","alert":{id,key_id,rule,severity,message,action,
// created_at}} — or, for Slack-compatible targets, {"text":"…"}. Each request carries
//   Till-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
// (docs/alerts.md shows how to verify it). A delivery succeeds on any 2xx; otherwise it is
// retried after 1 s, 2 s, 4 s … up to max_backoff, max_attempts times in all, then dropped and
// counted. At most queue_limit deliveries wait; beyond that new ones are dropped and counted.
//
// Thread-safety: send() may be called from any thread. The destructor stops the worker, giving
// deliveries in progress up to `drain_timeout`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "till/alert.h"
#include "till/error.h"

namespace till {

struct WebhookTarget {
  enum class Format { kTill, kSlack };
  std::string url;
  Format format = Format::kTill;
};

// Sends one POST and returns the response status (or an error when nothing came back). The
// wiring gives the real HTTP client; tests give a fake.
using WebhookPost = std::function<Result<int>(
    const std::string& url, const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& body)>;

struct WebhookOptions {
  int max_attempts = 6;
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{60'000};
  size_t queue_limit = 10'000;
  std::chrono::milliseconds drain_timeout{2000};
};

// "t=<unix_seconds>,v1=<hex HMAC-SHA256(secret, "<unix_seconds>.<body>")>".
std::string webhook_signature(std::string_view secret, int64_t unix_seconds, std::string_view body);

// The JSON body for one alert in a target's format.
std::string webhook_body(const AlertRecord& alert, WebhookTarget::Format format);

class WebhookSender {
 public:
  WebhookSender(std::vector<WebhookTarget> targets, std::string signing_secret, WebhookPost post,
                WebhookOptions options = {});
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // Queues the alert for every target. Never blocks on the network.
  void send(const AlertRecord& alert);

  int64_t delivered() const;  // deliveries that got a 2xx
  int64_t dropped() const;    // deliveries given up (attempts exhausted or queue full)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace till
