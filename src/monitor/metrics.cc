#include "monitor/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "provider/provider_table.h"

namespace till {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

constexpr std::string_view kOther = "other";

// Distinct free-form label values (alert rules, store operations) kept before "other".
constexpr size_t kMaxFreeLabels = 64;
// Raw model names remembered per provider; beyond this, names are resolved on every event.
constexpr size_t kMaxModelNamesPerProvider = 1024;

// 1-2.5-5 steps: readable `le` values, about 2.5x apart.
const Histogram::BucketBoundaries& request_buckets() {
  static const Histogram::BucketBoundaries buckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
      0.25,   0.5,     1,      2.5,   5,      10,    25,   60,    120,  300};
  return buckets;
}

const Histogram::BucketBoundaries& upstream_buckets() {
  static const Histogram::BucketBoundaries buckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                      1,      2.5,     5,      10,    25,     60};
  return buckets;
}

const Histogram::BucketBoundaries& store_buckets() {
  static const Histogram::BucketBoundaries buckets = {
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,     0.1,     0.25,   0.5,     1,      2.5,   5,      10};
  return buckets;
}

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

enum class Outcome { kForwarded, kRefused, kFailed };
constexpr std::array<std::string_view, 3> kOutcomeNames = {"forwarded", "refused", "failed"};

// "1xx" … "5xx", then "other".
constexpr std::array<std::string_view, 6> kStatusClassNames = {"1xx", "2xx", "3xx",
                                                               "4xx", "5xx", "other"};
size_t status_class(int status) {
  if (status >= 100 && status <= 599) return static_cast<size_t>(status / 100 - 1);
  return kStatusClassNames.size() - 1;
}

Outcome outcome_of(const UsageEvent& event) {
  if (event.error_code == "upstream_error" || event.error_code == "upstream_timeout") {
    return Outcome::kFailed;
  }
  if (!event.forwarded) return Outcome::kRefused;
  return event.error_code.empty() ? Outcome::kForwarded : Outcome::kFailed;
}

enum TokenKind : size_t { kInput, kCachedInput, kOutput, kReasoning, kUnmetered, kTokenKinds };
constexpr std::array<std::string_view, kTokenKinds> kTokenKindNames = {
    "input", "cached_input", "output", "reasoning", "unmetered"};

constexpr std::array<std::string_view, 5> kRefusalReasons = {"budget", "rate", "concurrency",
                                                             "scope", "status"};

