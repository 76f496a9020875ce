#include "monitor/alert_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "core/time_text.h"

namespace till {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kBudgetThreshold = "budget_threshold";
constexpr std::string_view kKeyExhausted = "key_exhausted";
constexpr std::string_view kProjectedExhaustion = "projected_exhaustion";
constexpr std::string_view kRateSpike = "rate_spike";
constexpr std::string_view kLoop = "loop";
constexpr std::string_view kModelShift = "model_shift";
constexpr std::string_view kNewAddress = "new_address";
constexpr std::string_view kStaleToken = "stale_token";
constexpr std::string_view kInvalidKeyBurst = "invalid_key_burst";
constexpr std::string_view kUpstreamRejected = "upstream_rejected";
constexpr std::string_view kRotationDue = "rotation_due";

// Per-key state (and a key's addresses) is dropped once the key has been quiet this long.
constexpr auto kStateTtl = std::chrono::hours(1);
constexpr auto kPruneEvery = std::chrono::minutes(1);
// rate_spike: EWMA weight of the newest minute; at most this many empty minutes are folded in
// (after an hour of silence the key's state is gone anyway).
constexpr double kSpikeAlpha = 0.3;
constexpr int64_t kMaxEmptyMinutes = 60;
// rate_spike on tokens needs at least spike_min_requests requests' worth of this many tokens.
constexpr int64_t kSpikeTokensPerRequest = 1000;
// projected_exhaustion: samples are kept at least this far apart, and a rate needs this span.
constexpr auto kProjectionSampleEvery = std::chrono::seconds(1);
constexpr auto kProjectionMinSpan = std::chrono::seconds(30);
// Caps that keep one busy key or a flood of addresses from growing memory without bound.
constexpr size_t kMaxBodiesPerKey = 10'000;
constexpr size_t kMaxAddressesPerKey = 256;
constexpr size_t kMaxBurstAddresses = 100'000;

__extension__ using Int128 = __int128;

enum Dimension { kRequests = 0, kTokens = 1, kSpend = 2 };
constexpr Dimension kDimensions[] = {kRequests, kTokens, kSpend};

std::string_view dimension_name(Dimension d) {
  switch (d) {
    case kRequests:
      return "requests";
    case kTokens:
      return "tokens";
    case kSpend:
      return "spend";
  }
  return "spend";
}

std::optional<int64_t> limit_of(const Limits& limits, Dimension d) {
  switch (d) {
    case kRequests:
      return limits.max_requests;
    case kTokens:
      return limits.max_tokens;
    case kSpend:
      if (!limits.max_spend) return std::nullopt;
      return limits.max_spend->nanos();
  }
  return std::nullopt;
}

int64_t used_of(const Usage& used, Dimension d) {
  switch (d) {
    case kRequests:
      return used.requests;
    case kTokens:
      return used.tokens();
    case kSpend:
      return used.spend.nanos();
  }
  return 0;
}

// "$4.00", "80 requests", "8000 tokens".
std::string amount_text(Dimension d, int64_t value) {
  if (d == kSpend) return "$" + Money::from_nanos(value).to_usd_string();
  return std::to_string(value) + " " + std::string(dimension_name(d));
}

// "$4.00 of $5.00", "80 of 100 requests".
std::string used_of_limit_text(Dimension d, int64_t used, int64_t limit) {
  if (d == kSpend) return amount_text(d, used) + " of " + amount_text(d, limit);
  return std::to_string(used) + " of " + amount_text(d, limit);
}

// used >= mark% of limit, exactly.
bool reached(int64_t used, int64_t limit, int mark) {
  return static_cast<Int128>(used) * 100 >= static_cast<Int128>(mark) * limit;
}

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

// A duration for a message: whole minutes from an hour up, whole seconds below.
std::string approx_duration(milliseconds d) {
  if (d >= std::chrono::hours(1))
    return format_duration(std::chrono::floor<std::chrono::minutes>(d));
  if (d >= std::chrono::seconds(1))
    return format_duration(std::chrono::floor<std::chrono::seconds>(d));
  return "under 1s";
}

std::string price_text(int64_t output_per_mtok) {
  return "$" + Money::from_nanos(output_per_mtok).to_usd_string() + "/Mtok output";
}

// What a message says to do about a key its rule may suspend.
// An alert of `rule` about key `key_id` (empty for an address or a credential); the caller
// writes its message.
RaisedAlert make_alert(std::string_view rule, std::string key_id, std::string_view severity,
                       AlertAction action) {
  RaisedAlert alert;
  alert.key_id = std::move(key_id);
  alert.rule = std::string(rule);
  alert.severity = std::string(severity);
  alert.action = action;
  return alert;
}

// The severity of the behaviour rules (loop, rate spike, model shift, new address): critical
// when the key is suspended for it.
std::string_view behaviour_severity(AlertAction action) {
  return action == AlertAction::kSuspend ? "critical" : "warning";
}

std::string key_tail(AlertAction action, const std::string& key_id, std::string_view check) {
  if (action == AlertAction::kSuspend) {
    return "till suspended it; " + std::string(check) + ", then resume it with till key resume " +
           key_id;
  }
  return std::string(check) + "; till key suspend " + key_id + " stops it";
}

bool in_service(const KeySnapshot& key) {
  return key.record.status == KeyStatus::kActive || key.record.status == KeyStatus::kExhausted;
}

// Counts per wall-clock minute, and the EWMA mean and variance of the completed minutes.
struct MinuteSeries {
  std::optional<int64_t> minute;  // the current minute, in minutes since the epoch
  int64_t count = 0;              // in the current minute
  double mean = 0;
  double variance = 0;
  int64_t history = 0;  // completed minutes folded into mean and variance

