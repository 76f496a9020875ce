// SqliteStore: usage events (alerts and rotation reminders are in sqlite_monitoring.cc; keys,
// budgets and credentials in sqlite_store.cc). Schema: the usage migrations in migrations.cc.
//
// Events are kept in blocks (usage_event_codec.h), one row of usage_event_blocks for up to
// kMaxBlockEvents events appended together, so that storing an event costs a share of one row
// and of one index entry; each append also upserts the per-minute sums of usage_minutes. Every
// read is a time range: the blocks that may hold events of [from, to] are found through the
// index on max_at_ms, and are decoded and filtered here. A summary reads whole minutes from
// usage_minutes and decodes blocks only for the partial minutes at its ends.
#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <span>
#include <utility>

#include "store/sqlite/list_cursor.h"
#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/usage_event_codec.h"

namespace till::sqlite {
namespace {

// At most this many events per block: what the monitor appends in one call, and a block a read
// decodes in well under a millisecond.
constexpr size_t kMaxBlockEvents = 1024;

// The most a block's times may spread (max_at_ms - min_at_ms). A block holding events of a time
// range [from, to] has max_at_ms in [from, to + kMaxBlockSpanMs], so that is all a query walks of
// the time index. Events appended together are milliseconds apart; only an event appended late
// (or a step of the clock) starts a block early.
constexpr int64_t kMaxBlockSpanMs = 60'000;

// Blocks deleted per transaction by delete_usage_events_before (up to 32,768 events, a few MB):
// few enough that appends waiting for the lock (usage_mutex_ and SQLite's) are delayed by
// milliseconds, not by the whole sweep.
constexpr int64_t kDeleteBlocksPerBatch = 32;

// usage_minutes sums events per minute.
constexpr int64_t kMinuteMs = 60'000;

int64_t minute_of(int64_t ms) { return bucket_start_ms(ms, std::chrono::milliseconds(kMinuteMs)); }

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t sum = 0;
  return __builtin_add_overflow(a, b, &sum) ? std::numeric_limits<int64_t>::max() : sum;
}

// The columns every block query selects, in the order of BlockColumn.
constexpr std::string_view kBlockColumns = "first_id, last_id, count, min_at_ms, max_at_ms, events";

enum BlockColumn {
  kBlockFirstId,
  kBlockLastId,
  kBlockCount,
  kBlockMinAtMs,
  kBlockMaxAtMs,
  kBlockEvents
};

// A block as written: its row's columns.
struct Block {
  int64_t first_id = 0;
  int64_t last_id = 0;
  int64_t count = 0;
  int64_t min_at_ms = 0;
  int64_t max_at_ms = 0;
  std::string events;  // encoded with base min_at_ms
};

// REQUIRES: events is not empty; as encode_usage_events.
Block make_block(std::span<const UsageEvent> events, std::span<const int64_t> ids) {
  Block block{
      .first_id = ids.front(), .last_id = ids.back(), .count = static_cast<int64_t>(events.size())};
  block.min_at_ms = block.max_at_ms = to_unix_ms(events.front().at);
  for (const UsageEvent& event : events) {
    block.min_at_ms = std::min(block.min_at_ms, to_unix_ms(event.at));
    block.max_at_ms = std::max(block.max_at_ms, to_unix_ms(event.at));
  }
  block.events = encode_usage_events(events, ids, block.min_at_ms);
  return block;
}

// How many of the first events go into one block: at most kMaxBlockEvents, spreading at most
// kMaxBlockSpanMs. REQUIRES: events is not empty.
size_t next_block_size(std::span<const UsageEvent> events) {
  int64_t min_at = to_unix_ms(events.front().at);
  int64_t max_at = min_at;
  size_t size = 1;
  for (; size < events.size() && size < kMaxBlockEvents; ++size) {
    const int64_t at = to_unix_ms(events[size].at);
    const int64_t new_min = std::min(min_at, at);
    const int64_t new_max = std::max(max_at, at);
    // As unsigned: the difference of any two times fits.
    if (static_cast<uint64_t>(new_max) - static_cast<uint64_t>(new_min) >
        static_cast<uint64_t>(kMaxBlockSpanMs)) {
      break;
    }
    min_at = new_min;
    max_at = new_max;
  }
  return size;
}

void bind_block(Statement& statement, int first, const Block& block) {
  statement.bind(first, block.first_id);
  statement.bind(first + 1, block.last_id);
  statement.bind(first + 2, block.count);
  statement.bind(first + 3, block.min_at_ms);
  statement.bind(first + 4, block.max_at_ms);
  statement.bind_borrowed(
      first + 5,
      std::span(reinterpret_cast<const uint8_t*>(block.events.data()), block.events.size()));
}

// Decodes into `events` (decode_usage_events) the block on the current row of a statement that
// selected kBlockColumns, checked against the row's own columns, which the queries rely on: a
// block that does not decode or does not match its row means the database is damaged.
Result<void> read_block(const Statement& row, std::vector<UsageEvent>& events) {
  const int64_t first_id = row.column_int64(kBlockFirstId);
  const std::span<const uint8_t> blob = row.column_blob(kBlockEvents);
  if (Result<void> decoded = decode_usage_events(
          std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size()),
          row.column_int64(kBlockMinAtMs), events);
      !decoded) {
    return fail(Error::internal(decoded.error().message + " (the block of events from id " +
                                std::to_string(first_id) + " in the usage database)"));
  }
  bool matches = !events.empty() && events.front().id == first_id &&
                 events.back().id == row.column_int64(kBlockLastId) &&
                 static_cast<int64_t>(events.size()) == row.column_int64(kBlockCount);
  int64_t min_at = std::numeric_limits<int64_t>::max();
  int64_t max_at = std::numeric_limits<int64_t>::min();
  for (const UsageEvent& event : events) {
    min_at = std::min(min_at, to_unix_ms(event.at));
    max_at = std::max(max_at, to_unix_ms(event.at));
  }
  matches = matches && min_at == row.column_int64(kBlockMinAtMs) &&
            max_at == row.column_int64(kBlockMaxAtMs);
  if (!matches) {
    return fail(Error::internal("corrupt usage events block: the block of events from id " +
                                std::to_string(first_id) +
                                " in the usage database does not match its ids, count or times"));
  }
  return {};
}

