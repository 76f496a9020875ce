// Benchmarks of what the monitor's worker does for every proxied request (src/monitor): store the
// usage event, update the metrics, run the alert rules. Reported per event; at 50,000 requests a
// second every microsecond here is 5 % of a core taken from the I/O threads.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
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

// A store holding four minutes of events, one a millisecond, for the read benchmarks. Removed
// with its directory at exit.
class StoredEvents {
 public:
  static constexpr int kStoredEvents = 240'000;
  static constexpr int64_t kFirstMs = 1'764'860'400'000;

  static StoredEvents& get() {
    static StoredEvents stored;
    return stored;
  }
  Store* store() { return store_.get(); }
  int64_t end_ms() const { return end_ms_; }
  ~StoredEvents() {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

 private:
  StoredEvents() {
    dir_ = (std::filesystem::temp_directory_path() / "till-bench-XXXXXX").string();
    if (::mkdtemp(dir_.data()) == nullptr) {
      dir_.clear();
      return;
    }
    auto store = open_sqlite_store(dir_ + "/till.db");
    if (!store) return;
    end_ms_ = kFirstMs;
    for (int appended = 0; appended < kStoredEvents; appended += kBatch) {
      std::vector<UsageEvent> events = bench_events(0);
      for (UsageEvent& event : events) event.at = from_unix_ms(end_ms_++);
      if (!(*store)->append_usage_events(events)) return;
    }
    store_ = std::move(*store);
  }
  std::string dir_;
  std::unique_ptr<Store> store_;
  int64_t end_ms_ = 0;
};

// One page of the newest events (arg 0), or of events a minute older than the newest (arg 1:
// the page after a cursor deep in the history).
void BM_StoreListUsageEvents(benchmark::State& state) {
  StoredEvents& stored = StoredEvents::get();
  if (stored.store() == nullptr) {
    state.SkipWithError("could not fill the store");
    return;
  }
  const UsageFilter all{.from = from_unix_ms(0), .to = from_unix_ms(stored.end_ms() + 1)};
  std::string cursor;
  if (state.range(0) == 1) {
    UsageFilter older = all;
    older.to = from_unix_ms(stored.end_ms() - 60'000);
    auto page = stored.store()->list_usage_events(older, "", 1);
    if (!page || !page->next_cursor) {
      state.SkipWithError("no cursor");
      return;
    }
    cursor = *page->next_cursor;
  }
  for (auto _ : state) {
    auto page = stored.store()->list_usage_events(all, cursor, 100);
    if (!page || page->events.size() != 100) state.SkipWithError("listing failed");
  }
}
BENCHMARK(BM_StoreListUsageEvents)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// A summary by minute of a range that starts and ends half-way through a minute: per-minute sums
// for the whole minutes, the events themselves for the two half minutes (30,000 each).
void BM_StoreUsageSummary(benchmark::State& state) {
  StoredEvents& stored = StoredEvents::get();
  if (stored.store() == nullptr) {
    state.SkipWithError("could not fill the store");
    return;
  }
  const UsageFilter range{.from = from_unix_ms(StoredEvents::kFirstMs + 30'000),
                          .to = from_unix_ms(StoredEvents::kFirstMs + 150'000)};
  for (auto _ : state) {
    auto summary = stored.store()->usage_summary(range, UsageBucket::kMinute, UsageGroup::kNone);
    if (!summary || summary->front().totals.requests != 120'000) {
      state.SkipWithError("summary failed");
    }
  }
}
BENCHMARK(BM_StoreUsageSummary)->Unit(benchmark::kMicrosecond);

void BM_MetricsObserve(benchmark::State& state) {
  Metrics metrics(PricingTable::builtin());
  const std::vector<UsageEvent> events = bench_events(0);
  for (auto _ : state) {
    metrics.observe(events);
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