  void fold(double x) {
    if (history == 0) {
      mean = x;
      variance = 0;
    } else {
      const double diff = x - mean;
      const double increment = kSpikeAlpha * diff;
      mean += increment;
      variance = (1 - kSpikeAlpha) * (variance + diff * increment);
    }
    ++history;
  }

  // Moves to minute `m`, folding the current minute and the empty ones between. An earlier `m`
  // (events slightly out of order) counts in the current minute.
  void advance_to(int64_t m) {
    if (!minute) {
      minute = m;
      return;
    }
    if (m <= *minute) return;
    fold(static_cast<double>(count));
    const int64_t empty = std::min(m - *minute - 1, kMaxEmptyMinutes);
    for (int64_t i = 0; i < empty; ++i) fold(0);
    minute = m;
    count = 0;
  }

  double z_score() const {
    return (static_cast<double>(count) - mean) / std::max(std::sqrt(variance), 1.0);
  }
};

struct Sample {
  Timestamp at;
  int64_t spend = 0;
  int64_t requests = 0;
};

struct AddressUse {
  int64_t events = 0;
  Timestamp last_seen;
};

struct KeyState {
  Timestamp last_seen;
  // budget_threshold and key_exhausted: what was raised (never again while this state lives).
  std::set<std::pair<Dimension, int>> marks_raised;
  bool exhausted_raised = false;
  // projected_exhaustion: used figures, at least kProjectionSampleEvery apart, within the window.
  std::deque<Sample> samples;
  // rate_spike.
  MinuteSeries requests_per_minute;
  MinuteSeries tokens_per_minute;
  // loop: body hashes within loop_window, oldest first, and how often each occurs there.
  std::deque<std::pair<Timestamp, uint64_t>> bodies;
  std::unordered_map<uint64_t, int64_t> body_counts;
  // model_shift.
  int64_t priced_requests = 0;
  int64_t max_output_price = 0;
  std::string priciest_model;
  // new_address.
  std::map<std::string, AddressUse, std::less<>> addresses;
};

struct BurstState {
  std::deque<Timestamp> invalid;  // invalid_api_key events within the window (< count of them)
  std::optional<Timestamp> blocked_until;
};

struct Raised {
  Timestamp at;
  bool suspend = false;
};

}  // namespace

struct AlertEngine::State {
  const AlertSettings& settings;
  const PricingTable& pricing;

