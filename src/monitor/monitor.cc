#include "monitor/monitor.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <chrono>
#include <iostream>
#include <span>
#include <string_view>
#include <utility>

#include "proxy/key_status_change.h"

namespace till {
namespace {

namespace json = boost::json;

constexpr std::chrono::minutes kRotationCheckEvery{1};
constexpr std::chrono::hours kRetentionEvery{1};
constexpr size_t kEventsPerTransaction = 1024;
constexpr int kWorkerNice = 10;

// True if the key's metadata says `till run` made it ({"created_by": "till run"}).
bool created_by_run(const KeyRecord& key) {
  boost::system::error_code ec;
  json::value metadata = json::parse(key.metadata_json, ec);
  if (ec || !metadata.is_object()) return false;
  const json::value* by = metadata.as_object().if_contains("created_by");
  return by != nullptr && by->is_string() && by->as_string() == "till run";
}

// Runs `operation` (a call on the store) and reports how long it took as
// till_store_operation_duration_seconds{operation="<name>"}.
template <typename Operation>
auto timed(Metrics& metrics, std::string_view name, Operation&& operation) {
  const auto start = std::chrono::steady_clock::now();
  auto result = std::forward<Operation>(operation)();
  metrics.observe_store_operation(name, std::chrono::steady_clock::now() - start);
  return result;
}

}  // namespace

Monitor::Monitor(Store& store, BudgetLedger& ledger, KeyCache& keys, AddressBlocklist& blocked,
                 Metrics& metrics, WebhookSender* webhooks, AccessLog* access_log,
                 const PricingTable& pricing, const Clock& clock, Options options)
    : store_(store),
      ledger_(ledger),
      keys_(keys),
      blocked_(blocked),
      metrics_(metrics),
      webhooks_(webhooks),
      access_log_(access_log),
      clock_(clock),
      options_(std::move(options)),
      engine_(options_.alerts, pricing),
      worker_([this] { worker_loop(); }) {}

Monitor::~Monitor() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

void Monitor::record(UsageEvent event) {
  bool dropped = false;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.queue_limit) {
      dropped = true;
    } else {
      queue_.push_back(std::move(event));
      ++recorded_;
    }
  }
  if (dropped) metrics_.events_dropped(1);
}

void Monitor::flush() {
  std::unique_lock lock(mutex_);
  const uint64_t target = recorded_;
  flush_requested_ = true;
  wake_.notify_all();
  processed_.wait(lock, [&] { return processed_count_ >= target || stopping_; });
}

void Monitor::worker_loop() {
  pthread_setname_np(pthread_self(), "till-monitor");  // for top -H and profilers
  // Below the I/O threads: when the CPU is saturated requests come first, and the worker catches
  // up as soon as there is room (its queue absorbs seconds of traffic). Failure changes nothing.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kWorkerNice);
  std::vector<UsageEvent> batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, options_.flush_interval, [this] { return stopping_ || flush_requested_; });
    flush_requested_ = false;
    const bool stopping = stopping_;
    batch.swap(queue_);
    lock.unlock();
    if (!batch.empty()) process(batch);
    periodic_checks(clock_.now());
    const size_t done = batch.size();
    batch.clear();
    lock.lock();
    processed_count_ += done;
    processed_.notify_all();
    if (stopping && queue_.empty()) return;
  }
}

void Monitor::process(std::vector<UsageEvent>& events) {
  // In transactions of at most kEventsPerTransaction (a few milliseconds each): usage events have
  // a database of their own, so these never hold up the budget's writes, only usage reads.
  for (size_t first = 0; first < events.size(); first += kEventsPerTransaction) {
    const size_t count = std::min(kEventsPerTransaction, events.size() - first);
    const std::span<const UsageEvent> part = std::span(events).subspan(first, count);
    if (auto stored = timed(metrics_, "append_usage_events",
                            [&] { return store_.append_usage_events(part); });
        !stored) {
      std::cerr << "till: could not store " << count << " usage events: " << stored.error().message
                << "\n";
    }
  }
  // One look at each key per batch: the ledger's figures are exact, and a batch spans a fraction
  // of a second.
  metrics_.observe(events);
  std::unordered_map<std::string, std::optional<KeySnapshot>> snapshots;
  for (const UsageEvent& event : events) {
    if (access_log_) access_log_->write(event);

    const KeySnapshot* snapshot = nullptr;
    if (!event.key_id.empty()) {
      auto [it, inserted] = snapshots.try_emplace(event.key_id);
      if (inserted) {
        if (auto key = ledger_.find_key(event.key_id)) {
          it->second = KeySnapshot{*key, created_by_run(*key)};
        }
      }
      if (it->second) snapshot = &*it->second;
    }
    for (const RaisedAlert& raised : engine_.observe(event, snapshot)) raise(raised);
  }
  if (access_log_) access_log_->flush();
}

void Monitor::raise(const RaisedAlert& raised) {
  const Timestamp now = clock_.now();
  AlertRecord alert;
  alert.key_id = raised.key_id;
  alert.rule = raised.rule;
  alert.severity = raised.severity;
  alert.message = raised.message;
  alert.action = std::string(to_string(raised.action));
  alert.created_at = now;

  if (raised.action == AlertAction::kSuspend && !raised.key_id.empty()) {
    auto suspended =
        change_key_status(store_, ledger_, keys_, raised.key_id, KeyStatus::kSuspended, now);
    if (!suspended) {
      alert.action = "alert";
      alert.message += " (suspending it failed: " + suspended.error().message + ")";
    }
  }
  if (raised.action == AlertAction::kSuspend && !raised.blocked_address.empty() &&
      raised.blocked_until) {
    blocked_.block(raised.blocked_address, *raised.blocked_until, now);
  }
  metrics_.alert_raised(alert.rule);
  auto stored = timed(metrics_, "insert_alert", [&] { return store_.insert_alert(alert); });
  if (!stored) {
    std::cerr << "till: could not store an alert (" << alert.rule << "): " << stored.error().message
              << "\n";
  }
  if (webhooks_) webhooks_->send(stored ? *stored : alert);
}

void Monitor::periodic_checks(Timestamp now) {
  if (now - last_rotation_check_ >= kRotationCheckEvery) {
    last_rotation_check_ = now;
    auto keys = store_.keys_due_for_rotation(now + options_.alerts.rotation_notice, now);
    auto credentials = store_.list_credentials();
    if (keys && credentials) {
      for (const RaisedAlert& raised : engine_.check_rotation(*keys, *credentials, now)) {
        raise(raised);
      }
    }
  }
  if (options_.retention && now - last_retention_ >= kRetentionEvery) {
    last_retention_ = now;
    (void)timed(metrics_, "delete_usage_events",
                [&] { return store_.delete_usage_events_before(now - *options_.retention); });
  }
}

}  // namespace till
