// BudgetLedger: the request path's front to the store's budget operations, and the keeper of
// each key's rate and concurrency limits.
//
// Each key in use holds one durable reservation in the store — its lease — sized to cover the
// requests in flight plus some headroom. A request reserves from the lease in memory (no I/O);
// only when the lease cannot cover it does the ledger grow the lease in the store (one
// transaction, which also writes the usage settled since the last store write). Because a lease
// is durable before any request it covers is forwarded, the budget invariant
//     used + reserved <= limit
// holds in the store at every moment and across a crash: a crash charges the whole lease at the
// next start (losing at most the headroom), never grants budget. A background thread writes
// settled usage and shrinks idle leases every flush_interval, and marks keys past their expiry
// expired (Store::expire_keys, so sub-keys return their budget); destruction flushes everything.
//
// Settling is memory-only; the figures a client reads come from find_key(), which overlays this
// process's unwritten state on the store's record, so they are exact.
//
// Thread-safety: all methods may be called concurrently. Per-key state has its own mutex and
// store I/O for a key happens under it, so requests of one key wait for a lease resize while
// other keys proceed. The store must outlive the ledger.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "till/clock.h"
#include "till/error.h"
#include "till/key.h"
#include "till/store.h"

namespace till {

class BudgetLedger {
 public:
  struct Options {
    // Headroom a lease takes beyond what it must cover, per limited dimension: a number of
    // times the request's own amount — headroom_requests, doubled each time the lease has to
    // grow again within a second (a busy key), up to max_headroom_requests — but never more
    // than headroom_percent_of_limit of the limit. A crash can cost a key at most this much.
    int64_t headroom_requests = 16;
    int64_t max_headroom_requests = 4096;
    int64_t headroom_percent_of_limit = 5;
    std::chrono::milliseconds flush_interval{1000};
  };

  struct KeyState;

  // One request's share of a key's budget. Move-only. A hold that is destroyed unsettled is
  // settled as fully consumed: its reservation stands as the charge.
  class Hold {
   public:
    Hold(Hold&& other) noexcept;
    Hold& operator=(Hold&&) = delete;
    Hold(const Hold&) = delete;
    ~Hold();
    const Budget& amount() const { return amount_; }

   private:
    friend class BudgetLedger;
    Hold(BudgetLedger* ledger, std::shared_ptr<KeyState> state, Budget amount);
    BudgetLedger* ledger_;
    std::shared_ptr<KeyState> state_;
    Budget amount_;
    bool settled_ = false;
  };

  BudgetLedger(Store& store, const Clock& clock);
  BudgetLedger(Store& store, const Clock& clock, Options options);
  ~BudgetLedger();  // stops the flusher and flushes
  BudgetLedger(const BudgetLedger&) = delete;
  BudgetLedger& operator=(const BudgetLedger&) = delete;

  // Admits one request of `key` (as read from the store or a cache; limits and scope are taken
  // from it) that may consume up to `amount`: checks max_concurrency and rpm, then reserves the
  // amount. Errors, with messages written for the agent: kConcurrencyLimited and kRateLimited
  // (with retry_after_seconds), kLimitExhausted (Error::field names the limit:
  // "max_requests", "max_tokens" or "max_spend"), the key's status errors, store errors.
  Result<Hold> reserve(const KeyRecord& key, const Budget& amount);

  // Settles a hold with what its request consumed. Exactly once per hold; later calls do nothing.
  void settle(Hold& hold, const Usage& actual);

  // The key's record with this process's unwritten usage and in-flight holds applied, so used,
  // reserved and status are exact. Errors as Store::find_key.
  Result<KeyRecord> find_key(std::string_view id);

  // Writes settled usage of every key to the store and shrinks leases to what is in flight
  // (releasing them entirely when nothing is). The first error is returned; others are retried
  // at the next flush.
  Result<void> flush();

  // The same for one key: afterwards its lease holds only what is in flight, so the store's
  // figures show all the budget the key has left (before carving a sub-key out of it).
  Result<void> flush(std::string_view key_id);

  // Holds currently outstanding, over all keys (for shutdown and tests).
  int64_t holds_in_flight() const;

 private:
  std::shared_ptr<KeyState> state_for(const std::string& key_id);
  Result<void> grow_lease(KeyState& state, const KeyRecord& key, const Budget& amount);
  Error refusal(const KeyRecord& key, const Error& store_error, const Budget& amount);
  Result<void> flush_key(KeyState& state);
  void flusher_loop();

  Store& store_;
  const Clock& clock_;
  Options options_;
  mutable std::shared_mutex states_mutex_;
  std::unordered_map<std::string, std::shared_ptr<KeyState>> states_;

  std::mutex flusher_mutex_;
  std::condition_variable flusher_wake_;
  bool stopping_ = false;
  std::thread flusher_;
};

}  // namespace till
