// Benchmarks of what the monitor's worker does for every proxied request (src/monitor): store the
// usage event, update the metrics, run the alert rules. Reported per event; at 50,000 requests a
// second every microsecond here is 5 % of a core taken from the I/O threads.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "monitor/alert_engine.h"
#include "monitor/metrics.h"
#include "provider/pricing.h"
#include "till/store.h"

namespace till {
namespace {

constexpr int kBatch = 1024;

// What proxy-bench sends: one key, one model, 12 + 3 tokens, 200s.
std::vector<UsageEvent> bench_events(int64_t first_ms) {
  std::vector<UsageEvent> events(kBatch);
  for (int i = 0; i < kBatch; ++i) {
    UsageEvent& e = events[static_cast<size_t>(i)];
    e.at = from_unix_ms(first_ms + i / 50);  // 50,000 a second
    e.key_id = "key_PQm56eRPobeefZVt";
    e.provider = "openai";
    e.model = "gpt-4o-mini";
    e.status = 200;
    e.forwarded = true;
    e.upstream_status = 200;
    e.usage = Usage{
        .requests = 1, .input_tokens = 12, .output_tokens = 3, .spend = Money::from_nanos(3600)};
    e.latency = std::chrono::microseconds(450);
    e.upstream_latency = std::chrono::microseconds(300);
    e.client_address = "127.0.0.1";
    e.body_hash = 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(i);
  }
  return events;
}

void BM_StoreAppendUsageEvents(benchmark::State& state) {
  std::string dir = (std::filesystem::temp_directory_path() / "till-bench-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  auto store = open_sqlite_store(dir + "/till.db");
  if (!store) {
    state.SkipWithError(store.error().message.c_str());
    return;
  }
  int64_t ms = 1'764'860'400'000;
  const size_t per_transaction = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<UsageEvent> events = bench_events(ms);
    ms += kBatch / 50;
    state.ResumeTiming();
    for (size_t first = 0; first < events.size(); first += per_transaction) {
      auto stored =
          (*store)->append_usage_events(std::span(events).subspan(first, per_transaction));
      if (!stored) state.SkipWithError(stored.error().message.c_str());
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  store->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_StoreAppendUsageEvents)->Arg(256)->Arg(1024)->Unit(benchmark::kMicrosecond);

void BM_MetricsObserve(benchmark::State& state) {
  Metrics metrics(PricingTable::builtin());
  const std::vector<UsageEvent> events = bench_events(0);
  for (auto _ : state) {
    for (const UsageEvent& event : events) metrics.observe(event);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_MetricsObserve)->Unit(benchmark::kMicrosecond);

void BM_AlertEngineObserve(benchmark::State& state) {
  AlertEngine engine(AlertSettings{}, PricingTable::builtin());
  KeySnapshot key;
  key.record.id = "key_PQm56eRPobeefZVt";
  key.record.provider = "openai";
  key.record.limits.max_requests = 1'000'000'000;
  key.record.limits.max_spend = Money::from_nanos(1'000'000'000'000'000);
  int64_t ms = 1'764'860'400'000;
  for (auto _ : state) {
    state.PauseTiming();
    const std::vector<UsageEvent> events = bench_events(ms);
    ms += kBatch / 50;
    state.ResumeTiming();
    for (const UsageEvent& event : events) {
      ++key.record.used.requests;
      benchmark::DoNotOptimize(engine.observe(event, &key));
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_AlertEngineObserve)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace till