  std::unordered_map<std::string, KeyState> keys;
  std::unordered_map<std::string, BurstState> addresses;
  // When each (subject, rule, detail) was last raised, and whether it suspended its key; the
  // subject is a key id or "credential:" + name. Budget marks, exhaustion and address bursts
  // keep their own records instead.
  std::map<std::tuple<std::string, std::string, std::string>, Raised, std::less<>> raised;
  Timestamp now{};
  Timestamp last_prune{};

  State(const AlertSettings& s, const PricingTable& p) : settings(s), pricing(p) {}

  AlertAction action_for(std::string_view rule, const KeySnapshot* key) const {
    if (auto it = settings.actions.find(rule); it != settings.actions.end()) return it->second;
    if ((rule == kLoop || rule == kRateSpike) && key && key->created_by_run) {
      return AlertAction::kSuspend;
    }
    if (rule == kInvalidKeyBurst) return AlertAction::kSuspend;  // refuses the address
    return AlertAction::kAlert;
  }

  // The action for an alert about `key` from an event: suspending makes sense only for a key
  // that still serves requests.
  AlertAction key_action(std::string_view rule, const KeySnapshot* key) const {
    AlertAction action = action_for(rule, key);
    if (action == AlertAction::kSuspend && (!key || !in_service(*key))) {
      return AlertAction::kAlert;
    }
    return action;
  }

  void advance(Timestamp at) {
    now = std::max(now, at);
    if (now - last_prune >= kPruneEvery) prune();
  }

  void prune() {
    last_prune = now;
    for (auto it = keys.begin(); it != keys.end();) {
      if (it->second.last_seen + kStateTtl <= now) {
        it = keys.erase(it);
        continue;
      }
      std::erase_if(it->second.addresses,
                    [&](const auto& entry) { return entry.second.last_seen + kStateTtl <= now; });
      ++it;
    }
    std::erase_if(addresses, [&](const auto& entry) {
      const BurstState& b = entry.second;
      const bool blocked = b.blocked_until && *b.blocked_until > now;
      const bool counting =
          !b.invalid.empty() && b.invalid.back() + settings.invalid_burst_window > now;
      return !blocked && !counting;
    });
    std::erase_if(
        raised, [&](const auto& entry) { return entry.second.at + settings.repeat_after <= now; });
  }

  // Raises the alert build() makes about (subject, rule, detail) unless the same was raised less
  // than repeat_after before `at`. build() runs only when the alert is raised: an event that
  // matches a rule usually matched it just before, and composing the message is most of the cost.
  template <typename Build>
  void raise_once(std::vector<RaisedAlert>& out, std::string_view rule, std::string_view subject,
                  std::string_view detail, Timestamp at, Build&& build) {
    const auto found = raised.find(std::tuple(subject, rule, detail));
    if (found != raised.end() && at - found->second.at < settings.repeat_after) return;
    RaisedAlert alert = std::forward<Build>(build)();
    const Raised record{at, alert.action == AlertAction::kSuspend};
    if (found != raised.end()) {
      found->second = record;
    } else {
      raised.emplace(std::tuple(std::string(subject), std::string(rule), std::string(detail)),
                     record);
    }
    out.push_back(std::move(alert));
  }

  // A key seen suspended was dealt with: once resumed, its suspending rules may act again.
  void forget_suspensions(const std::string& key_id) {
    for (auto it = raised.lower_bound({key_id, "", ""});
         it != raised.end() && std::get<0>(it->first) == key_id;) {
      it = it->second.suspend ? raised.erase(it) : std::next(it);
    }
  }

  KeyState& key_state(const UsageEvent& event, const KeySnapshot& key) {
    auto [it, fresh] = keys.try_emplace(key.record.id);
    KeyState& ks = it->second;
    ks.last_seen = std::max(ks.last_seen, event.at);
    // A key older than this state's memory (first seen since start, or quiet for an hour) may
    // have crossed marks before: those reached before this event count as raised, so a restart
    // does not repeat them. A younger key was seen since its creation.
    if (fresh && key.record.created_at + kStateTtl <= event.at) {
      bool exhausted_before = false;
      for (Dimension d : kDimensions) {
        const std::optional<int64_t> limit = limit_of(key.record.limits, d);
        if (!limit || *limit <= 0) continue;
        const int64_t before = used_of(key.record.used, d) - used_of(event.usage, d);
        for (int mark : settings.budget_marks_percent) {
          if (mark > 0 && reached(before, *limit, mark)) ks.marks_raised.insert({d, mark});
        }
        if (before >= *limit) exhausted_before = true;
      }
      ks.exhausted_raised = key.record.status == KeyStatus::kExhausted && exhausted_before;
    }
    return ks;
  }

