// AlertEngine: each rule fires on the traffic it is meant for, stays quiet on ordinary traffic,
// takes the action the settings (or the key's origin) give it, and does not repeat itself.
// Events and key snapshots are built by hand; time comes only from the events.
#include "monitor/alert_engine.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/time_text.h"

namespace till {
namespace {

using namespace std::chrono_literals;

const Timestamp kT0 = from_unix_ms(1'764'860'400'000);  // on a minute boundary
constexpr std::string_view kAgentAddress = "10.0.0.7";

// A forwarded gpt-4o-mini request costing $0.0001 for 150 tokens.
Usage small_usage() {
  Usage usage;
  usage.requests = 1;
  usage.input_tokens = 100;
  usage.output_tokens = 50;
  usage.spend = Money::from_nanos(100'000);
  return usage;
}

std::vector<RaisedAlert> of_rule(const std::vector<RaisedAlert>& alerts, std::string_view rule) {
  std::vector<RaisedAlert> out;
  for (const RaisedAlert& alert : alerts) {
    if (alert.rule == rule) out.push_back(alert);
  }
  return out;
}

std::string rules_of(const std::vector<RaisedAlert>& alerts) {
  std::string out;
  for (const RaisedAlert& alert : alerts) out += alert.rule + ": " + alert.message + "\n";
  return out;
}

// One engine and one key, whose snapshot moves as the budget ledger's would.
class Harness {
 public:
  explicit Harness(AlertSettings settings = {})
      : engine_(std::move(settings), PricingTable::builtin()) {
    key_.record.id = "key_agent";
    key_.record.provider = "openai";
    key_.record.created_at = kT0 - std::chrono::days(30);
    key_.record.rotated_at = key_.record.created_at;
    key_.record.updated_at = key_.record.created_at;
  }

  KeySnapshot& key() { return key_; }
  AlertEngine& engine() { return engine_; }

  // A forwarded request with a fresh body, from the agent's usual address.
  UsageEvent request(Timestamp at) {
    UsageEvent event;
    event.at = at;
    event.key_id = key_.record.id;
    event.provider = "openai";
    event.model = "gpt-4o-mini";
    event.status = 200;
    event.forwarded = true;
    event.upstream_status = 200;
    event.usage = small_usage();
    event.client_address = std::string(kAgentAddress);
    event.body_hash = next_body_++;
    return event;
  }

  // A request refused before authentication succeeded, naming `key_id`.
  static UsageEvent invalid_key(Timestamp at, std::string address, std::string key_id = "") {
    UsageEvent event;
    event.at = at;
    event.key_id = std::move(key_id);
    event.provider = "openai";
    event.status = 401;
    event.error_code = "invalid_api_key";
    event.client_address = std::move(address);
    return event;
  }

  // Observes `event` with the key as it stands after it (used grows, exhausted at a limit).
  std::vector<RaisedAlert> send(const UsageEvent& event) {
    if (event.forwarded) {
      Usage& used = key_.record.used;
      used.requests += event.usage.requests;
      used.input_tokens += event.usage.input_tokens;
      used.output_tokens += event.usage.output_tokens;
      used.spend += event.usage.spend;
      const Limits& limits = key_.record.limits;
      if (key_.record.status == KeyStatus::kActive &&
          ((limits.max_requests && used.requests >= *limits.max_requests) ||
           (limits.max_tokens && used.tokens() >= *limits.max_tokens) ||
           (limits.max_spend && used.spend >= *limits.max_spend))) {
        key_.record.status = KeyStatus::kExhausted;
      }
    }
    return engine_.observe(event, &key_);
  }

  // Ordinary traffic: `per_minute` evenly spaced requests a minute for `minutes` minutes from
  // `from`, one address, one model, every body different. Returns every alert raised.
  std::vector<RaisedAlert> steady(Timestamp from, int minutes, int per_minute) {
    std::vector<RaisedAlert> all;
    const auto gap = std::chrono::milliseconds(60'000 / per_minute);
    for (int m = 0; m < minutes; ++m) {
      for (int i = 0; i < per_minute; ++i) {
        auto raised = send(request(from + std::chrono::minutes(m) + gap * i));
        all.insert(all.end(), raised.begin(), raised.end());
      }
    }
    return all;
  }

 private:
  AlertEngine engine_;
  KeySnapshot key_;
  uint64_t next_body_ = 1;
};

Limits generous_limits() {
  Limits limits;
  limits.max_requests = 100'000;
  limits.max_tokens = 100'000'000;
  limits.max_spend = Money::from_nanos(100 * Money::kNanosPerDollar);
  return limits;
}

AlertSettings with_action(std::string_view rule, AlertAction action) {
  AlertSettings settings;
  settings.actions[std::string(rule)] = action;
  return settings;
}

// --- Names and ordinary traffic -------------------------------------------------------------

TEST(AlertEngine, RuleNamesInTheHeadersOrder) {
  EXPECT_EQ(
      alert_rule_names(),
      (std::vector<std::string>{"budget_threshold", "key_exhausted", "projected_exhaustion",
                                "rate_spike", "loop", "model_shift", "new_address", "stale_token",
                                "invalid_key_burst", "upstream_rejected", "rotation_due"}));
}

TEST(AlertEngine, SteadyTrafficWithinLimitsRaisesNothing) {
  Harness h;
  h.key().record.limits = generous_limits();
  auto alerts = h.steady(kT0, 90, 20);
  EXPECT_TRUE(alerts.empty()) << rules_of(alerts);
  EXPECT_TRUE(h.engine().check_rotation({}, {}, kT0 + 90min).empty());
}

// --- budget_threshold -----------------------------------------------------------------------

TEST(AlertEngine, BudgetThresholdRaisesEachMarkOnceWithItsSeverity) {
  Harness h;
  h.key().record.limits.max_requests = 10;
  std::vector<std::vector<RaisedAlert>> per_request;
  for (int i = 0; i < 12; ++i) {
    per_request.push_back(
        of_rule(h.send(h.request(kT0 + std::chrono::seconds(10 * i))), "budget_threshold"));
  }
  for (int i = 0; i < 12; ++i) {
    const bool mark = i == 4 || i == 7 || i == 9;  // the 5th, 8th and 10th request
    EXPECT_EQ(per_request[i].size(), mark ? 1u : 0u) << "request " << i + 1;
  }
  ASSERT_EQ(per_request[4].size(), 1u);
  const RaisedAlert& half = per_request[4][0];
  EXPECT_EQ(half.key_id, "key_agent");
  EXPECT_EQ(half.severity, "info");
  EXPECT_EQ(half.action, AlertAction::kAlert);
  EXPECT_NE(
      half.message.find("key key_agent has used 50% of its requests limit (5 of 10 requests)"),
      std::string::npos)
      << half.message;
  ASSERT_EQ(per_request[7].size(), 1u);
  EXPECT_EQ(per_request[7][0].severity, "warning");
  EXPECT_NE(per_request[7][0].message.find("80%"), std::string::npos);
  ASSERT_EQ(per_request[9].size(), 1u);
  EXPECT_EQ(per_request[9][0].severity, "critical");
  EXPECT_NE(per_request[9][0].message.find("100%"), std::string::npos);
  EXPECT_NE(per_request[9][0].message.find("refused"), std::string::npos);
}

TEST(AlertEngine, BudgetThresholdJumpOverSeveralMarksRaisesTheHighestOnSpend) {
  Harness h;
  h.key().record.limits.max_spend = Money::from_nanos(Money::kNanosPerDollar);  // $1
  UsageEvent big = h.request(kT0);
  big.usage.spend = Money::from_nanos(850'000'000);  // $0.85: past 50% and 80% at once
  auto alerts = of_rule(h.send(big), "budget_threshold");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].severity, "warning");
  EXPECT_NE(alerts[0].message.find("80% of its spend limit ($0.85 of $1.00)"), std::string::npos)
      << alerts[0].message;
  // 50% counts as raised too: the next small request raises nothing.
  EXPECT_TRUE(of_rule(h.send(h.request(kT0 + 1s)), "budget_threshold").empty());
}

TEST(AlertEngine, BudgetThresholdTokensAndQuietBelowTheFirstMark) {
  Harness h;
  h.key().record.limits.max_tokens = 1'000;  // each request uses 150 tokens
  for (int i = 0; i < 3; ++i) {              // 450 tokens: 45%
    EXPECT_TRUE(h.send(h.request(kT0 + std::chrono::seconds(i))).empty());
  }
  auto alerts = of_rule(h.send(h.request(kT0 + 3s)), "budget_threshold");  // 600: 60%
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].message.find("50% of its tokens limit (600 of 1000 tokens)"),
            std::string::npos)
      << alerts[0].message;
}