// The refusal reason of a till error code, as an index into kRefusalReasons; -1 if none.
int refusal_reason(std::string_view error_code) {
  if (error_code == "limit_exhausted") return 0;
  if (error_code == "rate_limited") return 1;
  if (error_code == "concurrency_limited") return 2;
  if (error_code == "scope_denied") return 3;
  if (error_code == "key_revoked" || error_code == "key_expired" || error_code == "key_suspended") {
    return 4;
  }
  return -1;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct Metrics::Impl {
  explicit Impl(const PricingTable& pricing_table) : pricing(pricing_table) {
    for (const ProviderInfo& provider : all_providers()) provider_names.push_back(provider.name);
    provider_names.push_back(kOther);
    const size_t providers = provider_names.size();
    request_counters.resize(providers);
    request_durations.resize(providers);
    upstream_durations.resize(providers);
    first_byte_durations.resize(providers);
    model_names.resize(providers);
    for (const PricedModel& model : pricing.models()) model_ids.emplace(&model.price, model.id);

    // Series without labels, and the few fixed refusal reasons, exist from the start so that
    // rate() and absent() work before the first event.
    for (size_t i = 0; i < kRefusalReasons.size(); ++i) {
      refusals[i] = &refusals_family.Add({{"reason", std::string(kRefusalReasons[i])}});
    }
    auth_failures = &auth_failures_family.Add({});
    events_dropped = &events_dropped_family.Add({});
    active_connections = &active_connections_family.Add({});
    active_streams = &active_streams_family.Add({});
  }

  // The metric objects of one (provider, model): created on first use, then never removed.
  struct ModelSeries {
    std::array<Counter*, kTokenKinds> tokens{};
    Counter* spend = nullptr;
  };

  // Index into provider_names; the last one is "other".
  size_t provider_index(std::string_view name) const {
    for (size_t i = 0; i + 1 < provider_names.size(); ++i) {
      if (provider_names[i] == name) return i;
    }
    return provider_names.size() - 1;
  }

  // REQUIRES: mu held.
  Counter& request_counter(size_t provider, size_t status, Outcome outcome) {
    Counter*& counter = request_counters[provider][status][static_cast<size_t>(outcome)];
    if (counter == nullptr) {
      counter = &requests_family.Add(
          {{"provider", std::string(provider_names[provider])},
           {"status_class", std::string(kStatusClassNames[status])},
           {"outcome", std::string(kOutcomeNames[static_cast<size_t>(outcome)])}});
    }
    return *counter;
  }

  // REQUIRES: mu held.
  Histogram& histogram(std::vector<Histogram*>& cache, Family<Histogram>& family, size_t provider,
                       const Histogram::BucketBoundaries& buckets) {
    Histogram*& h = cache[provider];
    if (h == nullptr)
      h = &family.Add({{"provider", std::string(provider_names[provider])}}, buckets);
    return *h;
  }

  // The pricing table's id for `model` at `provider`, or "other".
  std::string_view model_label(size_t provider, std::string_view model) const {
    if (provider + 1 == provider_names.size()) return kOther;
    const ModelPrice* price = pricing.find(provider_names[provider], model);
    if (price == nullptr) return kOther;
    const auto it = model_ids.find(price);
    return it == model_ids.end() ? kOther : std::string_view(it->second);
  }

  // REQUIRES: mu held.
  ModelSeries& model_series(size_t provider, std::string_view model) {
    auto& names = model_names[provider];
    if (const auto it = names.find(model); it != names.end()) return *it->second;
    const std::string_view label = model_label(provider, model);
    auto [it, inserted] = series.try_emplace(std::pair(provider, std::string(label)));
    ModelSeries& s = it->second;
    if (inserted) {
      const std::string provider_name(provider_names[provider]);
      for (size_t kind = 0; kind < kTokenKinds; ++kind) {
        s.tokens[kind] = &tokens_family.Add({{"provider", provider_name},
                                             {"model", std::string(label)},
                                             {"kind", std::string(kTokenKindNames[kind])}});
      }
      s.spend = &spend_family.Add({{"provider", provider_name}, {"model", std::string(label)}});
    }
    // Client-chosen names are only remembered up to a bound, so junk cannot grow the cache.
    if (names.size() < kMaxModelNamesPerProvider) names.emplace(std::string(model), &s);
    return s;
  }

  // A free-form label value, bounded to kMaxFreeLabels distinct values. REQUIRES: mu held.
  template <typename T, typename... Args>
  T& free_label(std::unordered_map<std::string, T*, StringHash, std::equal_to<>>& cache,
                Family<T>& family, const char* label, std::string_view value, Args&&... args) {
    if (const auto it = cache.find(value); it != cache.end()) return *it->second;
    if (cache.size() >= kMaxFreeLabels) {
      if (const auto it = cache.find(kOther); it != cache.end()) return *it->second;
      value = kOther;
    }
    T& metric = family.Add({{label, std::string(value)}}, std::forward<Args>(args)...);
    cache.emplace(std::string(value), &metric);
    return metric;
  }

  const PricingTable& pricing;
  // Label values and pointers into the registry's families: families own their metrics and never
  // move them, and nothing is ever removed, so the pointers stay valid for the registry's life.
  std::vector<std::string_view> provider_names;  // all_providers(), then "other"
  std::unordered_map<const ModelPrice*, std::string> model_ids;

  prometheus::Registry registry;
  Family<Counter>& requests_family =
      prometheus::BuildCounter()
          .Name("till_requests_total")
          .Help(
              "Requests on the proxy routes, by provider, response status class and outcome "
              "(forwarded, refused, failed).")
          .Register(registry);
  Family<Histogram>& request_duration_family =
      prometheus::BuildHistogram()
          .Name("till_request_duration_seconds")
          .Help("Time from receiving a request to answering it in full.")
          .Register(registry);
  Family<Histogram>& upstream_duration_family =
      prometheus::BuildHistogram()
          .Name("till_upstream_duration_seconds")
          .Help("Time from forwarding a request to the provider's response head.")
          .Register(registry);
  Family<Histogram>& first_byte_family =
      prometheus::BuildHistogram()
          .Name("till_stream_first_byte_seconds")
          .Help("Streaming requests: time from forwarding to the provider's first body byte.")
          .Register(registry);
  Family<Counter>& tokens_family =
      prometheus::BuildCounter()
          .Name("till_tokens_total")
          .Help(
              "Tokens charged to keys, by provider, model and kind (input excludes cached_input, "
              "output excludes reasoning).")
          .Register(registry);
  Family<Counter>& spend_family = prometheus::BuildCounter()
                                      .Name("till_spend_usd_total")
                                      .Help("Spend charged to keys, in US dollars.")
                                      .Register(registry);
  Family<Counter>& refusals_family =
      prometheus::BuildCounter()
          .Name("till_limit_refusals_total")
          .Help("Requests refused by a key's limits, scope or status, by reason.")
          .Register(registry);
  Family<Counter>& auth_failures_family =
      prometheus::BuildCounter()
          .Name("till_auth_failures_total")
          .Help("Requests refused for a missing, malformed or unknown key.")
          .Register(registry);
  Family<Histogram>& store_family = prometheus::BuildHistogram()
                                        .Name("till_store_operation_duration_seconds")
                                        .Help("Duration of store operations, by operation.")
                                        .Register(registry);
  Family<Counter>& alerts_family = prometheus::BuildCounter()
                                       .Name("till_alerts_total")
                                       .Help("Alerts raised, by rule.")
                                       .Register(registry);
  Family<Counter>& events_dropped_family =
      prometheus::BuildCounter()
          .Name("till_usage_events_dropped_total")
          .Help("Usage events dropped because the monitor could not keep up.")
          .Register(registry);
  Family<Gauge>& active_connections_family = prometheus::BuildGauge()
                                                 .Name("till_active_connections")
                                                 .Help("Client connections open at scrape time.")
                                                 .Register(registry);
  Family<Gauge>& active_streams_family =
      prometheus::BuildGauge()
          .Name("till_active_streams")
          .Help("Streaming responses in progress at scrape time.")
          .Register(registry);

  std::array<Counter*, kRefusalReasons.size()> refusals{};
  Counter* auth_failures = nullptr;
  Counter* events_dropped = nullptr;
  Gauge* active_connections = nullptr;
  Gauge* active_streams = nullptr;

  // Guards the caches below (not the metrics: prometheus-cpp updates those atomically) and
  // live_source. One uncontended lock per event; Family::Add only on a label set's first use.
  mutable std::mutex mu;
  using RequestCounters =
      std::array<std::array<Counter*, kOutcomeNames.size()>, kStatusClassNames.size()>;
  std::vector<RequestCounters> request_counters;  // by provider index
  std::vector<Histogram*> request_durations;
  std::vector<Histogram*> upstream_durations;
  std::vector<Histogram*> first_byte_durations;
  std::map<std::pair<size_t, std::string>, ModelSeries> series;  // (provider, model label)
  // Model names as requests spell them → their series, per provider index.
  std::vector<std::unordered_map<std::string, ModelSeries*, StringHash, std::equal_to<>>>
      model_names;
  std::unordered_map<std::string, Counter*, StringHash, std::equal_to<>> alerts;
  std::unordered_map<std::string, Histogram*, StringHash, std::equal_to<>> store_operations;
  std::function<LiveCounts()> live_source;
};

Metrics::Metrics(const PricingTable& pricing) : impl_(std::make_unique<Impl>(pricing)) {}

Metrics::~Metrics() = default;

void Metrics::observe(std::span<const UsageEvent> events) {
  Impl& m = *impl_;
  // One lock for the batch: the series are looked up under it (their maps grow), and the
  // increments, atomic anyway, stay inside rather than take it once per event.
  std::lock_guard lock(m.mu);
  for (const UsageEvent& event : events) {
    const size_t provider = m.provider_index(event.provider);
    const Outcome outcome = outcome_of(event);
    const Usage& usage = event.usage;
    const std::array<int64_t, kTokenKinds> tokens = {
        usage.input_tokens - usage.cached_input_tokens, usage.cached_input_tokens,
        usage.output_tokens - usage.reasoning_tokens, usage.reasoning_tokens,
        usage.unmetered_tokens};
    bool charged = usage.spend.nanos() > 0;
    for (int64_t n : tokens) charged = charged || n > 0;
    const bool upstream = event.forwarded && event.upstream_status != 0;
    const bool first_byte =
        event.forwarded && event.streaming && event.time_to_first_byte.count() > 0;

    m.request_counter(provider, status_class(event.status), outcome).Increment();
    m.histogram(m.request_durations, m.request_duration_family, provider, request_buckets())
        .Observe(seconds(event.latency));
    if (upstream) {
      m.histogram(m.upstream_durations, m.upstream_duration_family, provider, upstream_buckets())
          .Observe(seconds(event.upstream_latency));
    }
    if (first_byte) {
      m.histogram(m.first_byte_durations, m.first_byte_family, provider, upstream_buckets())
          .Observe(seconds(event.time_to_first_byte));
    }
    if (charged) {
      Impl::ModelSeries* model = &m.model_series(provider, event.model);
      for (size_t kind = 0; kind < kTokenKinds; ++kind) {
        if (tokens[kind] > 0) model->tokens[kind]->Increment(static_cast<double>(tokens[kind]));
      }
      if (usage.spend.nanos() > 0) {
        model->spend->Increment(static_cast<double>(usage.spend.nanos()) /
                                static_cast<double>(Money::kNanosPerDollar));
      }
    }
    if (event.error_code == "invalid_api_key") {
      m.auth_failures->Increment();
    } else if (const int reason = refusal_reason(event.error_code); reason >= 0) {
      m.refusals[static_cast<size_t>(reason)]->Increment();
    }
  }
}

void Metrics::alert_raised(std::string_view rule) {
  Counter* counter = nullptr;
  {
    std::lock_guard lock(impl_->mu);
    counter = &impl_->free_label(impl_->alerts, impl_->alerts_family, "rule", rule);
  }
  counter->Increment();
}

void Metrics::events_dropped(int64_t count) {
  if (count > 0) impl_->events_dropped->Increment(static_cast<double>(count));
}

void Metrics::observe_store_operation(std::string_view operation,
                                      std::chrono::nanoseconds duration) {
  Histogram* histogram = nullptr;
  {
    std::lock_guard lock(impl_->mu);
    histogram = &impl_->free_label(impl_->store_operations, impl_->store_family, "operation",
                                   operation, store_buckets());
  }
  histogram->Observe(seconds(duration));
}

void Metrics::set_live_counts(std::function<LiveCounts()> source) {
  std::lock_guard lock(impl_->mu);
  impl_->live_source = std::move(source);
}

std::string Metrics::exposition() const {
  std::function<LiveCounts()> source;
  {
    std::lock_guard lock(impl_->mu);
    source = impl_->live_source;
  }
  // Called outside the lock: the source may take the transport's own locks.
  const LiveCounts live = source ? source() : LiveCounts{};
  impl_->active_connections->Set(static_cast<double>(live.connections));
  impl_->active_streams->Set(static_cast<double>(live.streams));
  return prometheus::TextSerializer().Serialize(impl_->registry.Collect());
}

}  // namespace till