// Runs visit(events) on every block that may hold events of [low_ms, high_ms] (it may hold others
// too), the latest max_at_ms first, until visit returns false or a block ends before
// `stop_below_ms` (which visit may raise). Each block is decoded into `events`; visit may change
// them. `overlapping` is SqliteStore::usage_blocks_overlapping_.
template <typename Visit>
Result<void> for_each_block(Statement& overlapping, int64_t low_ms, int64_t high_ms,
                            const int64_t& stop_below_ms, std::vector<UsageEvent>& events,
                            Visit&& visit) {
  ScopedReset reset(overlapping);
  overlapping.bind(1, low_ms);
  overlapping.bind(2, high_ms);
  overlapping.bind(3, saturating_add(high_ms, kMaxBlockSpanMs));
  for (;;) {
    Result<bool> row = overlapping.step("read usage events");
    if (!row) return fail(row.error());
    if (!*row || overlapping.column_int64(kBlockMaxAtMs) < stop_below_ms) return {};
    if (Result<void> read = read_block(overlapping, events); !read) return fail(read.error());
    if (!visit(events)) return {};
  }
}

// For for_each_block walks that visit every block.
constexpr int64_t kWalkAll = std::numeric_limits<int64_t>::min();

// What the events of one minute, key, provider and model add to usage_minutes.
struct MinuteKey {
  int64_t minute_ms;
  std::string_view key_id;
  std::string_view provider;
  std::string_view model;
  auto operator<=>(const MinuteKey&) const = default;
};

// An event's part of usage summaries: requests count forwarded events, refused the others.
UsageTotals totals_of(const UsageEvent& event) {
  const Usage& usage = event.usage;
  return UsageTotals{.requests = event.forwarded ? usage.requests : 0,
                     .refused = event.forwarded ? 0 : 1,
                     .input_tokens = usage.input_tokens,
                     .cached_input_tokens = usage.cached_input_tokens,
                     .output_tokens = usage.output_tokens,
                     .reasoning_tokens = usage.reasoning_tokens,
                     .unmetered_tokens = usage.unmetered_tokens,
                     .spend = usage.spend};
}