TEST(AlertEngine, BudgetThresholdQuietOnTrafficWellWithinLimits) {
  Harness h;
  h.key().record.limits = generous_limits();
  h.key().record.limits.max_requests = 1'000;
  auto alerts = h.steady(kT0, 20, 20);  // 400 of 1000 requests: 40%
  EXPECT_TRUE(of_rule(alerts, "budget_threshold").empty()) << rules_of(alerts);
}

TEST(AlertEngine, BudgetThresholdOfAnOldKeyFirstSeenDoesNotRepeatMarksItPassedBefore) {
  Harness h;  // the key is 30 days old: its earlier marks were raised before (or a restart)
  h.key().record.limits.max_requests = 100;
  h.key().record.used.requests = 60;
  EXPECT_TRUE(of_rule(h.send(h.request(kT0)), "budget_threshold").empty());
  for (int i = 1; i < 19; ++i) h.send(h.request(kT0 + std::chrono::seconds(i)));  // 79
  auto alerts = of_rule(h.send(h.request(kT0 + 20s)), "budget_threshold");        // 80
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].message.find("80%"), std::string::npos);

  // A key created minutes ago has been seen since its creation: its first batch counts.
  Harness young;
  young.key().record.created_at = kT0 - 5min;
  young.key().record.limits.max_requests = 100;
  young.key().record.used.requests = 59;
  auto raised = of_rule(young.send(young.request(kT0)), "budget_threshold");
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_NE(raised[0].message.find("50%"), std::string::npos);
}

// --- key_exhausted --------------------------------------------------------------------------

TEST(AlertEngine, KeyExhaustedRaisedOnceWhenTheStatusBecomesExhausted) {
  Harness h;
  h.key().record.limits.max_requests = 3;
  EXPECT_TRUE(of_rule(h.send(h.request(kT0)), "key_exhausted").empty());
  EXPECT_TRUE(of_rule(h.send(h.request(kT0 + 1s)), "key_exhausted").empty());
  auto alerts = of_rule(h.send(h.request(kT0 + 2s)), "key_exhausted");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].key_id, "key_agent");
  EXPECT_EQ(alerts[0].severity, "critical");
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
  EXPECT_NE(alerts[0].message.find("key key_agent is exhausted (requests: 3 of 3 requests)"),
            std::string::npos)
      << alerts[0].message;
  EXPECT_NE(alerts[0].message.find("new key"), std::string::npos);

  // The agent keeps trying: refused requests raise nothing more, even hours later.
  for (int i = 0; i < 5; ++i) {
    UsageEvent refused = h.request(kT0 + 3s + std::chrono::hours(i));
    refused.forwarded = false;
    refused.status = 402;
    refused.error_code = "limit_exhausted";
    refused.usage = {};
    EXPECT_TRUE(of_rule(h.send(refused), "key_exhausted").empty()) << i;
  }
}

