#include "monitor/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "provider/pricing.h"

namespace till {
namespace {

using std::chrono::microseconds;
using Labels = std::map<std::string, std::string>;

// One sample line of the text exposition format: name{labels} value.
struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

// The exposition, parsed by a deliberately small parser that fails the test on lines it does not
// understand, so a format change cannot silently pass.
struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // family → counter, gauge, histogram, …
  std::map<std::string, std::string> helps;

  static Exposition parse(const std::string& text) {
    Exposition out;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      if (line.starts_with("# TYPE ") || line.starts_with("# HELP ")) {
        const std::string rest = line.substr(7);
        const size_t space = rest.find(' ');
        EXPECT_NE(space, std::string::npos) << line;
        (line[2] == 'T' ? out.types : out.helps)[rest.substr(0, space)] = rest.substr(space + 1);
        continue;
      }
      EXPECT_FALSE(line.starts_with("#")) << "unexpected comment: " << line;
      Sample sample;
      size_t i = 0;
      while (i < line.size() && line[i] != '{' && line[i] != ' ') sample.name += line[i++];
      if (i < line.size() && line[i] == '{') {
        ++i;
        while (i < line.size() && line[i] != '}') {
          const size_t eq = line.find("=\"", i);
          EXPECT_NE(eq, std::string::npos) << line;
          if (eq == std::string::npos) break;
          std::string key = line.substr(i, eq - i);
          std::string value;
          for (i = eq + 2; i < line.size() && line[i] != '"'; ++i) {
            if (line[i] == '\\' && i + 1 < line.size()) ++i;
            value += line[i];
          }
          ++i;  // closing quote
          if (i < line.size() && line[i] == ',') ++i;
          sample.labels[key] = value;
        }
        ++i;  // closing brace
      }
      EXPECT_TRUE(i < line.size() && line[i] == ' ') << line;
      const std::string value = line.substr(i + 1);
      char* end = nullptr;
      sample.value = std::strtod(value.c_str(), &end);
      EXPECT_TRUE(end != nullptr && *end == '\0') << "no single value: " << line;
      out.samples.push_back(std::move(sample));
    }
    return out;
  }

  // The value of the one sample with this name and exactly these labels.
  std::optional<double> value(std::string_view name, const Labels& labels = {}) const {
    std::optional<double> found;
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) {
        EXPECT_FALSE(found.has_value()) << "duplicate sample " << name;
        found = s.value;
      }
    }
    return found;
  }

  std::vector<const Sample*> named(std::string_view name) const {
    std::vector<const Sample*> out;
    for (const Sample& s : samples) {
      if (s.name == name) out.push_back(&s);
    }
    return out;
  }
};