// into += add on every figure; false if a sum does not fit in 64 bits.
bool add_totals(UsageTotals& into, const UsageTotals& add) {
  int64_t spend = 0;
  bool overflow = __builtin_add_overflow(into.requests, add.requests, &into.requests);
  overflow |= __builtin_add_overflow(into.refused, add.refused, &into.refused);
  overflow |= __builtin_add_overflow(into.input_tokens, add.input_tokens, &into.input_tokens);
  overflow |= __builtin_add_overflow(into.cached_input_tokens, add.cached_input_tokens,
                                     &into.cached_input_tokens);
  overflow |= __builtin_add_overflow(into.output_tokens, add.output_tokens, &into.output_tokens);
  overflow |=
      __builtin_add_overflow(into.reasoning_tokens, add.reasoning_tokens, &into.reasoning_tokens);
  overflow |=
      __builtin_add_overflow(into.unmetered_tokens, add.unmetered_tokens, &into.unmetered_tokens);
  overflow |= __builtin_add_overflow(into.spend.nanos(), add.spend.nanos(), &spend);
  into.spend = Money::from_nanos(spend);
  return !overflow;
}

// The events' sums per minute, key, provider and model. kInvalidRequest if a sum does not fit.
Result<std::map<MinuteKey, UsageTotals>> minute_sums(std::span<const UsageEvent> events) {
  std::map<MinuteKey, UsageTotals> sums;
  for (const UsageEvent& event : events) {
    UsageTotals& sum =
        sums[MinuteKey{minute_of(to_unix_ms(event.at)), event.key_id, event.provider, event.model}];
    if (!add_totals(sum, totals_of(event))) {
      return fail(Error::invalid("usage", "usage figures of the events are too large to add up"));
    }
  }
  return sums;
}

Result<void> check_event_usage(const UsageEvent& event) {
  const Usage& usage = event.usage;
  for (int64_t value :
       {usage.requests, usage.input_tokens, usage.cached_input_tokens, usage.output_tokens,
        usage.reasoning_tokens, usage.unmetered_tokens, usage.spend.nanos()}) {
    if (value < 0) {
      return fail(Error::invalid("usage", "usage figures of an event must not be negative"));
    }
  }
  return {};
}

// Whether the event passes the filter's key, provider and model (not its time range).
bool matches(const UsageFilter& filter, const UsageEvent& event) {
  return (!filter.key_id || event.key_id == *filter.key_id) &&
         (!filter.provider || event.provider == *filter.provider) &&
         (!filter.model || event.model == *filter.model);
}

// Which of the optional usage filters are set: bit 0 key, bit 1 provider, bit 2 model.
size_t usage_filter_bits(const UsageFilter& filter) {
  return (filter.key_id ? 1 : 0) | (filter.provider ? 2 : 0) | (filter.model ? 4 : 0);
}

// The optional filters as SQL with parameters ?first (key), ?first+1 (provider), ?first+2 (model).
std::string usage_filter_sql(const UsageFilter& filter, int first) {
  std::string sql;
  if (filter.key_id) sql += " AND key_id = ?" + std::to_string(first);
  if (filter.provider) sql += " AND provider = ?" + std::to_string(first + 1);
  if (filter.model) sql += " AND model = ?" + std::to_string(first + 2);
  return sql;
}

void bind_usage_filters(Statement& statement, int first, const UsageFilter& filter) {
  if (filter.key_id) statement.bind(first, std::string_view(*filter.key_id));
  if (filter.provider) statement.bind(first + 1, std::string_view(*filter.provider));
  if (filter.model) statement.bind(first + 2, std::string_view(*filter.model));
}

// The column a grouped summary groups by.
std::optional<std::string_view> group_column(UsageGroup group) {
  switch (group) {
    case UsageGroup::kNone:
      return "''";
    case UsageGroup::kKey:
      return "key_id";
    case UsageGroup::kProvider:
      return "provider";
    case UsageGroup::kModel:
      return "model";
  }
  return std::nullopt;
}

// The event's value of the column group_column names.
std::string_view group_of(const UsageEvent& event, UsageGroup group) {
  switch (group) {
    case UsageGroup::kKey:
      return event.key_id;
    case UsageGroup::kProvider:
      return event.provider;
    case UsageGroup::kModel:
      return event.model;
    case UsageGroup::kNone:
      break;
  }
  return "";
}

// Newest first: by time, then by id.
bool newer(const UsageEvent& a, const UsageEvent& b) {
  return std::pair(a.at, a.id) > std::pair(b.at, b.id);
}