TEST(AlertEngine, KeyExhaustedQuietForActiveKeysAndKnownExhaustion) {
  Harness h;
  h.key().record.limits = generous_limits();
  EXPECT_TRUE(of_rule(h.steady(kT0, 10, 20), "key_exhausted").empty());

  // An old key already exhausted before this event (a refused request after a restart).
  Harness old;
  old.key().record.limits.max_requests = 10;
  old.key().record.used.requests = 10;
  old.key().record.status = KeyStatus::kExhausted;
  UsageEvent refused = old.request(kT0);
  refused.forwarded = false;
  refused.error_code = "limit_exhausted";
  refused.usage = {};
  EXPECT_TRUE(old.send(refused).empty());
}

// --- projected_exhaustion -------------------------------------------------------------------

TEST(AlertEngine, ProjectedExhaustionWhenTheSpendRateEndsTheBudgetSoon) {
  Harness h;
  h.key().record.limits.max_spend = Money::from_nanos(10 * Money::kNanosPerDollar);
  std::vector<RaisedAlert> alerts;
  int first = -1;
  for (int i = 0; i < 60; ++i) {  // $0.05 a second: $3 a minute, $10 lasts 3m20s
    UsageEvent event = h.request(kT0 + std::chrono::seconds(i));
    event.usage.spend = Money::from_nanos(50'000'000);
    auto raised = of_rule(h.send(event), "projected_exhaustion");
    if (!raised.empty() && first < 0) first = i;
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  EXPECT_EQ(first, 30);          // the first event 30 s after the oldest sample
  ASSERT_EQ(alerts.size(), 1u);  // once per repeat_after
  EXPECT_EQ(alerts[0].key_id, "key_agent");
  EXPECT_EQ(alerts[0].severity, "warning");
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
  EXPECT_NE(alerts[0].message.find("key key_agent will reach its spend limit in about 2m49s"),
            std::string::npos)
      << alerts[0].message;
  EXPECT_NE(alerts[0].message.find("$3.00 a minute, $1.55 of $10.00 used"), std::string::npos)
      << alerts[0].message;
}

TEST(AlertEngine, ProjectedExhaustionOnRequests) {
  Harness h;
  h.key().record.limits.max_requests = 200;
  std::vector<RaisedAlert> alerts;
  for (int i = 0; i < 60; ++i) {  // 60 requests a minute: 200 last 3m20s
    auto raised = of_rule(h.send(h.request(kT0 + std::chrono::seconds(i))), "projected_exhaustion");
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].message.find("requests limit"), std::string::npos) << alerts[0].message;
  EXPECT_NE(alerts[0].message.find("60 requests a minute"), std::string::npos) << alerts[0].message;
}

TEST(AlertEngine, ProjectedExhaustionQuietOnSteadyTrafficAndShortSpans) {
  Harness h;
  h.key().record.limits = generous_limits();
  EXPECT_TRUE(of_rule(h.steady(kT0, 30, 20), "projected_exhaustion").empty());

  // A burst shorter than 30 s gives no rate, however small the budget.
  Harness burst;
  burst.key().record.limits.max_requests = 1'000;
  for (int i = 0; i < 29; ++i) {
    EXPECT_TRUE(
        of_rule(burst.send(burst.request(kT0 + std::chrono::seconds(i))), "projected_exhaustion")
            .empty());
  }
  // A key without limits is never projected.
  Harness unlimited;
  for (int i = 0; i < 120; ++i) {
    EXPECT_TRUE(unlimited.send(unlimited.request(kT0 + std::chrono::seconds(i))).empty());
  }
}

// --- rate_spike -----------------------------------------------------------------------------

TEST(AlertEngine, RateSpikeOnRequestsAboveTheKeysBaseline) {
  Harness h;
  ASSERT_TRUE(h.steady(kT0, 6, 5).empty());  // six minutes of 5 a minute
  const Timestamp minute = kT0 + 6min;
  std::vector<RaisedAlert> alerts;
  int first = -1;
  for (int i = 0; i < 40; ++i) {
    auto raised = of_rule(h.send(h.request(minute + std::chrono::seconds(i))), "rate_spike");
    if (!raised.empty() && first < 0) first = i;
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  EXPECT_EQ(first, 29);  // spike_min_requests (30) reached
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].key_id, "key_agent");
  EXPECT_EQ(alerts[0].severity, "warning");
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
  EXPECT_NE(alerts[0].message.find("key key_agent made 30 requests this minute, far above its "
                                   "usual 5.0 a minute"),
            std::string::npos)
      << alerts[0].message;
  EXPECT_NE(alerts[0].message.find("till key suspend key_agent"), std::string::npos);
}

TEST(AlertEngine, RateSpikeOnTokens) {
  Harness h;
  ASSERT_TRUE(h.steady(kT0, 6, 5).empty());  // 750 tokens a minute
  UsageEvent huge = h.request(kT0 + 6min);
  huge.usage.output_tokens = 20'000;
  EXPECT_TRUE(of_rule(h.send(huge), "rate_spike").empty());  // 20'100 < 30 × 1000
  huge = h.request(kT0 + 6min + 5s);
  huge.usage.output_tokens = 20'000;
  auto alerts = of_rule(h.send(huge), "rate_spike");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].message.find("key key_agent used 40200 tokens this minute"),
            std::string::npos)
      << alerts[0].message;
}