UsageEvent forwarded(std::string provider, std::string model, int status) {
  UsageEvent e;
  e.key_id = "key_AAAAAAAAAAAAAAAA";
  e.provider = std::move(provider);
  e.model = std::move(model);
  e.status = status;
  e.forwarded = true;
  e.upstream_status = status;
  e.usage.requests = 1;
  e.latency = microseconds(250'000);
  e.upstream_latency = microseconds(200'000);
  return e;
}

UsageEvent refused(std::string provider, std::string error_code, int status) {
  UsageEvent e;
  e.key_id = "key_BBBBBBBBBBBBBBBB";
  e.provider = std::move(provider);
  e.model = "gpt-4o-mini";
  e.status = status;
  e.error_code = std::move(error_code);
  e.latency = microseconds(300);
  return e;
}

class MetricsTest : public ::testing::Test {
 protected:
  Exposition scrape() const { return Exposition::parse(metrics_.exposition()); }

  Metrics metrics_{PricingTable::builtin()};
};

TEST_F(MetricsTest, CountsRequestsByProviderStatusClassAndOutcome) {
  metrics_.observe(forwarded("openai", "gpt-4o-mini", 200));
  metrics_.observe(forwarded("openai", "gpt-4o-mini", 200));
  metrics_.observe(forwarded("openai", "gpt-4o-mini", 429));  // the provider's 429: still forwarded
  metrics_.observe(refused("openai", "limit_exhausted", 402));
  UsageEvent failed = forwarded("anthropic", "claude-x", 502);
  failed.error_code = "upstream_error";
  failed.upstream_status = 0;
  metrics_.observe(failed);
  UsageEvent unreachable = refused("anthropic", "upstream_timeout", 504);  // never reached it
  metrics_.observe(unreachable);

  const Exposition x = scrape();
  auto requests = [&](const char* provider, const char* status_class, const char* outcome) {
    return x.value("till_requests_total",
                   {{"provider", provider}, {"status_class", status_class}, {"outcome", outcome}});
  };
  EXPECT_EQ(requests("openai", "2xx", "forwarded"), 2);
  EXPECT_EQ(requests("openai", "4xx", "forwarded"), 1);
  EXPECT_EQ(requests("openai", "4xx", "refused"), 1);
  EXPECT_EQ(requests("anthropic", "5xx", "failed"), 2);
  EXPECT_EQ(x.named("till_requests_total").size(), 4u) << "no series for unseen label sets";
}

TEST_F(MetricsTest, TypeLinesAndUnitsInNames) {
  // prometheus-cpp leaves out families without series, so this event touches every one.
  UsageEvent e = forwarded("openai", "gpt-4o-mini", 200);
  e.streaming = true;
  e.time_to_first_byte = microseconds(1000);
  e.usage.input_tokens = 10;
  e.usage.spend = Money::from_nanos(1500);
  metrics_.observe(e);
  metrics_.observe_store_operation("settle", std::chrono::microseconds(150));
  metrics_.alert_raised("loop");
  const Exposition x = scrape();

  const std::map<std::string, std::string> expected = {
      {"till_requests_total", "counter"},
      {"till_request_duration_seconds", "histogram"},
      {"till_upstream_duration_seconds", "histogram"},
      {"till_stream_first_byte_seconds", "histogram"},
      {"till_tokens_total", "counter"},
      {"till_spend_usd_total", "counter"},
      {"till_limit_refusals_total", "counter"},
      {"till_auth_failures_total", "counter"},
      {"till_store_operation_duration_seconds", "histogram"},
      {"till_alerts_total", "counter"},
      {"till_usage_events_dropped_total", "counter"},
      {"till_active_connections", "gauge"},
      {"till_active_streams", "gauge"},
  };
  EXPECT_EQ(x.types, expected);
  for (const auto& [family, type] : x.types) {
    EXPECT_TRUE(x.helps.contains(family) && !x.helps.at(family).empty()) << family;
    if (type == "counter") {
      EXPECT_TRUE(family.ends_with("_total")) << family;
    } else {
      EXPECT_FALSE(family.ends_with("_total")) << family;
    }
    if (type == "histogram") {
      EXPECT_TRUE(family.ends_with("_seconds")) << family;
    }
  }
  EXPECT_TRUE(x.types.contains("till_spend_usd_total"));
  // Every sample belongs to a declared family (histograms through their suffixes).
  for (const Sample& s : x.samples) {
    std::string family = s.name;
    for (std::string_view suffix : {"_bucket", "_count", "_sum"}) {
      if (!x.types.contains(family) && family.ends_with(suffix)) {
        family.resize(family.size() - suffix.size());
      }
    }
    EXPECT_TRUE(x.types.contains(family)) << s.name;
  }
}

TEST_F(MetricsTest, HistogramBucketsCountAndSumAgree) {
  UsageEvent fast = forwarded("openai", "gpt-4o-mini", 200);
  fast.latency = microseconds(150);  // between the 100 µs and 250 µs bounds
  UsageEvent slow = forwarded("openai", "gpt-4o-mini", 200);
  slow.latency = microseconds(30'000'000);
  slow.streaming = true;
  slow.time_to_first_byte = microseconds(800'000);
  metrics_.observe(fast);
  metrics_.observe(slow);
  metrics_.observe(refused("openai", "rate_limited", 429));  // 300 µs, nothing upstream
  metrics_.observe_store_operation("reserve", std::chrono::microseconds(40));
  metrics_.observe_store_operation("reserve", std::chrono::milliseconds(3));
  const Exposition x = scrape();

  const Labels openai = {{"provider", "openai"}};
  EXPECT_EQ(x.value("till_request_duration_seconds_count", openai), 3);
  EXPECT_NEAR(*x.value("till_request_duration_seconds_sum", openai), 0.000150 + 30 + 0.000300,
              1e-9);
  EXPECT_EQ(x.value("till_upstream_duration_seconds_count", openai), 2);
  EXPECT_NEAR(*x.value("till_upstream_duration_seconds_sum", openai), 0.4, 1e-9);
  EXPECT_EQ(x.value("till_stream_first_byte_seconds_count", openai), 1);
  EXPECT_NEAR(*x.value("till_stream_first_byte_seconds_sum", openai), 0.8, 1e-9);
  EXPECT_EQ(x.value("till_store_operation_duration_seconds_count", {{"operation", "reserve"}}), 2);

  // The smallest bucket is 100 µs and 60 s has one.
  EXPECT_EQ(
      x.value("till_request_duration_seconds_bucket", {{"provider", "openai"}, {"le", "0.0001"}}),
      0);
  EXPECT_EQ(
      x.value("till_request_duration_seconds_bucket", {{"provider", "openai"}, {"le", "0.00025"}}),
      1);
  EXPECT_EQ(x.value("till_request_duration_seconds_bucket", {{"provider", "openai"}, {"le", "25"}}),
            2);
  EXPECT_EQ(x.value("till_request_duration_seconds_bucket", {{"provider", "openai"}, {"le", "60"}}),
            3);

  // For every histogram series: buckets never decrease with le, and +Inf equals _count.
  for (const auto& [family, type] : x.types) {
    if (type != "histogram") continue;
    std::map<Labels, std::vector<std::pair<double, double>>> buckets;  // series → (le, count)
    for (const Sample* s : x.named(family + "_bucket")) {
      Labels series = s->labels;
      const std::string le = series.at("le");
      series.erase("le");
      buckets[series].emplace_back(le == "+Inf" ? HUGE_VAL : std::stod(le), s->value);
    }
    EXPECT_EQ(buckets.size(), x.named(family + "_count").size()) << family;
    for (auto& [series, points] : buckets) {
      std::sort(points.begin(), points.end());
      for (size_t i = 1; i < points.size(); ++i) {
        EXPECT_LE(points[i - 1].second, points[i].second) << family;
      }
      ASSERT_EQ(points.back().first, HUGE_VAL) << family << " has no +Inf bucket";
      EXPECT_EQ(points.back().second, x.value(family + "_count", series)) << family;
      EXPECT_TRUE(x.value(family + "_sum", series).has_value()) << family;
    }
  }
}

TEST_F(MetricsTest, TokensAndSpendByCanonicalModelWithDisjointKinds) {
  UsageEvent e = forwarded("openai", "gpt-4o-mini-2024-07-18", 200);  // an alias
  e.usage.input_tokens = 100;
  e.usage.cached_input_tokens = 30;
  e.usage.output_tokens = 50;
  e.usage.reasoning_tokens = 20;
  e.usage.spend = Money::from_nanos(1'500'000'000);
  metrics_.observe(e);
  UsageEvent unmetered = forwarded("openai", "gpt-4o-mini", 200);
  unmetered.usage.unmetered_tokens = 7;
  unmetered.usage.spend = Money::from_nanos(250'000'000);
  metrics_.observe(unmetered);
  const Exposition x = scrape();

  auto tokens = [&](const char* kind) {
    return x.value("till_tokens_total",
                   {{"provider", "openai"}, {"model", "gpt-4o-mini"}, {"kind", kind}});
  };
  EXPECT_EQ(tokens("input"), 70);
  EXPECT_EQ(tokens("cached_input"), 30);
  EXPECT_EQ(tokens("output"), 30);
  EXPECT_EQ(tokens("reasoning"), 20);
  EXPECT_EQ(tokens("unmetered"), 7);
  EXPECT_NEAR(*x.value("till_spend_usd_total", {{"provider", "openai"}, {"model", "gpt-4o-mini"}}),
              1.75, 1e-12);
  for (const Sample* s : x.named("till_tokens_total")) {
    EXPECT_EQ(s->labels.at("model"), "gpt-4o-mini") << "the alias is not a label value";
  }
}

TEST_F(MetricsTest, UnknownModelsAndProvidersAreOther) {
  UsageEvent unknown_model = forwarded("openai", "my-finetune-7f3a9c", 200);
  unknown_model.usage.input_tokens = 5;
  metrics_.observe(unknown_model);
  UsageEvent other_provider = forwarded("acme", "gpt-4o-mini", 200);
  other_provider.usage.input_tokens = 3;
  metrics_.observe(other_provider);
  UsageEvent no_provider = refused("", "invalid_api_key", 401);
  metrics_.observe(no_provider);
  const std::string text = metrics_.exposition();
  const Exposition x = Exposition::parse(text);

  EXPECT_EQ(
      x.value("till_tokens_total", {{"provider", "openai"}, {"model", "other"}, {"kind", "input"}}),
      5);
  EXPECT_EQ(
      x.value("till_tokens_total", {{"provider", "other"}, {"model", "other"}, {"kind", "input"}}),
      3);
  EXPECT_EQ(x.value("till_requests_total",
                    {{"provider", "other"}, {"status_class", "2xx"}, {"outcome", "forwarded"}}),
            1);
  EXPECT_EQ(x.value("till_requests_total",
                    {{"provider", "other"}, {"status_class", "4xx"}, {"outcome", "refused"}}),
            1);
  EXPECT_EQ(text.find("my-finetune"), std::string::npos);
  EXPECT_EQ(text.find("acme"), std::string::npos);
}

TEST_F(MetricsTest, RefusalReasonsAndAuthFailures) {
  const std::vector<std::pair<std::string, int>> refusals = {
      {"limit_exhausted", 402},     {"limit_exhausted", 402}, {"rate_limited", 429},
      {"concurrency_limited", 429}, {"scope_denied", 403},    {"key_revoked", 403},
      {"key_expired", 403},         {"key_suspended", 403},   {"invalid_api_key", 401},
      {"invalid_request", 400},
  };
  for (const auto& [code, status] : refusals) metrics_.observe(refused("openai", code, status));
  const Exposition x = scrape();

  EXPECT_EQ(x.value("till_limit_refusals_total", {{"reason", "budget"}}), 2);
  EXPECT_EQ(x.value("till_limit_refusals_total", {{"reason", "rate"}}), 1);
  EXPECT_EQ(x.value("till_limit_refusals_total", {{"reason", "concurrency"}}), 1);
  EXPECT_EQ(x.value("till_limit_refusals_total", {{"reason", "scope"}}), 1);
  EXPECT_EQ(x.value("till_limit_refusals_total", {{"reason", "status"}}), 3);
  EXPECT_EQ(x.named("till_limit_refusals_total").size(), 5u);
  EXPECT_EQ(x.value("till_auth_failures_total"), 1);
  EXPECT_EQ(x.value("till_requests_total",
                    {{"provider", "openai"}, {"status_class", "4xx"}, {"outcome", "refused"}}),
            10);
}

TEST_F(MetricsTest, FixedSeriesExistBeforeAnyEvent) {
  const Exposition x = scrape();
  EXPECT_EQ(x.value("till_auth_failures_total"), 0);
  EXPECT_EQ(x.value("till_usage_events_dropped_total"), 0);
  EXPECT_EQ(x.value("till_limit_refusals_total", {{"reason", "budget"}}), 0);
  EXPECT_EQ(x.value("till_active_connections"), 0) << "no source: zero";
  EXPECT_TRUE(x.named("till_requests_total").empty());
}

TEST_F(MetricsTest, NoKeyIdAnywhereInTheOutput) {
  const std::string key_id = "key_Zq8WmT3xKpR2vLn7";
  UsageEvent e = forwarded("openai", "gpt-4o-mini", 200);
  e.key_id = key_id;
  e.usage.input_tokens = 1;
  metrics_.observe(e);
  UsageEvent bad = refused("openai", "invalid_api_key", 401);
  bad.key_id = key_id;
  metrics_.observe(bad);
  metrics_.alert_raised("stale_token");
  const std::string text = metrics_.exposition();
  EXPECT_EQ(text.find(key_id), std::string::npos);
  EXPECT_EQ(text.find("Zq8WmT3x"), std::string::npos);
  for (const Sample& s : Exposition::parse(text).samples) {
    for (const auto& [label, value] : s.labels) {
      EXPECT_FALSE(value.starts_with("key_")) << s.name << " " << label;
    }
  }
}

TEST_F(MetricsTest, LiveGaugesComeFromTheSourceAtScrapeTime) {
  std::atomic<int64_t> connections{3};
  std::atomic<int> calls{0};
  metrics_.set_live_counts([&] {
    ++calls;
    return Metrics::LiveCounts{connections.load(), 2};
  });
  Exposition x = scrape();
  EXPECT_EQ(x.value("till_active_connections"), 3);
  EXPECT_EQ(x.value("till_active_streams"), 2);
  connections = 41;
  x = scrape();
  EXPECT_EQ(x.value("till_active_connections"), 41);
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(MetricsTest, AlertsDroppedEventsAndStoreOperations) {
  metrics_.alert_raised("loop");
  metrics_.alert_raised("loop");
  metrics_.alert_raised("budget_threshold");
  metrics_.events_dropped(5);
  metrics_.events_dropped(0);
  metrics_.events_dropped(-3);  // ignored: counters only go up
  const Exposition x = scrape();
  EXPECT_EQ(x.value("till_alerts_total", {{"rule", "loop"}}), 2);
  EXPECT_EQ(x.value("till_alerts_total", {{"rule", "budget_threshold"}}), 1);
  EXPECT_EQ(x.value("till_usage_events_dropped_total"), 5);
}

TEST_F(MetricsTest, FreeFormLabelsAreBounded) {
  for (int i = 0; i < 200; ++i) {
    metrics_.alert_raised("rule_" + std::to_string(i));
    metrics_.observe_store_operation("op_" + std::to_string(i), std::chrono::microseconds(1));
  }
  const Exposition x = scrape();
  const auto alerts = x.named("till_alerts_total");
  EXPECT_LE(alerts.size(), 65u);
  EXPECT_EQ(x.value("till_alerts_total", {{"rule", "other"}}), 200 - 64);
  EXPECT_LE(x.named("till_store_operation_duration_seconds_count").size(), 65u);
  EXPECT_EQ(x.value("till_store_operation_duration_seconds_count", {{"operation", "other"}}),
            200 - 64);
}

TEST_F(MetricsTest, ConcurrentObserversAndScrapes) {
  constexpr int kPerThread = 20'000;
  std::atomic<bool> stop{false};
  std::thread scraper([&] {
    while (!stop) Exposition::parse(metrics_.exposition());
  });
  std::vector<std::thread> observers;
  for (int t = 0; t < 2; ++t) {
    observers.emplace_back([&] {
      UsageEvent e = forwarded("openai", "gpt-4o-mini", 200);
      e.usage.input_tokens = 1;
      for (int i = 0; i < kPerThread; ++i) metrics_.observe(e);
    });
  }
  for (std::thread& t : observers) t.join();
  stop = true;
  scraper.join();
  const Exposition x = scrape();
  EXPECT_EQ(x.value("till_requests_total",
                    {{"provider", "openai"}, {"status_class", "2xx"}, {"outcome", "forwarded"}}),
            2 * kPerThread);
  EXPECT_EQ(x.value("till_tokens_total",
                    {{"provider", "openai"}, {"model", "gpt-4o-mini"}, {"kind", "input"}}),
            2 * kPerThread);
}

}  // namespace
}  // namespace till