// One legacy row of migration 1's usage_events, selected with these columns in this order.
constexpr std::string_view kLegacyEventColumns =
    "id, at_ms, key_id, provider, model, status, error_code, forwarded, streaming, "
    "upstream_status, requests, input_tokens, cached_input_tokens, output_tokens, "
    "reasoning_tokens, unmetered_tokens, spend_nanos, latency_us, upstream_latency_us, ttfb_us, "
    "client_address";

UsageEvent read_legacy_event(const Statement& row) {
  int column = 0;
  UsageEvent event;
  event.id = row.column_int64(column++);
  event.at = from_unix_ms(row.column_int64(column++));
  event.key_id = row.column_text(column++);
  event.provider = row.column_text(column++);
  event.model = row.column_text(column++);
  event.status = static_cast<int>(row.column_int64(column++));
  event.error_code = row.column_text(column++);
  event.forwarded = row.column_int64(column++) != 0;
  event.streaming = row.column_int64(column++) != 0;
  event.upstream_status = static_cast<int>(row.column_int64(column++));
  event.usage.requests = row.column_int64(column++);
  event.usage.input_tokens = row.column_int64(column++);
  event.usage.cached_input_tokens = row.column_int64(column++);
  event.usage.output_tokens = row.column_int64(column++);
  event.usage.reasoning_tokens = row.column_int64(column++);
  event.usage.unmetered_tokens = row.column_int64(column++);
  event.usage.spend = Money::from_nanos(row.column_int64(column++));
  event.latency = std::chrono::microseconds(row.column_int64(column++));
  event.upstream_latency = std::chrono::microseconds(row.column_int64(column++));
  event.time_to_first_byte = std::chrono::microseconds(row.column_int64(column++));
  event.client_address = row.column_text(column++);
  return event;
}

}  // namespace

Result<void> SqliteStore::prepare_usage_statements() {
  const std::string block_columns(kBlockColumns);
  const std::pair<Statement*, std::string> statements[] = {
      // Hands out `?1` ids and returns the first.
      {&take_usage_event_ids_,
       "UPDATE usage_event_ids SET next_id = next_id + ?1 RETURNING next_id - ?1"},
      {&insert_usage_block_,
       "INSERT INTO usage_event_blocks (" + block_columns + ") VALUES (?, ?, ?, ?, ?, ?)"},
      // The only block whose ids may include ?1.
      {&find_usage_block_, "SELECT " + block_columns +
                               " FROM usage_event_blocks WHERE first_id <= ?1 "
                               "ORDER BY first_id DESC LIMIT 1"},
      // Blocks that may hold events of [?1, ?2]: they end at or after ?1 and start at or before
      // ?2, so (kMaxBlockSpanMs) end at or before ?3 = ?2 + kMaxBlockSpanMs, which bounds the
      // walk of the time index.
      {&usage_blocks_overlapping_,
       "SELECT " + block_columns +
           " FROM usage_event_blocks WHERE max_at_ms >= ?1 AND max_at_ms <= ?3 "
           "AND min_at_ms <= ?2 ORDER BY max_at_ms DESC"},
      {&rewrite_usage_block_,
       "UPDATE usage_event_blocks SET first_id = ?2, last_id = ?3, count = ?4, min_at_ms = ?5, "
       "max_at_ms = ?6, events = ?7 WHERE first_id = ?1"},
      // The oldest first, so that an interrupted sweep has removed the oldest events.
      {&delete_old_usage_blocks_,
       "DELETE FROM usage_event_blocks WHERE first_id IN (SELECT first_id FROM "
       "usage_event_blocks WHERE max_at_ms < ?1 ORDER BY max_at_ms LIMIT ?2) RETURNING count"},
      {&add_usage_minute_,
       "INSERT INTO usage_minutes (minute_ms, key_id, provider, model, requests, refused, "
       "input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, unmetered_tokens, "
       "spend_nanos) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
       "ON CONFLICT (minute_ms, key_id, provider, model) DO UPDATE SET "
       "requests = requests + excluded.requests, refused = refused + excluded.refused, "
       "input_tokens = input_tokens + excluded.input_tokens, "
       "cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens, "
       "output_tokens = output_tokens + excluded.output_tokens, "
       "reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, "
       "unmetered_tokens = unmetered_tokens + excluded.unmetered_tokens, "
       "spend_nanos = spend_nanos + excluded.spend_nanos"},
      // With the events of the same whole minutes (the cut-off is a minute's start).
      {&delete_usage_minutes_before_, "DELETE FROM usage_minutes WHERE minute_ms < ?"},
  };
  return usage_connection_->prepare_into(statements);
}