TEST(AlertEngine, RateSpikeQuietOnSteadyBusyTrafficAndWithoutBaseline) {
  Harness h;
  std::vector<RaisedAlert> alerts;
  for (int m = 0; m < 20; ++m) {  // 38 and 42 a minute, alternately: busy but steady
    auto raised = h.steady(kT0 + std::chrono::minutes(m), 1, m % 2 ? 42 : 38);
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  EXPECT_TRUE(of_rule(alerts, "rate_spike").empty()) << rules_of(alerts);

  // A new key's first minutes are no baseline: 100 requests in its first minute raise nothing.
  Harness fresh;
  EXPECT_TRUE(of_rule(fresh.steady(kT0, 1, 100), "rate_spike").empty());
}

TEST(AlertEngine, RateSpikeCountsEmptyMinutesAsZeros) {
  Harness h;
  ASSERT_TRUE(h.steady(kT0, 5, 30).empty());  // 30 a minute for five minutes
  // Ten silent minutes pull the baseline down to almost nothing: 30 a minute is now a spike.
  std::vector<RaisedAlert> alerts = h.steady(kT0 + 15min, 1, 30);
  EXPECT_EQ(of_rule(alerts, "rate_spike").size(), 1u) << rules_of(alerts);
}

// --- loop -----------------------------------------------------------------------------------

TEST(AlertEngine, LoopWhenTheSameBodyRepeatsWithinTheWindow) {
  Harness h;
  std::vector<RaisedAlert> alerts;
  int first = -1;
  for (int i = 0; i < 25; ++i) {
    UsageEvent event = h.request(kT0 + std::chrono::seconds(2 * i));
    event.body_hash = 0xfeed;
    auto raised = of_rule(h.send(event), "loop");
    if (!raised.empty() && first < 0) first = i;
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  EXPECT_EQ(first, 19);  // the 20th repeat
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].key_id, "key_agent");
  EXPECT_EQ(alerts[0].severity, "warning");
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
  EXPECT_NE(alerts[0].message.find("key key_agent sent the same request 20 times within 1m"),
            std::string::npos)
      << alerts[0].message;
  EXPECT_NE(alerts[0].message.find("loop"), std::string::npos);
}

TEST(AlertEngine, LoopQuietOnVariedBodiesAndSlowRepeats) {
  Harness h;
  EXPECT_TRUE(of_rule(h.steady(kT0, 10, 30), "loop").empty());
  // The same body every 4 s: only 15 fall in any 60 s.
  std::vector<RaisedAlert> alerts;
  for (int i = 0; i < 60; ++i) {
    UsageEvent event = h.request(kT0 + 10min + std::chrono::seconds(4 * i));
    event.body_hash = 0xbeef;
    auto raised = h.send(event);
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  // Requests without a body are never a loop.
  for (int i = 0; i < 40; ++i) {
    UsageEvent event = h.request(kT0 + 20min + std::chrono::seconds(i));
    event.body_hash = 0;
    auto raised = h.send(event);
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  EXPECT_TRUE(of_rule(alerts, "loop").empty()) << rules_of(alerts);
}

// --- model_shift ----------------------------------------------------------------------------

TEST(AlertEngine, ModelShiftToAFarPricierModel) {
  Harness h;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(h.send(h.request(kT0 + std::chrono::seconds(i))).empty());
  UsageEvent pricey = h.request(kT0 + 10s);
  pricey.model = "o1";
  auto alerts = of_rule(h.send(pricey), "model_shift");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].key_id, "key_agent");
  EXPECT_EQ(alerts[0].severity, "warning");
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
  EXPECT_NE(alerts[0].message.find("key key_agent switched to o1 ($60.00/Mtok output)"),
            std::string::npos)
      << alerts[0].message;
  EXPECT_NE(alerts[0].message.find("gpt-4o-mini ($0.60/Mtok output)"), std::string::npos)
      << alerts[0].message;
  // o1 is now the priciest it used: more o1 raises nothing.
  pricey = h.request(kT0 + 11s);
  pricey.model = "o1";
  EXPECT_TRUE(of_rule(h.send(pricey), "model_shift").empty());
}

TEST(AlertEngine, ModelShiftQuietOnTheSameModelModestStepsAndEarlyRequests) {
  Harness h;
  EXPECT_TRUE(of_rule(h.steady(kT0, 5, 10), "model_shift").empty());
  UsageEvent step = h.request(kT0 + 6min);
  step.model = "gpt-4.1-mini";  // $1.60: under 5 × $0.60
  EXPECT_TRUE(of_rule(h.send(step), "model_shift").empty());
  UsageEvent unpriced = h.request(kT0 + 6min + 1s);
  unpriced.model = "my-fine-tune";
  EXPECT_TRUE(of_rule(h.send(unpriced), "model_shift").empty());

  // Before model_shift_min_requests requests there is no baseline yet.
  Harness early;
  early.send(early.request(kT0));
  early.send(early.request(kT0 + 1s));
  UsageEvent pricey = early.request(kT0 + 2s);
  pricey.model = "o1";
  EXPECT_TRUE(of_rule(early.send(pricey), "model_shift").empty());
}

// --- new_address ----------------------------------------------------------------------------

TEST(AlertEngine, NewAddressForAKeyUsedFromOneAddress) {
  Harness h;
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(h.send(h.request(kT0 + std::chrono::seconds(i))).empty());
  UsageEvent elsewhere = h.request(kT0 + 20s);
  elsewhere.client_address = "198.51.100.23";
  auto alerts = of_rule(h.send(elsewhere), "new_address");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].key_id, "key_agent");
  EXPECT_EQ(alerts[0].severity, "warning");
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
  EXPECT_NE(alerts[0].message.find("key key_agent, used only from 10.0.0.7 (10 requests), was "
                                   "just used from 198.51.100.23"),
            std::string::npos)
      << alerts[0].message;
  EXPECT_NE(alerts[0].message.find("till key rotate key_agent"), std::string::npos);
  // Once two addresses are known, neither they nor a third raise again.
  elsewhere.at = kT0 + 21s;
  EXPECT_TRUE(of_rule(h.send(elsewhere), "new_address").empty());
  elsewhere.client_address = "203.0.113.5";
  EXPECT_TRUE(of_rule(h.send(elsewhere), "new_address").empty());
}