  void budget_threshold(const KeySnapshot& key, KeyState& ks, std::vector<RaisedAlert>& out) {
    const AlertAction action = key_action(kBudgetThreshold, &key);
    if (action == AlertAction::kOff) return;
    const std::string& id = key.record.id;
    for (Dimension d : kDimensions) {
      const std::optional<int64_t> limit = limit_of(key.record.limits, d);
      if (!limit || *limit <= 0) continue;
      const int64_t used = used_of(key.record.used, d);
      // Several marks crossed at once raise only the highest.
      std::optional<int> highest;
      for (int mark : settings.budget_marks_percent) {
        if (mark <= 0 || !reached(used, *limit, mark)) continue;
        if (!ks.marks_raised.insert({d, mark}).second) continue;
        if (!highest || mark > *highest) highest = mark;
      }
      if (!highest) continue;
      RaisedAlert alert = make_alert(kBudgetThreshold, id,
                                     *highest >= 100  ? "critical"
                                     : *highest >= 80 ? "warning"
                                                      : "info",
                                     action);
      alert.message = "key " + id + " has used " + std::to_string(*highest) + "% of its " +
                      std::string(dimension_name(d)) + " limit (" +
                      used_of_limit_text(d, used, *limit) + "); ";
      if (action == AlertAction::kSuspend) {
        alert.message +=
            "till suspended it; resume it with till key resume " + id + " if it should go on";
      } else if (*highest >= 100) {
        alert.message += "its requests are refused now; give the agent a new key if it needs more";
      } else {
        alert.message +=
            "it is refused at 100%; check the agent if this comes sooner than expected";
      }
      out.push_back(std::move(alert));
    }
  }

  void key_exhausted(const KeySnapshot& key, KeyState& ks, std::vector<RaisedAlert>& out) {
    const AlertAction action = key_action(kKeyExhausted, &key);
    if (action == AlertAction::kOff) return;
    if (key.record.status != KeyStatus::kExhausted || ks.exhausted_raised) return;
    ks.exhausted_raised = true;
    const std::string& id = key.record.id;
    std::string which;
    for (Dimension d : kDimensions) {
      const std::optional<int64_t> limit = limit_of(key.record.limits, d);
      if (limit && used_of(key.record.used, d) >= *limit) {
        which = " (" + std::string(dimension_name(d)) + ": " +
                used_of_limit_text(d, used_of(key.record.used, d), *limit) + ")";
        break;
      }
    }
    RaisedAlert alert = make_alert(kKeyExhausted, id, "critical", action);
    alert.message = "key " + id + " is exhausted" + which +
                    ": its requests are refused; give the agent a new key if it needs more";
    if (action == AlertAction::kSuspend) alert.message += "; till also suspended it";
    out.push_back(std::move(alert));
  }

  void projected_exhaustion(const UsageEvent& event, const KeySnapshot& key, KeyState& ks,
                            std::vector<RaisedAlert>& out) {
    const AlertAction action = key_action(kProjectedExhaustion, &key);
    if (action == AlertAction::kOff) return;
    const Limits& limits = key.record.limits;
    if (!limits.max_spend && !limits.max_requests) return;
    const Sample current{event.at, key.record.used.spend.nanos(), key.record.used.requests};
    while (!ks.samples.empty() && ks.samples.front().at + settings.projection_window < event.at) {
      ks.samples.pop_front();
    }
    std::optional<Sample> oldest;
    if (!ks.samples.empty()) oldest = ks.samples.front();
    if (ks.samples.empty() || event.at - ks.samples.back().at >= kProjectionSampleEvery) {
      ks.samples.push_back(current);
    }
    if (oldest) evaluate_projection(*oldest, current, key, action, out);
  }

