#include "monitor/webhook_sender.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <mutex>
#include <span>
#include <thread>
#include <utility>

#include "core/crypto.h"
#include "core/time_text.h"

namespace till {

namespace json = boost::json;

std::string webhook_signature(std::string_view secret, int64_t unix_seconds,
                              std::string_view body) {
  const std::string t = std::to_string(unix_seconds);
  std::string signed_text;
  signed_text.reserve(t.size() + 1 + body.size());
  signed_text.append(t).append(".").append(body);
  const auto key = std::span(reinterpret_cast<const uint8_t*>(secret.data()), secret.size());
  return "t=" + t + ",v1=" + crypto::hex_encode(crypto::hmac_sha256(key, signed_text));
}

std::string webhook_body(const AlertRecord& alert, WebhookTarget::Format format) {
  if (format == WebhookTarget::Format::kSlack) {
    std::string text = "till alert [" + alert.severity + "] " + alert.rule + ": " + alert.message;
    if (!alert.key_id.empty()) text += " (key " + alert.key_id + ")";
    return json::serialize(json::object{{"text", text}});
  }
  json::object body{
      {"id", alert.id},
      {"key_id", alert.key_id.empty() ? json::value(nullptr) : json::value(alert.key_id)},
      {"rule", alert.rule},
      {"severity", alert.severity},
      {"message", alert.message},
      {"action", alert.action},
      {"created_at", format_rfc3339(alert.created_at)},
  };
  return json::serialize(json::object{{"type", "till.alert"}, {"alert", std::move(body)}});
}

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

struct Delivery {
  std::string url;
  std::string body;
  int attempts = 0;  // made so far
};

// Everything the worker touches. Shared by the sender and the worker so that a worker stuck in
// post() past the drain timeout can be detached and still find its state alive.
struct State {
  std::string secret;
  WebhookPost post;
  WebhookOptions options;

  std::mutex mu;
  std::condition_variable wake;  // the worker: a delivery queued, or stopping
  std::condition_variable done;  // the destructor: the worker has returned
  // Deliveries waiting, by (due time, arrival order): due ones go first-come first-served, and a
  // target in backoff does not hold up the others.
  std::map<std::pair<SteadyTime, uint64_t>, Delivery> queue;
  uint64_t next_seq = 0;
  bool stopping = false;
  bool worker_finished = false;
  int64_t delivered = 0;
  int64_t dropped = 0;
};

// The wait after `attempts` failed attempts: initial, 2x, 4x … capped at max_backoff.
std::chrono::milliseconds backoff(const WebhookOptions& options, int attempts) {
  std::chrono::milliseconds wait = options.initial_backoff;
  for (int i = 1; i < attempts && wait < options.max_backoff; ++i) wait *= 2;
  return std::min(wait, options.max_backoff);
}

// One attempt; true on a 2xx.
bool attempt(State& state, const Delivery& delivery) {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "application/json"},
      {"User-Agent", "till"},
      {"Till-Signature", webhook_signature(state.secret, now, delivery.body)},
  };
  try {
    const Result<int> status = state.post(delivery.url, headers, delivery.body);
    return status && *status >= 200 && *status <= 299;
  } catch (...) {
    // The post function is an adapter that should return errors; a throw is one failed attempt
    // rather than the end of the process.
    return false;
  }
}

void run_worker(const std::shared_ptr<State>& state_ptr) {
  State& state = *state_ptr;
  std::unique_lock lock(state.mu);
  while (!state.stopping) {
    if (state.queue.empty()) {
      state.wake.wait(lock);
      continue;
    }
    const auto first = state.queue.begin();
    if (first->first.first > std::chrono::steady_clock::now()) {
      state.wake.wait_until(lock, first->first.first);
      continue;
    }
    Delivery delivery = std::move(first->second);
    state.queue.erase(first);

    lock.unlock();
    const bool ok = attempt(state, delivery);
    lock.lock();

    ++delivery.attempts;
    if (ok) {
      ++state.delivered;
    } else if (delivery.attempts >= state.options.max_attempts || state.stopping) {
      ++state.dropped;
    } else {
      const SteadyTime due =
          std::chrono::steady_clock::now() + backoff(state.options, delivery.attempts);
      state.queue.emplace(std::pair(due, state.next_seq++), std::move(delivery));
    }
  }
  // Whatever still waits is given up.
  state.dropped += static_cast<int64_t>(state.queue.size());
  state.queue.clear();
  state.worker_finished = true;
  state.done.notify_all();
  lock.unlock();
  // The signatures used OpenSSL on this thread: free its per-thread state now rather than at
  // thread exit, which a detached worker may reach only after the process has ended.
  OPENSSL_thread_stop();
}

}  // namespace

struct WebhookSender::Impl {
  std::vector<WebhookTarget> targets;
  std::shared_ptr<State> state;
  std::thread worker;
};

WebhookSender::WebhookSender(std::vector<WebhookTarget> targets, std::string signing_secret,
                             WebhookPost post, WebhookOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->targets = std::move(targets);
  impl_->state = std::make_shared<State>();
  impl_->state->secret = std::move(signing_secret);
  impl_->state->post = std::move(post);
  impl_->state->options = options;
  impl_->worker = std::thread(run_worker, impl_->state);
}

WebhookSender::~WebhookSender() {
  State& state = *impl_->state;
  std::unique_lock lock(state.mu);
  state.stopping = true;
  state.wake.notify_all();
  const bool finished =
      state.done.wait_for(lock, state.options.drain_timeout, [&] { return state.worker_finished; });
  lock.unlock();
  if (finished) {
    impl_->worker.join();
  } else {
    // A post() that outlives the drain timeout cannot be cancelled from here; the worker keeps
    // its own reference to the state and ends when post() returns.
    impl_->worker.detach();
  }
}

void WebhookSender::send(const AlertRecord& alert) {
  if (impl_->targets.empty()) return;
  // Bodies are built before taking the lock: the worker holds it only briefly, never in post().
  std::vector<Delivery> deliveries;
  deliveries.reserve(impl_->targets.size());
  for (const WebhookTarget& target : impl_->targets) {
    deliveries.push_back(Delivery{target.url, webhook_body(alert, target.format)});
  }
  State& state = *impl_->state;
  std::lock_guard lock(state.mu);
  const SteadyTime now = std::chrono::steady_clock::now();
  for (Delivery& delivery : deliveries) {
    if (state.stopping || state.queue.size() >= state.options.queue_limit) {
      ++state.dropped;
      continue;
    }
    state.queue.emplace(std::pair(now, state.next_seq++), std::move(delivery));
  }
  state.wake.notify_one();
}

int64_t WebhookSender::delivered() const {
  std::lock_guard lock(impl_->state->mu);
  return impl_->state->delivered;
}

int64_t WebhookSender::dropped() const {
  std::lock_guard lock(impl_->state->mu);
  return impl_->state->dropped;
}

}  // namespace till