TEST(AlertEngine, NewAddressQuietFromOneAddressOrBeforeItIsEstablished) {
  Harness h;
  EXPECT_TRUE(of_rule(h.steady(kT0, 10, 20), "new_address").empty());

  Harness early;
  for (int i = 0; i < 9; ++i) early.send(early.request(kT0 + std::chrono::seconds(i)));
  UsageEvent elsewhere = early.request(kT0 + 20s);
  elsewhere.client_address = "198.51.100.23";
  EXPECT_TRUE(of_rule(early.send(elsewhere), "new_address").empty());
}

// --- stale_token ----------------------------------------------------------------------------

TEST(AlertEngine, StaleTokenOfARevokedOrExpiredKey) {
  Harness h;
  h.key().record.status = KeyStatus::kRevoked;
  UsageEvent event = h.request(kT0);
  event.forwarded = false;
  event.upstream_status = 0;
  event.status = 403;
  event.error_code = "key_revoked";
  event.usage = {};
  event.client_address = "198.51.100.23";
  auto alerts = h.send(event);
  ASSERT_EQ(alerts.size(), 1u) << rules_of(alerts);
  EXPECT_EQ(alerts[0].rule, "stale_token");
  EXPECT_EQ(alerts[0].key_id, "key_agent");
  EXPECT_EQ(alerts[0].severity, "critical");
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
  EXPECT_NE(alerts[0].message.find("the token of revoked key key_agent was used from "
                                   "198.51.100.23: it may have leaked"),
            std::string::npos)
      << alerts[0].message;

  h.key().record.status = KeyStatus::kExpired;
  event.error_code = "key_expired";
  alerts = of_rule(h.send(event), "stale_token");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].message.find("expired key key_agent"), std::string::npos);
}

TEST(AlertEngine, StaleTokenOfAnExistingKeyWithAWrongSecret) {
  Harness h;
  auto alerts = h.send(Harness::invalid_key(kT0, "198.51.100.23", "key_agent"));
  ASSERT_EQ(alerts.size(), 1u) << rules_of(alerts);
  EXPECT_EQ(alerts[0].rule, "stale_token");
  EXPECT_EQ(alerts[0].key_id, "key_agent");
  EXPECT_EQ(alerts[0].severity, "critical");
  EXPECT_NE(alerts[0].message.find("a token naming key key_agent with a wrong or rotated-out "
                                   "secret was used from 198.51.100.23"),
            std::string::npos)
      << alerts[0].message;
  EXPECT_NE(alerts[0].message.find("till key rotate key_agent"), std::string::npos);

  // A token past its rotation date says so.
  Harness overdue;
  overdue.key().record.rotate_every = std::chrono::days(7);
  overdue.key().record.rotated_at = kT0 - std::chrono::days(8);
  alerts = overdue.send(Harness::invalid_key(kT0, "10.0.0.7", "key_agent"));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].message.find("past its rotation date (" +
                                   format_rfc3339(kT0 - std::chrono::days(1)) + ")"),
            std::string::npos)
      << alerts[0].message;
}

TEST(AlertEngine, StaleTokenQuietOnNormalTrafficUnknownKeysAndSuspendedKeys) {
  Harness h;
  EXPECT_TRUE(of_rule(h.steady(kT0, 5, 20), "stale_token").empty());
  // A token naming no existing key: no snapshot, nothing about a key to say.
  EXPECT_TRUE(h.engine()
                  .observe(Harness::invalid_key(kT0 + 6min, "10.0.0.9", "key_guess"), nullptr)
                  .empty());
  EXPECT_TRUE(h.engine().observe(Harness::invalid_key(kT0 + 6min, "10.0.0.9"), nullptr).empty());
  // A suspended key's holder is waiting for it, not leaking it.
  h.key().record.status = KeyStatus::kSuspended;
  UsageEvent refused = h.request(kT0 + 7min);
  refused.forwarded = false;
  refused.error_code = "key_suspended";
  refused.usage = {};
  EXPECT_TRUE(h.send(refused).empty());
}

// --- invalid_key_burst ----------------------------------------------------------------------

