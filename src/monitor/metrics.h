// Metrics: till's Prometheus metrics (GET /metrics, text exposition format 0.0.4), on
// prometheus-cpp. Label values are bounded; never key ids.
//
//   till_requests_total{provider,status_class,outcome}        counter
//   till_request_duration_seconds{provider}                   histogram received → answered
//   till_upstream_duration_seconds{provider}                  histogram forwarded → response head
//   till_stream_first_byte_seconds{provider}                  histogram forwarded → first byte,
//   streams till_tokens_total{provider,model,kind}                    counter
//   till_spend_usd_total{provider,model}                      counter
//   till_limit_refusals_total{reason}                         counter
//   till_auth_failures_total                                  counter  invalid_api_key
//   till_store_operation_duration_seconds{operation}          histogram
//   till_alerts_total{rule}                                   counter
//   till_usage_events_dropped_total                           counter
//   till_active_connections, till_active_streams               gauge    read at scrape time
//
// Label values:
//   provider      a name from the provider table; an unknown or empty one is "other".
//   model         the pricing table's id of the model the request named, aliases and version
//                 suffixes resolved ("gpt-4o-2024-08-06" → "gpt-4o"); unpriced models are "other".
//   status_class  "1xx" … "5xx"; "other" when there was no status.
//   outcome       forwarded: reached the provider (any status); failed: upstream_error or
//                 upstream_timeout, or another till error after forwarding; refused: answered by
//                 till without forwarding.
//   kind          input, cached_input, output, reasoning, unmetered. Disjoint: input excludes
//                 cached_input and output excludes reasoning, so their sum is what max_tokens
//                 counts.
//   reason        budget (limit_exhausted: the event does not say which limit), rate,
//                 concurrency, scope, status (key revoked, expired or suspended).
//   rule, operation  as given, at most 64 distinct values each; later new ones are "other".
//
// The pricing table must outlive the Metrics.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "provider/pricing.h"
#include "till/usage_event.h"

namespace till {

class Metrics {
 public:
  // What the transport reports at scrape time.
  struct LiveCounts {
    int64_t connections = 0;
    int64_t streams = 0;
  };

  explicit Metrics(const PricingTable& pricing);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Counts requests (requests, durations, tokens, spend, refusals, auth failures): a batch of
  // events under one lock, or one.
  void observe(std::span<const UsageEvent> events);
  void observe(const UsageEvent& event) { observe(std::span(&event, 1)); }

  void alert_raised(std::string_view rule);
  void events_dropped(int64_t count);
  void observe_store_operation(std::string_view operation, std::chrono::nanoseconds duration);

  // Where the gauges of live connections and streams come from (called at scrape time).
  void set_live_counts(std::function<LiveCounts()> source);

  // The exposition of every metric.
  std::string exposition() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace till