Result<void> SqliteStore::insert_usage_blocks(std::span<const UsageEvent> events,
                                              std::span<const int64_t> ids) {
  while (!events.empty()) {
    const size_t size = next_block_size(events);
    const Block block = make_block(events.first(size), ids.first(size));
    Statement& insert = insert_usage_block_;
    ScopedReset reset(insert);
    bind_block(insert, 1, block);
    if (Result<void> inserted = insert.run("append usage events"); !inserted) {
      return fail(inserted.error());
    }
    events = events.subspan(size);
    ids = ids.subspan(size);
  }
  return {};
}

Result<void> SqliteStore::move_legacy_usage_events() {
  std::lock_guard lock(usage_mutex_);
  Result<Statement> exists = usage_connection_->prepare(
      "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage_events'");
  if (!exists) return fail(exists.error());
  auto legacy_table = [&]() -> Result<bool> {
    ScopedReset reset(*exists);  // DROP TABLE fails while a statement reads the schema
    return exists->step("look for usage events to move into blocks");
  };
  // Looked for before taking the write lock, which every open would take otherwise; and again
  // under it, as another process opening the store may have moved them in between.
  Result<bool> legacy = legacy_table();
  if (!legacy) return fail(legacy.error());
  if (!*legacy) return {};
  Result<Transaction> transaction = usage_connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  legacy = legacy_table();
  if (!legacy) return fail(legacy.error());
  if (!*legacy) return {};

  Result<Statement> select = usage_connection_->prepare(
      "SELECT " + std::string(kLegacyEventColumns) + " FROM usage_events ORDER BY id");
  if (!select) return fail(select.error());
  // A block's worth at a time: the table may be larger than memory.
  std::vector<UsageEvent> events;
  std::vector<int64_t> ids;
  for (bool more = true; more;) {
    Result<bool> row = select->step("move usage events into blocks");
    if (!row) return fail(row.error());
    more = *row;
    if (more) {
      events.push_back(read_legacy_event(*select));
      ids.push_back(events.back().id);
    }
    if (events.size() == kMaxBlockEvents || (!more && !events.empty())) {
      if (Result<void> inserted = insert_usage_blocks(events, ids); !inserted) {
        return fail(inserted.error());
      }
      events.clear();
      ids.clear();
    }
  }
  select->reset();
  if (Result<void> dropped = usage_connection_->exec("DROP TABLE usage_events",
                                                     "drop the usage events moved into blocks");
      !dropped) {
    return fail(dropped.error());
  }
  return transaction->commit();
}

// --- Appending ---------------------------------------------------------------------------------

Result<void> SqliteStore::append_usage_events(std::span<const UsageEvent> events) {
  for (const UsageEvent& event : events) {
    if (Result<void> valid = check_event_usage(event); !valid) return fail(valid.error());
  }
  if (events.empty()) return {};
  Result<std::map<MinuteKey, UsageTotals>> sums = minute_sums(events);
  if (!sums) return fail(sums.error());

  std::lock_guard lock(usage_mutex_);
  Result<Transaction> transaction = usage_connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  std::vector<int64_t> ids(events.size());
  {
    Statement& take = take_usage_event_ids_;
    ScopedReset reset(take);
    take.bind(1, static_cast<int64_t>(events.size()));
    Result<bool> row = take.step("assign usage event ids");
    if (!row) return fail(row.error());
    if (!*row) return fail(Error::internal("the usage database has no next event id"));
    std::iota(ids.begin(), ids.end(), take.column_int64(0));
    if (Result<void> done = take.run("assign usage event ids"); !done) return fail(done.error());
  }
  if (Result<void> inserted = insert_usage_blocks(events, ids); !inserted) {
    return fail(inserted.error());
  }
  for (const auto& [minute, sum] : *sums) {
    Statement& add = add_usage_minute_;
    ScopedReset reset(add);
    add.bind(1, minute.minute_ms);
    add.bind_borrowed(2, minute.key_id);
    add.bind_borrowed(3, minute.provider);
    add.bind_borrowed(4, minute.model);
    add.bind(5, sum.requests);
    add.bind(6, sum.refused);
    add.bind(7, sum.input_tokens);
    add.bind(8, sum.cached_input_tokens);
    add.bind(9, sum.output_tokens);
    add.bind(10, sum.reasoning_tokens);
    add.bind(11, sum.unmetered_tokens);
    add.bind(12, sum.spend.nanos());
    if (Result<void> added = add.run("add to the usage minutes"); !added) {
      return fail(added.error());
    }
  }
  return transaction->commit();
}