TEST(AlertEngine, InvalidKeyBurstBlocksTheAddressForTheCooldown) {
  AlertEngine engine({}, PricingTable::builtin());
  const std::string address = "203.0.113.9";
  int first = -1;
  std::vector<RaisedAlert> alerts;
  for (int i = 0; i < 50; ++i) {  // one a second: 20 in a minute at the 20th
    auto raised =
        engine.observe(Harness::invalid_key(kT0 + std::chrono::seconds(i), address), nullptr);
    if (!raised.empty() && first < 0) first = i;
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  EXPECT_EQ(first, 19);
  ASSERT_EQ(alerts.size(), 1u);  // not again during the cooldown
  const RaisedAlert& burst = alerts[0];
  EXPECT_EQ(burst.rule, "invalid_key_burst");
  EXPECT_EQ(burst.key_id, "");
  EXPECT_EQ(burst.severity, "warning");
  EXPECT_EQ(burst.action, AlertAction::kSuspend);  // the default: refuse the address
  EXPECT_EQ(burst.blocked_address, address);
  ASSERT_TRUE(burst.blocked_until.has_value());
  EXPECT_EQ(*burst.blocked_until, kT0 + 19s + 5min);
  EXPECT_NE(burst.message.find("20 requests with invalid API keys came from 203.0.113.9 within "
                               "1m"),
            std::string::npos)
      << burst.message;
  EXPECT_NE(burst.message.find("until " + format_rfc3339(kT0 + 19s + 5min)), std::string::npos);

  // Another address is counted on its own.
  EXPECT_TRUE(engine.observe(Harness::invalid_key(kT0 + 60s, "203.0.113.10"), nullptr).empty());

  // After the cooldown a new burst blocks it again.
  std::vector<RaisedAlert> again;
  for (int i = 0; i < 20; ++i) {
    auto raised = engine.observe(
        Harness::invalid_key(kT0 + 19s + 5min + std::chrono::seconds(i), address), nullptr);
    again.insert(again.end(), raised.begin(), raised.end());
  }
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(*again[0].blocked_until, kT0 + 38s + 10min);
}

TEST(AlertEngine, InvalidKeyBurstSetToAlertRefusesNothing) {
  AlertSettings settings;
  settings.actions["invalid_key_burst"] = AlertAction::kAlert;
  AlertEngine engine(settings, PricingTable::builtin());
  std::vector<RaisedAlert> alerts;
  for (int i = 0; i < 20; ++i) {
    auto raised =
        engine.observe(Harness::invalid_key(kT0 + std::chrono::seconds(i), "10.0.0.7"), nullptr);
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
  EXPECT_TRUE(alerts[0].blocked_address.empty());
  EXPECT_FALSE(alerts[0].blocked_until);
  EXPECT_EQ(alerts[0].message.find("refuses"), std::string::npos) << alerts[0].message;
}

TEST(AlertEngine, InvalidKeyBurstQuietOnSparseMistakes) {
  Harness h;
  std::vector<RaisedAlert> alerts = h.steady(kT0, 10, 20);
  // Ten invalid keys a minute for ten minutes: never 20 within 60 s.
  for (int i = 0; i < 100; ++i) {
    auto raised = h.engine().observe(
        Harness::invalid_key(kT0 + std::chrono::seconds(6 * i), "10.0.0.8"), nullptr);
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  EXPECT_TRUE(alerts.empty()) << rules_of(alerts);
}

// --- upstream_rejected ----------------------------------------------------------------------

TEST(AlertEngine, UpstreamRejectedWhenTheProviderRefusesTheCredential) {
  Harness h;
  h.key().record.credential = "openai-main";
  UsageEvent event = h.request(kT0);
  event.upstream_status = 401;
  event.status = 401;
  event.usage = {};
  auto alerts = h.send(event);
  ASSERT_EQ(alerts.size(), 1u) << rules_of(alerts);
  EXPECT_EQ(alerts[0].rule, "upstream_rejected");
  EXPECT_EQ(alerts[0].key_id, "key_agent");
  EXPECT_EQ(alerts[0].severity, "critical");
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
  EXPECT_NE(alerts[0].message.find("openai refused the upstream credential of key key_agent "
                                   "(HTTP 401): it may have been revoked or rotated outside till"),
            std::string::npos)
      << alerts[0].message;
  EXPECT_NE(alerts[0].message.find("till credential rotate openai-main"), std::string::npos);

  Harness sealed;
  event.upstream_status = 403;
  alerts = of_rule(sealed.send(event), "upstream_rejected");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].message.find("(HTTP 403)"), std::string::npos);
  EXPECT_NE(alerts[0].message.find("till key rotate key_agent"), std::string::npos);
}

TEST(AlertEngine, UpstreamRejectedQuietOnOtherProviderAnswers) {
  Harness h;
  std::vector<RaisedAlert> alerts = h.steady(kT0, 5, 20);
  for (int status : {200, 400, 404, 429, 500, 503}) {
    UsageEvent event = h.request(kT0 + 6min);
    event.upstream_status = status;
    auto raised = h.send(event);
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  // A 401 that till answered itself never reached the provider.
  UsageEvent refused = h.request(kT0 + 7min);
  refused.forwarded = false;
  refused.upstream_status = 0;
  refused.status = 403;
  refused.error_code = "scope_denied";
  auto raised = h.send(refused);
  alerts.insert(alerts.end(), raised.begin(), raised.end());
  EXPECT_TRUE(of_rule(alerts, "upstream_rejected").empty()) << rules_of(alerts);
}

// --- rotation_due ---------------------------------------------------------------------------

CredentialRecord credential(std::string name, Timestamp rotated_at,
                            std::optional<std::chrono::milliseconds> every) {
  CredentialRecord c;
  c.name = std::move(name);
  c.provider = "openai";
  c.rotated_at = rotated_at;
  c.created_at = rotated_at;
  c.rotate_every = every;
  return c;
}

TEST(AlertEngine, RotationDueSoonAndOverdueForKeysAndCredentials) {
  AlertEngine engine({}, PricingTable::builtin());
  const Timestamp now = kT0;
  std::vector<RotationDue> keys = {{"key_soon", now + 30min}, {"key_late", now - 1h}};
  std::vector<CredentialRecord> credentials = {
      credential("openai-main", now - std::chrono::days(30) + 3h, std::chrono::days(30))};
  auto alerts = engine.check_rotation(keys, credentials, now);
  ASSERT_EQ(alerts.size(), 3u) << rules_of(alerts);

  EXPECT_EQ(alerts[0].rule, "rotation_due");
  EXPECT_EQ(alerts[0].key_id, "key_soon");
  EXPECT_EQ(alerts[0].severity, "warning");
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
  EXPECT_NE(alerts[0].message.find("the token of key key_soon is due for rotation at " +
                                   format_rfc3339(now + 30min) + " (in 30m)"),
            std::string::npos)
      << alerts[0].message;
  EXPECT_NE(alerts[0].message.find("till key rotate key_soon"), std::string::npos);

  EXPECT_EQ(alerts[1].key_id, "key_late");
  EXPECT_EQ(alerts[1].severity, "critical");
  EXPECT_NE(alerts[1].message.find("the token of key key_late was due for rotation at " +
                                   format_rfc3339(now - 1h) + " (1h ago)"),
            std::string::npos)
      << alerts[1].message;

  EXPECT_EQ(alerts[2].key_id, "");
  EXPECT_EQ(alerts[2].severity, "warning");
  EXPECT_NE(alerts[2].message.find("vault credential openai-main is due for rotation at " +
                                   format_rfc3339(now + 3h) + " (in 3h)"),
            std::string::npos)
      << alerts[2].message;
  EXPECT_NE(alerts[2].message.find("till credential rotate openai-main"), std::string::npos);

  // The Monitor checks every minute; the same reminder waits for repeat_after (60m).
  EXPECT_TRUE(engine.check_rotation(keys, credentials, now + 1min).empty());
  // Becoming overdue is news at once.
  auto overdue = engine.check_rotation(keys, credentials, now + 31min);
  ASSERT_EQ(overdue.size(), 1u) << rules_of(overdue);
  EXPECT_EQ(overdue[0].key_id, "key_soon");
  EXPECT_EQ(overdue[0].severity, "critical");
  EXPECT_TRUE(engine.check_rotation(keys, credentials, now + 59min).empty());
  // An hour on, the reminders still standing repeat.
  auto repeated = engine.check_rotation(keys, credentials, now + 60min);
  ASSERT_EQ(repeated.size(), 2u) << rules_of(repeated);
  EXPECT_EQ(repeated[0].key_id, "key_late");
  EXPECT_EQ(repeated[1].key_id, "");
}

TEST(AlertEngine, RotationDueQuietWhenFarOffOrNotScheduled) {
  AlertEngine engine({}, PricingTable::builtin());
  const Timestamp now = kT0;
  std::vector<RotationDue> keys = {{"key_later", now + std::chrono::days(3)}};
  std::vector<CredentialRecord> credentials = {
      credential("no-schedule", now - std::chrono::days(400), std::nullopt),
      credential("fresh", now - std::chrono::days(1), std::chrono::days(30))};
  EXPECT_TRUE(engine.check_rotation(keys, credentials, now).empty());
  EXPECT_TRUE(engine.check_rotation({}, {}, now).empty());
}

// --- actions --------------------------------------------------------------------------------

// 20 identical bodies in 20 s; returns the loop alerts.
std::vector<RaisedAlert> run_loop(Harness& h, Timestamp from) {
  std::vector<RaisedAlert> out;
  for (int i = 0; i < 20; ++i) {
    UsageEvent event = h.request(from + std::chrono::seconds(i));
    event.body_hash = 0xabc;
    auto raised = of_rule(h.send(event), "loop");
    out.insert(out.end(), raised.begin(), raised.end());
  }
  return out;
}

// Six quiet minutes, then 30 requests in a minute; returns the rate_spike alerts.
std::vector<RaisedAlert> run_spike(Harness& h) {
  std::vector<RaisedAlert> out = of_rule(h.steady(kT0, 6, 5), "rate_spike");
  auto burst = of_rule(h.steady(kT0 + 6min, 1, 30), "rate_spike");
  out.insert(out.end(), burst.begin(), burst.end());
  return out;
}

TEST(AlertEngine, LoopAndRateSpikeSuspendKeysCreatedByTillRunByDefault) {
  Harness run;
  run.key().created_by_run = true;
  auto loop = run_loop(run, kT0);
  ASSERT_EQ(loop.size(), 1u);
  EXPECT_EQ(loop[0].action, AlertAction::kSuspend);
  EXPECT_EQ(loop[0].severity, "critical");
  EXPECT_NE(loop[0].message.find("till suspended it; check the agent, then resume it with till "
                                 "key resume key_agent"),
            std::string::npos)
      << loop[0].message;

  Harness run_spiky;
  run_spiky.key().created_by_run = true;
  auto spike = run_spike(run_spiky);
  ASSERT_EQ(spike.size(), 1u);
  EXPECT_EQ(spike[0].action, AlertAction::kSuspend);
  EXPECT_NE(spike[0].message.find("till key resume key_agent"), std::string::npos);

  // Other keys only get an alert.
  Harness plain;
  loop = run_loop(plain, kT0);
  ASSERT_EQ(loop.size(), 1u);
  EXPECT_EQ(loop[0].action, AlertAction::kAlert);
  Harness plain_spiky;
  spike = run_spike(plain_spiky);
  ASSERT_EQ(spike.size(), 1u);
  EXPECT_EQ(spike[0].action, AlertAction::kAlert);

  // Other rules do not suspend run keys by default.
  Harness run_moved;
  run_moved.key().created_by_run = true;
  for (int i = 0; i < 10; ++i) run_moved.send(run_moved.request(kT0 + std::chrono::seconds(i)));
  UsageEvent elsewhere = run_moved.request(kT0 + 20s);
  elsewhere.client_address = "198.51.100.23";
  auto moved = of_rule(run_moved.send(elsewhere), "new_address");
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].action, AlertAction::kAlert);
}