  void evaluate_projection(const Sample& oldest, const Sample& current, const KeySnapshot& key,
                           AlertAction action, std::vector<RaisedAlert>& out) {
    if (key.record.status != KeyStatus::kActive) return;
    const milliseconds span = current.at - oldest.at;
    if (span < kProjectionMinSpan) return;
    struct Projection {
      Dimension dimension;
      milliseconds left;
      int64_t per_minute;
      int64_t used;
      int64_t limit;
    };
    std::optional<Projection> soonest;
    for (Dimension d : {kSpend, kRequests}) {
      const std::optional<int64_t> limit = limit_of(key.record.limits, d);
      if (!limit) continue;
      const int64_t used = d == kSpend ? current.spend : current.requests;
      const int64_t delta = used - (d == kSpend ? oldest.spend : oldest.requests);
      const int64_t remaining = *limit - used;
      if (delta <= 0 || remaining <= 0) continue;
      const Int128 left_ms = static_cast<Int128>(remaining) * span.count() / delta;
      if (left_ms >= milliseconds(settings.projection_horizon).count()) continue;
      const milliseconds left{static_cast<int64_t>(left_ms)};
      if (soonest && soonest->left <= left) continue;
      const auto per_minute =
          static_cast<int64_t>(static_cast<Int128>(delta) * 60'000 / span.count());
      soonest = Projection{d, left, per_minute, used, *limit};
    }
    if (!soonest) return;
    const std::string& id = key.record.id;
    raise_once(out, kProjectedExhaustion, id, "", current.at, [&] {
      RaisedAlert alert = make_alert(kProjectedExhaustion, id, "warning", action);
      alert.message =
          "key " + id + " will reach its " + std::string(dimension_name(soonest->dimension)) +
          " limit in about " + approx_duration(soonest->left) + " at its current rate (" +
          amount_text(soonest->dimension, soonest->per_minute) + " a minute, " +
          used_of_limit_text(soonest->dimension, soonest->used, soonest->limit) + " used); " +
          key_tail(action, id, "check what the agent is doing, or plan for it to stop");
      return alert;
    });
  }

  void rate_spike(const UsageEvent& event, const KeySnapshot& key, KeyState& ks,
                  std::vector<RaisedAlert>& out) {
    const AlertAction action = key_action(kRateSpike, &key);
    if (action == AlertAction::kOff) return;
    const int64_t minute =
        std::chrono::floor<std::chrono::minutes>(event.at).time_since_epoch().count();
    ks.requests_per_minute.advance_to(minute);
    ks.tokens_per_minute.advance_to(minute);
    ks.requests_per_minute.count += 1;
    ks.tokens_per_minute.count += std::max<int64_t>(event.usage.tokens(), 0);

    const std::string& id = key.record.id;
    auto check = [&](const MinuteSeries& series, int64_t minimum, std::string_view verb,
                     std::string_view what) {
      if (series.history < settings.spike_baseline_minutes || series.count < minimum) return;
      const double z = series.z_score();
      if (z < settings.spike_z) return;
      raise_once(out, kRateSpike, id, what, event.at, [&] {
        RaisedAlert alert = make_alert(kRateSpike, id, behaviour_severity(action), action);
        alert.message = "key " + id + " " + std::string(verb) + " " + std::to_string(series.count) +
                        " " + std::string(what) + " this minute, far above its usual " +
                        fixed(series.mean, 1) + " a minute (z=" + fixed(z, 1) + "); " +
                        key_tail(action, id, "check what the agent is doing");
        return alert;
      });
    };
    check(ks.requests_per_minute, settings.spike_min_requests, "made", "requests");
    check(ks.tokens_per_minute, settings.spike_min_requests * kSpikeTokensPerRequest, "used",
          "tokens");
  }

  void loop(const UsageEvent& event, const KeySnapshot& key, KeyState& ks,
            std::vector<RaisedAlert>& out) {
    const AlertAction action = key_action(kLoop, &key);
    if (action == AlertAction::kOff) return;
    auto drop_oldest = [&] {
      auto count = ks.body_counts.find(ks.bodies.front().second);
      if (count != ks.body_counts.end() && --count->second <= 0) ks.body_counts.erase(count);
      ks.bodies.pop_front();
    };
    while (!ks.bodies.empty() && ks.bodies.front().first + settings.loop_window <= event.at) {
      drop_oldest();
    }
    if (event.body_hash == 0) return;
    if (ks.bodies.size() >= kMaxBodiesPerKey) drop_oldest();
    ks.bodies.emplace_back(event.at, event.body_hash);
    const int64_t count = ++ks.body_counts[event.body_hash];
    if (count < settings.loop_repeats) return;
    const std::string& id = key.record.id;
    raise_once(out, kLoop, id, "", event.at, [&] {
      RaisedAlert alert = make_alert(kLoop, id, behaviour_severity(action), action);
      alert.message =
          "key " + id + " sent the same request " + std::to_string(count) + " times within " +
          format_duration(std::chrono::duration_cast<milliseconds>(settings.loop_window)) +
          ": the agent may be stuck in a loop; " + key_tail(action, id, "check the agent");
      return alert;
    });
  }

  void model_shift(const UsageEvent& event, const KeySnapshot& key, KeyState& ks,
                   std::vector<RaisedAlert>& out) {
    const AlertAction action = key_action(kModelShift, &key);
    if (action == AlertAction::kOff || !event.forwarded || event.model.empty()) return;
    const std::string& provider = event.provider.empty() ? key.record.provider : event.provider;
    const ModelPrice* price = pricing.find(provider, event.model);
    if (!price) return;
    const int64_t output = price->output_per_mtok;
    if (ks.priced_requests >= settings.model_shift_min_requests && output > 0 &&
        static_cast<double>(output) >=
            settings.model_shift_factor * static_cast<double>(ks.max_output_price)) {
      const std::string& id = key.record.id;
      raise_once(out, kModelShift, id, event.model, event.at, [&] {
        RaisedAlert alert = make_alert(kModelShift, id, behaviour_severity(action), action);
        alert.message = "key " + id + " switched to " + event.model + " (" + price_text(output) +
                        "), far pricier than the priciest model it used before, " +
                        ks.priciest_model + " (" + price_text(ks.max_output_price) + "); " +
                        key_tail(action, id, "check that the agent is meant to use it");
        return alert;
      });
    }
    if (ks.priced_requests == 0 || output > ks.max_output_price) {
      ks.max_output_price = output;
      ks.priciest_model = event.model;
    }
    ++ks.priced_requests;
  }

  void new_address(const UsageEvent& event, const KeySnapshot& key, KeyState& ks,
                   std::vector<RaisedAlert>& out) {
    const AlertAction action = key_action(kNewAddress, &key);
    if (action == AlertAction::kOff || event.client_address.empty()) return;
    auto it = ks.addresses.find(event.client_address);
    if (it == ks.addresses.end()) {
      if (ks.addresses.size() == 1 &&
          ks.addresses.begin()->second.events >= settings.new_address_min_requests) {
        const auto& [usual, use] = *ks.addresses.begin();
        const std::string& id = key.record.id;
        raise_once(out, kNewAddress, id, event.client_address, event.at, [&] {
          RaisedAlert alert = make_alert(kNewAddress, id, behaviour_severity(action), action);
          alert.message = "key " + id + ", used only from " + usual + " (" +
                          std::to_string(use.events) + " requests), was just used from " +
                          event.client_address +
                          "; if that is unexpected its token may have leaked: ";
          alert.message += action == AlertAction::kSuspend
                               ? "till suspended it; rotate it with till key rotate " + id +
                                     ", then resume it with till key resume " + id
                               : "rotate it with till key rotate " + id;
          return alert;
        });
      }
      if (ks.addresses.size() >= kMaxAddressesPerKey) return;
      it = ks.addresses.emplace(event.client_address, AddressUse{}).first;
    }
    ++it->second.events;
    it->second.last_seen = event.at;
  }

  void stale_token(const UsageEvent& event, const KeySnapshot* key, std::vector<RaisedAlert>& out) {
    const bool revoked = event.error_code == "key_revoked";
    const bool expired = event.error_code == "key_expired";
    const bool refused_secret = event.error_code == "invalid_api_key" && key != nullptr;
    if ((!revoked && !expired && !refused_secret) || event.key_id.empty()) return;
    const AlertAction action = key_action(kStaleToken, key);
    if (action == AlertAction::kOff) return;
    const std::string& id = event.key_id;
    const std::string from = event.client_address.empty() ? "" : " from " + event.client_address;
    raise_once(out, kStaleToken, id, event.error_code, event.at, [&] {
      RaisedAlert alert = make_alert(kStaleToken, id, "critical", action);
      if (revoked || expired) {
        alert.message = "the token of " + std::string(revoked ? "revoked" : "expired") + " key " +
                        id + " was used" + from +
                        ": it may have leaked; find where it is still stored and remove it";
      } else {
        const std::optional<Timestamp> due = key->record.rotation_due_at();
        const std::string what =
            due && *due <= event.at
                ? "a token of key " + id + " past its rotation date (" + format_rfc3339(*due) + ")"
                : "a token naming key " + id + " with a wrong or rotated-out secret";
        alert.message = what + " was used" + from +
                        ": it may have leaked; find who holds it, and if in doubt rotate the key "
                        "with till key rotate " +
                        id + " or revoke it";
      }
      if (action == AlertAction::kSuspend) {
        alert.message += "; till suspended it (till key resume " + id + " once checked)";
      }
      return alert;
    });
  }

  void invalid_key_burst(const UsageEvent& event, std::vector<RaisedAlert>& out) {
    if (event.error_code != "invalid_api_key" || event.client_address.empty()) return;
    const AlertAction action = action_for(kInvalidKeyBurst, nullptr);
    if (action == AlertAction::kOff) return;
    auto it = addresses.find(event.client_address);
    if (it == addresses.end()) {
      if (addresses.size() >= kMaxBurstAddresses) prune();
      if (addresses.size() >= kMaxBurstAddresses) return;
      it = addresses.emplace(event.client_address, BurstState{}).first;
    }
    BurstState& b = it->second;
    if (b.blocked_until) {
      if (event.at < *b.blocked_until) return;  // refused already; a new burst starts after it
      b.blocked_until.reset();
    }
    while (!b.invalid.empty() && b.invalid.front() + settings.invalid_burst_window <= event.at) {
      b.invalid.pop_front();
    }
    b.invalid.push_back(event.at);
    if (static_cast<int64_t>(b.invalid.size()) < settings.invalid_burst_count) return;
    const size_t count = b.invalid.size();
    b.invalid.clear();
    // The cool-down also spaces the alerts when the address is not refused.
    b.blocked_until = event.at + settings.address_cooldown;
    RaisedAlert alert = make_alert(kInvalidKeyBurst, "", "warning", action);
    alert.message =
        std::to_string(count) + " requests with invalid API keys came from " +
        event.client_address + " within " +
        format_duration(std::chrono::duration_cast<milliseconds>(settings.invalid_burst_window)) +
        ": someone may be guessing keys; ";
    if (action == AlertAction::kSuspend) {
      alert.blocked_address = event.client_address;
      alert.blocked_until = b.blocked_until;
      alert.message += "till refuses the address until " + format_rfc3339(*b.blocked_until) +
                       "; if it is one of your agents, fix its key";
    } else {
      alert.message += "if it is one of your agents, fix its key";
    }
    out.push_back(std::move(alert));
  }

  void upstream_rejected(const UsageEvent& event, const KeySnapshot* key,
                         std::vector<RaisedAlert>& out) {
    if (!event.forwarded || (event.upstream_status != 401 && event.upstream_status != 403)) return;
    if (event.key_id.empty()) return;
    const AlertAction action = key_action(kUpstreamRejected, key);
    if (action == AlertAction::kOff) return;
    const std::string& id = event.key_id;
    const std::string provider = event.provider.empty() ? "the provider" : event.provider;
    raise_once(out, kUpstreamRejected, id, "", event.at, [&] {
      RaisedAlert alert = make_alert(kUpstreamRejected, id, "critical", action);
      alert.message = provider + " refused the upstream credential of key " + id + " (HTTP " +
                      std::to_string(event.upstream_status) +
                      "): it may have been revoked or rotated outside till; ";
      if (key && key->record.credential) {
        alert.message +=
            "replace the secret with till credential rotate " + *key->record.credential;
      } else if (key) {
        alert.message += "set a valid provider key and rotate the key with till key rotate " + id;
      } else {
        alert.message += "check the provider key it uses";
      }
      if (action == AlertAction::kSuspend) alert.message += "; till suspended the key meanwhile";
      return alert;
    });
  }

  // One rotation reminder: `what` names the key's token or the credential.
  void rotation(std::vector<RaisedAlert>& out, const std::string& key_id,
                const std::string& subject, const std::string& what, const std::string& command,
                Timestamp due, Timestamp at) {
    const bool overdue = due <= at;
    if (!overdue && due - at > settings.rotation_notice) return;
    const AlertAction action = action_for(kRotationDue, nullptr);
    if (action == AlertAction::kOff) return;
    raise_once(out, kRotationDue, subject, overdue ? "overdue" : "due", at, [&] {
      RaisedAlert alert =
          make_alert(kRotationDue, key_id, overdue ? "critical" : "warning", action);
      if (overdue) {
        alert.message = what + " was due for rotation at " + format_rfc3339(due) + " (" +
                        approx_duration(at - due) + " ago); rotate it now with " + command;
      } else {
        alert.message = what + " is due for rotation at " + format_rfc3339(due) + " (in " +
                        approx_duration(due - at) + "); rotate it before then with " + command;
      }
      return alert;
    });
  }
};

const std::vector<std::string>& alert_rule_names() {
  static const std::vector<std::string> names = {
      std::string(kBudgetThreshold),  std::string(kKeyExhausted), std::string(kProjectedExhaustion),
      std::string(kRateSpike),        std::string(kLoop),         std::string(kModelShift),
      std::string(kNewAddress),       std::string(kStaleToken),   std::string(kInvalidKeyBurst),
      std::string(kUpstreamRejected), std::string(kRotationDue)};
  return names;
}

AlertEngine::AlertEngine(AlertSettings settings, const PricingTable& pricing)
    : settings_(std::move(settings)),
      pricing_(pricing),
      state_(std::make_unique<State>(settings_, pricing_)) {}

AlertEngine::~AlertEngine() = default;

std::vector<RaisedAlert> AlertEngine::observe(const UsageEvent& event, const KeySnapshot* key) {
  State& s = *state_;
  s.advance(event.at);
  std::vector<RaisedAlert> out;
  // A refused token (invalid_api_key) says nothing about how the key's holder uses it.
  if (key && event.error_code != "invalid_api_key") {
    KeyState& ks = s.key_state(event, *key);
    if (key->record.status == KeyStatus::kSuspended) {
      s.forget_suspensions(key->record.id);
      ks.bodies.clear();
      ks.body_counts.clear();
    }
    s.budget_threshold(*key, ks, out);
    s.key_exhausted(*key, ks, out);
    // Behaviour rules watch keys that serve requests; stale_token covers revoked and expired ones.
    if (in_service(*key)) {
      s.projected_exhaustion(event, *key, ks, out);
      s.rate_spike(event, *key, ks, out);
      s.loop(event, *key, ks, out);
      s.model_shift(event, *key, ks, out);
      s.new_address(event, *key, ks, out);
    }
  }
  s.stale_token(event, key, out);
  s.invalid_key_burst(event, out);
  s.upstream_rejected(event, key, out);
  return out;
}

std::vector<RaisedAlert> AlertEngine::check_rotation(
    const std::vector<RotationDue>& keys, const std::vector<CredentialRecord>& credentials,
    Timestamp now) {
  State& s = *state_;
  s.advance(now);
  std::vector<RaisedAlert> out;
  for (const RotationDue& due : keys) {
    s.rotation(out, due.key_id, due.key_id, "the token of key " + due.key_id,
               "till key rotate " + due.key_id, due.due, now);
  }
  for (const CredentialRecord& credential : credentials) {
    const std::optional<Timestamp> due = credential.rotation_due_at();
    if (!due) continue;
    s.rotation(out, "", "credential:" + credential.name, "vault credential " + credential.name,
               "till credential rotate " + credential.name, *due, now);
  }
  return out;
}

}  // namespace till