// --- Summaries ---------------------------------------------------------------------------------

Result<Statement*> SqliteStore::usage_summary_statement(const UsageFilter& filter,
                                                        UsageGroup group) {
  std::optional<std::string_view> column = group_column(group);
  if (!column) return fail(Error::invalid("group", "unknown usage grouping"));
  const size_t variant = usage_filter_bits(filter) + 8 * static_cast<size_t>(group);
  return usage_connection_->cached(usage_summary_[variant], [&] {
    // The whole minutes [?2, ?3) by group and bucket. ?1 is the bucket length; a bucket's start is
    // the time rounded down to a multiple of it (also before 1970, where % alone would round up);
    // buckets are whole minutes, so a minute's sums fall in one bucket.
    return "SELECT " + std::string(*column) +
           ", minute_ms - (minute_ms % ?1 + ?1) % ?1, sum(requests), sum(refused), "
           "sum(input_tokens), sum(cached_input_tokens), sum(output_tokens), "
           "sum(reasoning_tokens), sum(unmetered_tokens), sum(spend_nanos) FROM usage_minutes "
           "WHERE minute_ms >= ?2 AND minute_ms < ?3" +
           usage_filter_sql(filter, 4) + " GROUP BY 1, 2 ORDER BY 1, 2";
  });
}

Result<std::vector<UsageSeries>> SqliteStore::usage_summary(const UsageFilter& filter,
                                                            UsageBucket bucket, UsageGroup group) {
  if (filter.to <= filter.from) return fail(Error::invalid("to", "to must be after from"));
  const int64_t length = bucket_length(bucket).count();
  const Error too_large = Error::internal("usage summary: a total does not fit in 64 bits");

  std::lock_guard lock(usage_mutex_);
  Result<Statement*> statement = usage_summary_statement(filter, group);
  if (!statement) return fail(statement.error());
  Statement& query = **statement;
  ScopedReset reset(query);
  const int64_t from = to_unix_ms(filter.from);
  const int64_t to = to_unix_ms(filter.to);
  // The whole minutes inside [from, to); none (an empty [to, to)) when the range is within one.
  int64_t first_minute = minute_of(from) == from ? from : minute_of(from) + kMinuteMs;
  int64_t end_minute = minute_of(to);
  if (first_minute >= end_minute) first_minute = end_minute = to;
  query.bind(1, length);
  query.bind(2, first_minute);
  query.bind(3, end_minute);
  bind_usage_filters(query, 4, filter);

  // Rows come ordered by group, then bucket: each group's points are consecutive, oldest first.
  std::vector<UsageSeries> series;
  for (;;) {
    Result<bool> row = query.step("usage summary");
    if (!row) return fail(row.error());
    if (!*row) break;
    std::string name = query.column_text(0);
    if (series.empty() || series.back().group != name) {
      series.push_back(UsageSeries{.group = std::move(name)});
    }
    UsagePoint point{.start = from_unix_ms(query.column_int64(1))};
    point.totals.requests = query.column_int64(2);
    point.totals.refused = query.column_int64(3);
    point.totals.input_tokens = query.column_int64(4);
    point.totals.cached_input_tokens = query.column_int64(5);
    point.totals.output_tokens = query.column_int64(6);
    point.totals.reasoning_tokens = query.column_int64(7);
    point.totals.unmetered_tokens = query.column_int64(8);
    point.totals.spend = Money::from_nanos(query.column_int64(9));
    series.back().points.push_back(point);
  }

  // The partial minutes at the ends, [from, first_minute) and [end_minute, to), from the events.
  std::map<std::pair<std::string, int64_t>, UsageTotals> partial;
  bool overflow = false;
  for (auto [begin, end] : {std::pair(from, first_minute), std::pair(end_minute, to)}) {
    if (begin >= end) continue;
    Result<void> summed = for_each_block(
        usage_blocks_overlapping_, begin, end - 1, kWalkAll, decoded_events_,
        [&](const std::vector<UsageEvent>& events) {
          for (const UsageEvent& event : events) {
            const int64_t at = to_unix_ms(event.at);
            if (at < begin || at >= end || !matches(filter, event)) continue;
            UsageTotals& sum = partial[std::pair(std::string(group_of(event, group)),
                                                 bucket_start_ms(at, bucket_length(bucket)))];
            overflow |= !add_totals(sum, totals_of(event));
          }
          return true;
        });
    if (!summed) return fail(summed.error());
  }
  if (overflow) return fail(too_large);

  // Merged into the series: the partial minutes' buckets are a series' first or last, or new.
  std::map<std::string, size_t> series_of_group;
  for (size_t i = 0; i < series.size(); ++i) series_of_group.emplace(series[i].group, i);
  for (const auto& [key, totals] : partial) {
    const auto& [name, start_ms] = key;
    auto [found, added] = series_of_group.emplace(name, series.size());
    if (added) series.push_back(UsageSeries{.group = name});
    std::vector<UsagePoint>& points = series[found->second].points;
    const Timestamp start = from_unix_ms(start_ms);
    auto at = std::lower_bound(
        points.begin(), points.end(), start,
        [](const UsagePoint& point, Timestamp value) { return point.start < value; });
    if (at == points.end() || at->start != start) at = points.insert(at, UsagePoint{start, {}});
    if (!add_totals(at->totals, totals)) return fail(too_large);
  }
  for (UsageSeries& one : series) {
    for (const UsagePoint& point : one.points) {
      if (!add_totals(one.totals, point.totals)) return fail(too_large);
    }
  }

  if (group == UsageGroup::kNone) {
    if (series.empty()) series.emplace_back();  // exactly one series, even when nothing matched
    return series;
  }
  std::sort(series.begin(), series.end(), [](const UsageSeries& a, const UsageSeries& b) {
    if (a.totals.spend != b.totals.spend) return a.totals.spend > b.totals.spend;
    if (a.totals.requests != b.totals.requests) return a.totals.requests > b.totals.requests;
    return a.group < b.group;
  });
  return series;
}