TEST(AlertEngine, SettingsActionsApplyToEveryKey) {
  // alert: a run key's loop is only reported.
  Harness alert_only(with_action("loop", AlertAction::kAlert));
  alert_only.key().created_by_run = true;
  auto loop = run_loop(alert_only, kT0);
  ASSERT_EQ(loop.size(), 1u);
  EXPECT_EQ(loop[0].action, AlertAction::kAlert);

  // suspend: any key, any rule.
  Harness suspend(with_action("rate_spike", AlertAction::kSuspend));
  auto spike = run_spike(suspend);
  ASSERT_EQ(spike.size(), 1u);
  EXPECT_EQ(spike[0].action, AlertAction::kSuspend);
  Harness moved(with_action("new_address", AlertAction::kSuspend));
  for (int i = 0; i < 10; ++i) moved.send(moved.request(kT0 + std::chrono::seconds(i)));
  UsageEvent elsewhere = moved.request(kT0 + 20s);
  elsewhere.client_address = "198.51.100.23";
  auto raised = of_rule(moved.send(elsewhere), "new_address");
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(raised[0].action, AlertAction::kSuspend);
  EXPECT_NE(raised[0].message.find("till key resume key_agent"), std::string::npos);

  // off: the rule is silent, even for a run key.
  Harness off(with_action("loop", AlertAction::kOff));
  off.key().created_by_run = true;
  EXPECT_TRUE(run_loop(off, kT0).empty());
}

