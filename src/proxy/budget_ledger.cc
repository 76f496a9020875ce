#include "proxy/budget_ledger.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <limits>
#include <optional>

namespace till {
namespace {

using std::chrono::milliseconds;

// The budget a settled usage takes up.
Budget charge_of(const Usage& u) { return Budget{u.requests, u.tokens(), u.spend}; }

Budget operator+(const Budget& a, const Budget& b) {
  return Budget{a.requests + b.requests, a.tokens + b.tokens, a.spend + b.spend};
}

Usage& operator+=(Usage& a, const Usage& b) {
  a.requests += b.requests;
  a.input_tokens += b.input_tokens;
  a.cached_input_tokens += b.cached_input_tokens;
  a.output_tokens += b.output_tokens;
  a.reasoning_tokens += b.reasoning_tokens;
  a.unmetered_tokens += b.unmetered_tokens;
  a.spend += b.spend;
  return a;
}

// The three dimensions as numbers, with their limits, for uniform arithmetic.
std::array<int64_t, 3> as_array(const Budget& b) { return {b.requests, b.tokens, b.spend.nanos()}; }
Budget from_array(const std::array<int64_t, 3>& a) {
  return Budget{a[0], a[1], Money::from_nanos(a[2])};
}
std::array<std::optional<int64_t>, 3> limit_array(const Limits& l) {
  return {l.max_requests, l.max_tokens,
          l.max_spend ? std::optional<int64_t>(l.max_spend->nanos()) : std::nullopt};
}

// `b` with its unlimited dimensions zeroed: leases hold nothing on dimensions without a limit.
Budget limited_part(const Budget& b, const Limits& limits) {
  auto values = as_array(b);
  const auto limit = limit_array(limits);
  for (size_t i = 0; i < 3; ++i) {
    if (!limit[i]) values[i] = 0;
  }
  return from_array(values);
}

// True if `lease` covers `need` on every limited dimension.
bool covers(const Budget& lease, const Budget& need, const Limits& limits) {
  const auto l = as_array(lease), n = as_array(need);
  const auto limit = limit_array(limits);
  for (size_t i = 0; i < 3; ++i) {
    if (limit[i] && n[i] > l[i]) return false;
  }
  return true;
}

}  // namespace

struct BudgetLedger::KeyState {
  std::mutex mutex;
  // Everything below is guarded by `mutex`.
  std::optional<std::string> lease_id;   // the key's durable reservation, if it holds one
  Budget lease;                          // what the lease holds in the store
  Budget in_flight;                      // sum of outstanding holds
  Usage unwritten;                       // settled usage not yet written to the store
  int64_t concurrent = 0;                // requests in flight, for max_concurrency
  std::deque<Timestamp> recent_starts;   // starts within the last minute, for rpm
  int64_t headroom_requests = 0;         // the lease's current headroom multiple (0: not set)
  std::optional<Timestamp> last_growth;  // when the lease last had to grow
};

// --- Hold ------------------------------------------------------------------------------------

BudgetLedger::Hold::Hold(BudgetLedger* ledger, std::shared_ptr<KeyState> state, Budget amount)
    : ledger_(ledger), state_(std::move(state)), amount_(amount) {}

BudgetLedger::Hold::Hold(Hold&& other) noexcept
    : ledger_(other.ledger_),
      state_(std::move(other.state_)),
      amount_(other.amount_),
      settled_(std::exchange(other.settled_, true)) {}

BudgetLedger::Hold::~Hold() {
  if (!settled_ && state_) {
    // Nothing metered: the reservation stands as the charge.
    ledger_->settle(*this, Usage{.requests = amount_.requests,
                                 .unmetered_tokens = amount_.tokens,
                                 .spend = amount_.spend});
  }
}

// --- BudgetLedger ----------------------------------------------------------------------------

BudgetLedger::BudgetLedger(Store& store, const Clock& clock)
    : BudgetLedger(store, clock, Options{}) {}

BudgetLedger::BudgetLedger(Store& store, const Clock& clock, Options options)
    : store_(store), clock_(clock), options_(options) {
  flusher_ = std::thread([this] { flusher_loop(); });
}

BudgetLedger::~BudgetLedger() {
  {
    std::lock_guard lock(flusher_mutex_);
    stopping_ = true;
  }
  flusher_wake_.notify_all();
  flusher_.join();
  (void)flush();
}

void BudgetLedger::flusher_loop() {
  std::unique_lock lock(flusher_mutex_);
  while (!stopping_) {
    flusher_wake_.wait_for(lock, options_.flush_interval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    (void)flush();  // errors are retried at the next interval
    (void)store_.expire_keys(clock_.now());
    lock.lock();
  }
}

std::shared_ptr<BudgetLedger::KeyState> BudgetLedger::state_for(const std::string& key_id) {
  {
    std::shared_lock lock(states_mutex_);
    if (auto it = states_.find(key_id); it != states_.end()) return it->second;
  }
  std::unique_lock lock(states_mutex_);
  auto& state = states_[key_id];
  if (!state) state = std::make_shared<KeyState>();
  return state;
}

Result<BudgetLedger::Hold> BudgetLedger::reserve(const KeyRecord& key, const Budget& amount) {
  std::shared_ptr<KeyState> state = state_for(key.id);
  std::lock_guard lock(state->mutex);
  const Timestamp now = clock_.now();

  if (key.scope.max_concurrency && state->concurrent >= *key.scope.max_concurrency) {
    Error error =
        Error::client(ErrorCode::kConcurrencyLimited,
                      "till: key " + key.id + " already has " + std::to_string(state->concurrent) +
                          " requests in flight, its concurrency limit; retry when one finishes");
    error.retry_after_seconds = 1;
    return fail(std::move(error));
  }
  if (key.scope.rpm) {
    auto& starts = state->recent_starts;
    while (!starts.empty() && starts.front() <= now - std::chrono::minutes(1)) starts.pop_front();
    if (static_cast<int64_t>(starts.size()) >= *key.scope.rpm) {
      const auto wait = starts.front() + std::chrono::minutes(1) - now;
      const int64_t seconds =
          std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(wait).count());
      Error error = Error::client(
          ErrorCode::kRateLimited,
          "till: key " + key.id + " has reached its limit of " + std::to_string(*key.scope.rpm) +
              " requests per minute; retry in " + std::to_string(seconds) + "s");
      error.retry_after_seconds = static_cast<int>(seconds);
      return fail(std::move(error));
    }
  }

  const Budget need = state->in_flight + charge_of(state->unwritten) + amount;
  if (!state->lease_id || !covers(state->lease, need, key.limits)) {
    if (auto grown = grow_lease(*state, key, amount); !grown) return fail(grown.error());
  }
  state->in_flight = state->in_flight + amount;
  state->concurrent += 1;
  if (key.scope.rpm) state->recent_starts.push_back(now);
  return Hold(this, state, amount);
}

// REQUIRES: state.mutex held.
Result<void> BudgetLedger::grow_lease(KeyState& state, const KeyRecord& key, const Budget& amount) {
  const Timestamp now = clock_.now();
  // A key that needs a bigger lease again within a second gets twice the headroom, so a busy key
  // touches the store rarely; a quiet one starts small again.
  const bool busy = state.last_growth && now - *state.last_growth < std::chrono::seconds(1);
  state.headroom_requests =
      busy ? std::min(state.headroom_requests * 2, options_.max_headroom_requests)
           : options_.headroom_requests;
  state.last_growth = now;
  const auto limits = limit_array(key.limits);
  auto headroom = as_array(amount);
  for (size_t i = 0; i < 3; ++i) {
    if (!limits[i]) continue;
    const int64_t by_request =
        headroom[i] > std::numeric_limits<int64_t>::max() / state.headroom_requests
            ? std::numeric_limits<int64_t>::max()
            : headroom[i] * state.headroom_requests;
    const int64_t by_limit = *limits[i] / 100 * options_.headroom_percent_of_limit;
    headroom[i] = std::min(by_request, std::max(by_limit, headroom[i]));
  }
  const Budget minimum = limited_part(state.in_flight + amount, key.limits);
  const Budget target = limited_part(state.in_flight + amount + from_array(headroom), key.limits);

  if (!state.lease_id) {
    Result<Reservation> lease = store_.reserve(key.id, target, now);
    if (!lease && lease.error().code == ErrorCode::kLimitExhausted && target != minimum) {
      lease = store_.reserve(key.id, minimum, now);
    }
    if (!lease) return fail(refusal(key, lease.error(), amount));
    state.lease_id = lease->id;
    state.lease = lease->amount;
    return {};
  }

  Result<KeyRecord> resized = store_.resize(*state.lease_id, state.unwritten, target, now);
  Budget granted = target;
  if (!resized && resized.error().code == ErrorCode::kLimitExhausted && target != minimum) {
    resized = store_.resize(*state.lease_id, state.unwritten, minimum, now);
    granted = minimum;
  }
  if (!resized) {
    // Refused: still write what was consumed, keeping the lease to what is in flight. If even
    // that cannot be written (an overshoot), the state stays as it was, still covered.
    const Budget keep = limited_part(state.in_flight, key.limits);
    if (store_.resize(*state.lease_id, state.unwritten, keep, now)) {
      state.unwritten = Usage{};
      state.lease = keep;
    }
    return fail(refusal(key, resized.error(), amount));
  }
  state.unwritten = Usage{};
  state.lease = granted;
  return {};
}

Error BudgetLedger::refusal(const KeyRecord& key, const Error& store_error, const Budget& amount) {
  if (store_error.code != ErrorCode::kLimitExhausted) return store_error;
  // Which limit, and whether it is used up or only too small for this request, from fresh
  // figures. The store names the dimension in its message; checking the figures is simpler.
  Result<KeyRecord> fresh = store_.find_key(key.id);
  const KeyRecord& k = fresh ? *fresh : key;
  struct Dim {
    const char* field;
    std::optional<int64_t> limit;
    int64_t used, reserved, wanted;
  };
  const Dim dims[] = {
      {"max_requests", k.limits.max_requests, k.used.requests, k.reserved.requests,
       amount.requests},
      {"max_tokens", k.limits.max_tokens, k.used.tokens(), k.reserved.tokens, amount.tokens},
      {"max_spend", k.limits.max_spend ? std::optional(k.limits.max_spend->nanos()) : std::nullopt,
       k.used.spend.nanos(), k.reserved.spend.nanos(), amount.spend.nanos()},
  };
  auto describe = [](const Dim& d, int64_t v) {
    if (std::string_view(d.field) == "max_spend") return "$" + Money::from_nanos(v).to_usd_string();
    return std::to_string(v) +
           (std::string_view(d.field) == "max_requests" ? " requests" : " tokens");
  };
  for (const Dim& d : dims) {
    if (!d.limit) continue;
    if (d.used >= *d.limit) {
      return Error::client(ErrorCode::kLimitExhausted,
                           "till: key " + k.id + " has used its " + describe(d, *d.limit) +
                               " limit; ask for a new key",
                           d.field);
    }
  }
  for (const Dim& d : dims) {
    if (!d.limit || d.used + d.reserved + d.wanted <= *d.limit) continue;
    const int64_t left = std::max<int64_t>(0, *d.limit - d.used - d.reserved);
    return Error::client(ErrorCode::kLimitExhausted,
                         "till: this request may need up to " + describe(d, d.wanted) +
                             " but key " + k.id + " has only " + describe(d, left) + " of its " +
                             describe(d, *d.limit) +
                             " limit left (some may be held by requests in flight or by sub-keys); ask for "
                             "less, or for a new key",
                         d.field);
  }
  return Error::client(ErrorCode::kLimitExhausted,
                       "till: key " + k.id + " has not enough budget left for this request", "");
}

void BudgetLedger::settle(Hold& hold, const Usage& actual) {
  if (hold.settled_ || !hold.state_) return;
  hold.settled_ = true;
  KeyState& state = *hold.state_;
  std::lock_guard lock(state.mutex);
  state.in_flight.requests -= hold.amount_.requests;
  state.in_flight.tokens -= hold.amount_.tokens;
  state.in_flight.spend -= hold.amount_.spend;
  state.unwritten += actual;
  state.concurrent -= 1;
}

Result<KeyRecord> BudgetLedger::find_key(std::string_view id) {
  std::shared_ptr<KeyState> state;
  {
    std::shared_lock lock(states_mutex_);
    if (auto it = states_.find(std::string(id)); it != states_.end()) state = it->second;
  }
  if (!state) return store_.find_key(id);
  std::lock_guard lock(state->mutex);  // no flush can move figures while we read
  Result<KeyRecord> key = store_.find_key(id);
  if (!key) return key;
  key->used += state->unwritten;
  key->reserved = Budget{key->reserved.requests - state->lease.requests + state->in_flight.requests,
                         key->reserved.tokens - state->lease.tokens + state->in_flight.tokens,
                         key->reserved.spend - state->lease.spend + state->in_flight.spend};
  if (key->status == KeyStatus::kActive) {
    const auto limits = limit_array(key->limits);
    const auto used =
        std::array<int64_t, 3>{key->used.requests, key->used.tokens(), key->used.spend.nanos()};
    for (size_t i = 0; i < 3; ++i) {
      if (limits[i] && used[i] >= *limits[i]) key->status = KeyStatus::kExhausted;
    }
  }
  return key;
}

// REQUIRES: state.mutex held.
Result<void> BudgetLedger::flush_key(KeyState& state) {
  if (!state.lease_id) return {};
  const Timestamp now = clock_.now();
  if (state.in_flight == Budget{}) {
    Result<KeyRecord> settled = store_.settle(*state.lease_id, state.unwritten, now);
    if (!settled) return fail(settled.error());
    state.lease_id.reset();
    state.lease = Budget{};
    state.unwritten = Usage{};
    return {};
  }
  if (state.unwritten == Usage{} && state.lease == state.in_flight) return {};
  // Keep exactly what is in flight (its limited part is what the lease holds on those dims).
  const Budget keep = Budget{std::min(state.lease.requests, state.in_flight.requests),
                             std::min(state.lease.tokens, state.in_flight.tokens),
                             std::min(state.lease.spend, state.in_flight.spend)};
  Result<KeyRecord> resized = store_.resize(*state.lease_id, state.unwritten, keep, now);
  if (!resized) return fail(resized.error());
  state.unwritten = Usage{};
  state.lease = keep;
  return {};
}

Result<void> BudgetLedger::flush() {
  std::vector<std::shared_ptr<KeyState>> states;
  {
    std::shared_lock lock(states_mutex_);
    states.reserve(states_.size());
    for (const auto& [id, state] : states_) states.push_back(state);
  }
  Result<void> first = {};
  for (const auto& state : states) {
    std::lock_guard lock(state->mutex);
    if (Result<void> flushed = flush_key(*state); !flushed && first) first = flushed;
  }
  return first;
}

Result<void> BudgetLedger::flush(std::string_view key_id) {
  std::shared_ptr<KeyState> state;
  {
    std::shared_lock lock(states_mutex_);
    auto it = states_.find(std::string(key_id));
    if (it == states_.end()) return {};
    state = it->second;
  }
  std::lock_guard lock(state->mutex);
  return flush_key(*state);
}

int64_t BudgetLedger::holds_in_flight() const {
  std::shared_lock lock(states_mutex_);
  int64_t total = 0;
  for (const auto& [id, state] : states_) {
    std::lock_guard state_lock(state->mutex);
    total += state->concurrent;
  }
  return total;
}

}  // namespace till