// --- Listing -----------------------------------------------------------------------------------

Result<UsageEventPage> SqliteStore::list_usage_events(const UsageFilter& filter,
                                                      std::string_view cursor, int limit) {
  if (Result<void> valid = check_list_limit(limit); !valid) return fail(valid.error());
  // The cursor is the id of the last event of the previous page (list_cursor.h).
  Result<int64_t> cursor_id = parse_list_cursor(cursor);
  if (!cursor_id) return fail(cursor_id.error());
  UsageEventPage page;
  if (filter.to <= filter.from) return page;
  const int64_t from = to_unix_ms(filter.from);

  std::lock_guard lock(usage_mutex_);
  // The page continues below the cursor's event in (at, id) order. If that event is gone, so is
  // every event after it: retention deletes the oldest first.
  int64_t cursor_at = std::numeric_limits<int64_t>::max();
  if (!cursor.empty()) {
    Statement& find = find_usage_block_;
    ScopedReset reset(find);
    find.bind(1, *cursor_id);
    Result<bool> row = find.step("find the cursor's usage event");
    if (!row) return fail(row.error());
    if (!*row || find.column_int64(kBlockLastId) < *cursor_id) return page;
    std::vector<UsageEvent>& events = decoded_events_;
    if (Result<void> read = read_block(find, events); !read) return fail(read.error());
    auto event = std::find_if(events.begin(), events.end(),
                              [&](const UsageEvent& e) { return e.id == *cursor_id; });
    if (event == events.end()) return page;
    cursor_at = to_unix_ms(event->at);
  }
  const UsageEvent after{.id = *cursor_id, .at = from_unix_ms(cursor_at)};
  const int64_t newest = std::min(to_unix_ms(filter.to) - 1, cursor_at);

  // The newest `wanted` events found so far, newest first. Once there are that many, a block that
  // ends before the oldest of them (and every block after it: they come latest max_at_ms first)
  // holds none of the page. One event more than the page tells whether another page follows.
  const size_t wanted = static_cast<size_t>(limit) + 1;
  std::vector<UsageEvent> kept;
  std::vector<UsageEvent> merged;
  std::vector<uint32_t> selected;  // the block's events that may join `kept`, by index
  int64_t oldest_kept_ms = kWalkAll;
  Result<void> walked = for_each_block(
      usage_blocks_overlapping_, from, newest, oldest_kept_ms, decoded_events_,
      [&](const std::vector<UsageEvent>& events) {
        selected.clear();
        for (uint32_t i = 0; i < events.size(); ++i) {
          const UsageEvent& event = events[i];
          const int64_t at = to_unix_ms(event.at);
          if (at >= from && at <= newest && newer(after, event) && matches(filter, event)) {
            selected.push_back(i);
          }
        }
        const size_t best = std::min(selected.size(), wanted);
        std::partial_sort(selected.begin(), selected.begin() + static_cast<ptrdiff_t>(best),
                          selected.end(),
                          [&](uint32_t a, uint32_t b) { return newer(events[a], events[b]); });
        // Copied, not moved: the decoded events keep their strings' storage for the next block.
        merged.clear();
        auto next_kept = kept.begin();
        auto next_selected = selected.begin();
        const auto selected_end = selected.begin() + static_cast<ptrdiff_t>(best);
        while (merged.size() < wanted &&
               (next_kept != kept.end() || next_selected != selected_end)) {
          if (next_selected == selected_end ||
              (next_kept != kept.end() && newer(*next_kept, events[*next_selected]))) {
            merged.push_back(std::move(*next_kept++));
          } else {
            merged.push_back(events[*next_selected++]);
          }
        }
        kept.swap(merged);
        if (kept.size() == wanted) oldest_kept_ms = to_unix_ms(kept.back().at);
        return true;
      });
  if (!walked) return fail(walked.error());
  if (kept.size() == wanted) {
    kept.pop_back();
    page.next_cursor = std::to_string(kept.back().id);
  }
  page.events = std::move(kept);
  return page;
}

