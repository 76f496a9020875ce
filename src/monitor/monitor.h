// Monitor: where usage events go (an EventSink). The request path's record() appends to a queue
// under a mutex and returns; a worker thread takes the queue every `flush_interval` and, off the
// request path:
//   - writes the events to the store in one transaction (usage history, /api/v1/usage),
//   - counts them in the metrics and writes access-log lines,
//   - runs the alert rules with each event's key as the budget ledger sees it, stores what they
//     raise, sends it to the webhooks, and carries out the actions: suspending a key (and its
//     sub-keys) or refusing an address for a while,
//   - once a minute checks rotation due dates, once an hour applies usage retention.
// The worker runs at a lower CPU priority (nice +10) than the I/O threads, so under CPU
// saturation requests come first and the queue absorbs the difference. When the queue holds
// queue_limit events, further ones are dropped and counted, so a slow store can never slow
// requests down.
//
// Thread-safety: record() and flush() may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "monitor/access_log.h"
#include "monitor/alert_engine.h"
#include "monitor/metrics.h"
#include "monitor/webhook_sender.h"
#include "proxy/address_blocklist.h"
#include "proxy/budget_ledger.h"
#include "proxy/key_cache.h"
#include "till/clock.h"
#include "till/store.h"
#include "till/usage_event.h"

namespace till {

class Monitor final : public EventSink {
 public:
  struct Options {
    std::chrono::milliseconds flush_interval{200};
    size_t queue_limit = 200'000;
    std::optional<std::chrono::milliseconds> retention = std::chrono::days(30);  // nullopt: keep
    AlertSettings alerts;
  };

  // Everything referenced must outlive the monitor; `webhooks` and `access_log` may be null.
  Monitor(Store& store, BudgetLedger& ledger, KeyCache& keys, AddressBlocklist& blocked,
          Metrics& metrics, WebhookSender* webhooks, AccessLog* access_log,
          const PricingTable& pricing, const Clock& clock, Options options);
  ~Monitor() override;  // processes what is queued, then stops
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  void record(UsageEvent event) override;

  // Returns once every event recorded before the call has been processed.
  void flush();

 private:
  void worker_loop();
  void process(std::vector<UsageEvent>& events);
  void raise(const RaisedAlert& raised);
  void periodic_checks(Timestamp now);

  Store& store_;
  BudgetLedger& ledger_;
  KeyCache& keys_;
  AddressBlocklist& blocked_;
  Metrics& metrics_;
  WebhookSender* webhooks_;
  AccessLog* access_log_;
  const Clock& clock_;
  Options options_;
  AlertEngine engine_;  // used by the worker only

  std::mutex mutex_;
  std::condition_variable wake_;       // the worker: events, flush or stop
  std::condition_variable processed_;  // flush(): a batch is done
  std::vector<UsageEvent> queue_;
  uint64_t recorded_ = 0;         // events accepted, ever
  uint64_t processed_count_ = 0;  // events the worker finished, ever
  bool flush_requested_ = false;
  bool stopping_ = false;

  Timestamp last_rotation_check_{};
  Timestamp last_retention_{};
  std::thread worker_;  // last: starts after everything above is ready
};

}  // namespace till