TEST(AlertEngine, SuspendOnlyForKeysThatStillServeRequests) {
  // A leaked token of an active key: suspending it protects the key.
  Harness active(with_action("stale_token", AlertAction::kSuspend));
  auto alerts = active.send(Harness::invalid_key(kT0, "198.51.100.23", "key_agent"));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].action, AlertAction::kSuspend);
  EXPECT_NE(alerts[0].message.find("till key resume key_agent"), std::string::npos);

  // A revoked key cannot be suspended: the alert stands alone.
  Harness revoked(with_action("stale_token", AlertAction::kSuspend));
  revoked.key().record.status = KeyStatus::kRevoked;
  UsageEvent event = revoked.request(kT0);
  event.forwarded = false;
  event.error_code = "key_revoked";
  event.usage = {};
  alerts = revoked.send(event);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].action, AlertAction::kAlert);
}

TEST(AlertEngine, EveryRuleCanBeTurnedOff) {
  AlertSettings settings;
  for (const std::string& rule : alert_rule_names()) settings.actions[rule] = AlertAction::kOff;
  Harness h(settings);
  h.key().record.limits.max_requests = 40;
  h.key().created_by_run = true;
  std::vector<RaisedAlert> alerts = run_loop(h, kT0);  // loop, budget marks, projection
  for (int i = 0; i < 20; ++i) {                       // exhaustion
    auto raised = h.send(h.request(kT0 + 30s + std::chrono::seconds(i)));
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  UsageEvent rejected = h.request(kT0 + 2min);
  rejected.upstream_status = 401;
  rejected.client_address = "198.51.100.23";  // new address too
  auto raised = h.send(rejected);
  alerts.insert(alerts.end(), raised.begin(), raised.end());
  for (int i = 0; i < 30; ++i) {  // stale tokens and a burst
    raised = h.send(
        Harness::invalid_key(kT0 + 3min + std::chrono::seconds(i), "203.0.113.9", "key_agent"));
    alerts.insert(alerts.end(), raised.begin(), raised.end());
  }
  raised = h.engine().check_rotation({{"key_agent", kT0}}, {}, kT0 + 4min);
  alerts.insert(alerts.end(), raised.begin(), raised.end());
  EXPECT_TRUE(alerts.empty()) << rules_of(alerts);
}

// --- deduplication and memory ---------------------------------------------------------------

TEST(AlertEngine, SameAlertNotRepeatedWithinRepeatAfterButAfterIt) {
  Harness h;
  UsageEvent rejected = h.request(kT0);
  rejected.upstream_status = 401;
  EXPECT_EQ(of_rule(h.send(rejected), "upstream_rejected").size(), 1u);
  rejected.at = kT0 + 10min;
  EXPECT_TRUE(of_rule(h.send(rejected), "upstream_rejected").empty());
  rejected.at = kT0 + 59min;
  EXPECT_TRUE(of_rule(h.send(rejected), "upstream_rejected").empty());
  rejected.at = kT0 + 60min;
  EXPECT_EQ(of_rule(h.send(rejected), "upstream_rejected").size(), 1u);

  // A shorter repeat_after, for the loop rule.
  AlertSettings settings;
  settings.repeat_after = 5min;
  Harness looping(settings);
  EXPECT_EQ(run_loop(looping, kT0).size(), 1u);
  EXPECT_TRUE(run_loop(looping, kT0 + 2min).empty());
  EXPECT_EQ(run_loop(looping, kT0 + 6min).size(), 1u);
}

TEST(AlertEngine, ASuspendedKeyThatIsResumedIsSuspendedAgainWhenItLoopsAgain) {
  Harness h;
  h.key().created_by_run = true;
  ASSERT_EQ(run_loop(h, kT0).size(), 1u);
  // The rest of the batch, whose snapshot still said active: no second suspension.
  EXPECT_TRUE(run_loop(h, kT0 + 20s).empty());
  // Suspended: its refused requests raise nothing.
  h.key().record.status = KeyStatus::kSuspended;
  EXPECT_TRUE(run_loop(h, kT0 + 1min).empty());
  // Resumed, it loops again: suspended again, within repeat_after.
  h.key().record.status = KeyStatus::kActive;
  auto again = run_loop(h, kT0 + 10min);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].action, AlertAction::kSuspend);
}

TEST(AlertEngine, KeyStateIsForgottenAfterAnHourOfSilence) {
  Harness h;
  for (int i = 0; i < 10; ++i) h.send(h.request(kT0 + std::chrono::seconds(i)));
  // Two hours later the key's addresses are forgotten: its next address is its first.
  UsageEvent later = h.request(kT0 + 2h);
  later.client_address = "198.51.100.23";
  EXPECT_TRUE(of_rule(h.send(later), "new_address").empty());
  // Within the hour it is remembered.
  Harness recent;
  for (int i = 0; i < 10; ++i) recent.send(recent.request(kT0 + std::chrono::seconds(i)));
  later = recent.request(kT0 + 50min);
  later.client_address = "198.51.100.23";
  EXPECT_EQ(of_rule(recent.send(later), "new_address").size(), 1u);
}

}  // namespace
}  // namespace till