// --- Retention ---------------------------------------------------------------------------------

Result<int64_t> SqliteStore::delete_usage_events_before(Timestamp before) {
  const int64_t cut = minute_of(to_unix_ms(before));
  // The blocks older than the cut in batches, each its own transaction (one statement), releasing
  // the mutex in between so that appends are not held up by a long retention sweep.
  int64_t deleted = 0;
  for (;;) {
    std::lock_guard lock(usage_mutex_);
    Statement& remove = delete_old_usage_blocks_;
    ScopedReset reset(remove);
    remove.bind(1, cut);
    remove.bind(2, kDeleteBlocksPerBatch);
    int64_t blocks = 0;
    for (;; ++blocks) {
      Result<bool> row = remove.step("delete old usage events");
      if (!row) return fail(row.error());
      if (!*row) break;
      deleted += remove.column_int64(0);
    }
    if (blocks < kDeleteBlocksPerBatch) break;
  }

  // Then, in one transaction with the per-minute sums before the cut, the events before the cut
  // in the blocks that straddle it (they keep their other events and ids).
  std::lock_guard lock(usage_mutex_);
  Result<Transaction> transaction = usage_connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  std::vector<std::pair<int64_t, std::vector<UsageEvent>>> straddling;  // (first_id, kept events)
  Result<void> read = for_each_block(
      usage_blocks_overlapping_, cut, cut - 1, kWalkAll, decoded_events_,
      [&](std::vector<UsageEvent>& events) {
        const int64_t first_id = events.front().id;
        const size_t count = events.size();
        std::erase_if(events, [&](const UsageEvent& e) { return to_unix_ms(e.at) < cut; });
        deleted += static_cast<int64_t>(count - events.size());
        straddling.emplace_back(first_id, std::move(events));
        return true;
      });
  if (!read) return fail(read.error());
  for (const auto& [first_id, events] : straddling) {
    std::vector<int64_t> ids;
    for (const UsageEvent& event : events) ids.push_back(event.id);
    const Block block = make_block(events, ids);
    Statement& rewrite = rewrite_usage_block_;
    ScopedReset reset(rewrite);
    rewrite.bind(1, first_id);
    bind_block(rewrite, 2, block);
    if (Result<void> done = rewrite.run("delete old usage events"); !done) {
      return fail(done.error());
    }
  }
  {
    ScopedReset reset(delete_usage_minutes_before_);
    delete_usage_minutes_before_.bind(1, cut);
    if (Result<void> done = delete_usage_minutes_before_.run("delete old usage minutes"); !done) {
      return fail(done.error());
    }
  }
  if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  return deleted;
}

}  // namespace till::sqlite
