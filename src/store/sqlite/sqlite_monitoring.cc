// SqliteStore: usage events, alerts and rotation reminders (the monitoring half of Store; keys,
// budgets and credentials are in sqlite_store.cc). Schema: migration 3 in migrations.cc.
#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <span>
#include <utility>

#include "store/sqlite/list_cursor.h"
#include "store/sqlite/sqlite_store.h"

namespace till::sqlite {
namespace {

// The columns every usage event query selects, in the order of EventColumn.
constexpr std::string_view kEventColumns =
    "id, at_ms, key_id, provider, model, status, error_code, forwarded, streaming, "
    "upstream_status, requests, input_tokens, cached_input_tokens, output_tokens, "
    "reasoning_tokens, unmetered_tokens, spend_nanos, latency_us, upstream_latency_us, ttfb_us, "
    "client_address";

enum EventColumn {
  kEventId,
  kEventAtMs,
  kEventKeyId,
  kEventProvider,
  kEventModel,
  kEventStatus,
  kEventErrorCode,
  kEventForwarded,
  kEventStreaming,
  kEventUpstreamStatus,
  kEventRequests,
  kEventInputTokens,
  kEventCachedInputTokens,
  kEventOutputTokens,
  kEventReasoningTokens,
  kEventUnmeteredTokens,
  kEventSpendNanos,
  kEventLatencyUs,
  kEventUpstreamLatencyUs,
  kEventTtfbUs,
  kEventClientAddress,
};

// The columns every alert query selects, in this order (read_alert).
constexpr std::string_view kAlertColumns =
    "id, key_id, rule, severity, message, action, created_at_ms, acknowledged_at_ms";

// Rows deleted per transaction by delete_usage_events_before: small enough that appends waiting
// for the lock (usage_mutex_ and SQLite's) are delayed by milliseconds, not by the whole sweep.
constexpr int64_t kDeleteBatch = 2000;

// usage_minutes (migration 2 of the usage database) sums events per minute.
constexpr int64_t kMinuteMs = 60'000;

// The start of the minute `ms` is in (rounding down, also before 1970).
int64_t minute_of(int64_t ms) { return ms - ((ms % kMinuteMs) + kMinuteMs) % kMinuteMs; }

// What one minute of one key, provider and model adds to usage_minutes.
struct MinuteKey {
  int64_t minute_ms;
  std::string_view key_id;
  std::string_view provider;
  std::string_view model;
  auto operator<=>(const MinuteKey&) const = default;
};

// The events' sums per minute, key, provider and model, as usage summaries count them: requests
// are forwarded ones, refused the others. REQUIRES: check_event_usage passed for every event
// (figures are non-negative; sums of a batch fit: each is at most 2^63 / batch size in practice).
std::map<MinuteKey, UsageTotals> minute_sums(std::span<const UsageEvent> events) {
  std::map<MinuteKey, UsageTotals> sums;
  for (const UsageEvent& event : events) {
    UsageTotals& sum =
        sums[MinuteKey{minute_of(to_unix_ms(event.at)), event.key_id, event.provider, event.model}];
    const Usage& usage = event.usage;
    if (event.forwarded) {
      sum.requests += usage.requests;
    } else {
      ++sum.refused;
    }
    sum.input_tokens += usage.input_tokens;
    sum.cached_input_tokens += usage.cached_input_tokens;
    sum.output_tokens += usage.output_tokens;
    sum.reasoning_tokens += usage.reasoning_tokens;
    sum.unmetered_tokens += usage.unmetered_tokens;
    sum.spend = Money::from_nanos(sum.spend.nanos() + usage.spend.nanos());
  }
  return sums;
}

// Rows one multi-row INSERT writes: one statement step per 32 events instead of per event.
constexpr size_t kEventsPerInsert = 32;
constexpr int kEventInsertColumns = 20;

// Binds the event's columns (all of kEventColumns but id), in order, from parameter `index`.
// Strings are borrowed: `event` must outlive the statement's next reset.
void bind_event(Statement& insert, const UsageEvent& event, int index = 1) {
  insert.bind(index++, to_unix_ms(event.at));
  insert.bind_borrowed(index++, std::string_view(event.key_id));
  insert.bind_borrowed(index++, std::string_view(event.provider));
  insert.bind_borrowed(index++, std::string_view(event.model));
  insert.bind(index++, static_cast<int64_t>(event.status));
  insert.bind_borrowed(index++, std::string_view(event.error_code));
  insert.bind(index++, static_cast<int64_t>(event.forwarded ? 1 : 0));
  insert.bind(index++, static_cast<int64_t>(event.streaming ? 1 : 0));
  insert.bind(index++, static_cast<int64_t>(event.upstream_status));
  insert.bind(index++, event.usage.requests);
  insert.bind(index++, event.usage.input_tokens);
  insert.bind(index++, event.usage.cached_input_tokens);
  insert.bind(index++, event.usage.output_tokens);
  insert.bind(index++, event.usage.reasoning_tokens);
  insert.bind(index++, event.usage.unmetered_tokens);
  insert.bind(index++, event.usage.spend.nanos());
  insert.bind(index++, static_cast<int64_t>(event.latency.count()));
  insert.bind(index++, static_cast<int64_t>(event.upstream_latency.count()));
  insert.bind(index++, static_cast<int64_t>(event.time_to_first_byte.count()));
  insert.bind_borrowed(index++, std::string_view(event.client_address));
}

// The event on the current row of a statement that selected kEventColumns.
UsageEvent read_event(const Statement& row) {
  UsageEvent event;
  event.id = row.column_int64(kEventId);
  event.at = from_unix_ms(row.column_int64(kEventAtMs));
  event.key_id = row.column_text(kEventKeyId);
  event.provider = row.column_text(kEventProvider);
  event.model = row.column_text(kEventModel);
  event.status = static_cast<int>(row.column_int64(kEventStatus));
  event.error_code = row.column_text(kEventErrorCode);
  event.forwarded = row.column_int64(kEventForwarded) != 0;
  event.streaming = row.column_int64(kEventStreaming) != 0;
  event.upstream_status = static_cast<int>(row.column_int64(kEventUpstreamStatus));
  event.usage.requests = row.column_int64(kEventRequests);
  event.usage.input_tokens = row.column_int64(kEventInputTokens);
  event.usage.cached_input_tokens = row.column_int64(kEventCachedInputTokens);
  event.usage.output_tokens = row.column_int64(kEventOutputTokens);
  event.usage.reasoning_tokens = row.column_int64(kEventReasoningTokens);
  event.usage.unmetered_tokens = row.column_int64(kEventUnmeteredTokens);
  event.usage.spend = Money::from_nanos(row.column_int64(kEventSpendNanos));
  event.latency = std::chrono::microseconds(row.column_int64(kEventLatencyUs));
  event.upstream_latency = std::chrono::microseconds(row.column_int64(kEventUpstreamLatencyUs));
  event.time_to_first_byte = std::chrono::microseconds(row.column_int64(kEventTtfbUs));
  event.client_address = row.column_text(kEventClientAddress);
  return event;
}

AlertRecord read_alert(const Statement& row) {
  AlertRecord alert;
  alert.id = row.column_int64(0);
  alert.key_id = row.column_text(1);
  alert.rule = row.column_text(2);
  alert.severity = row.column_text(3);
  alert.message = row.column_text(4);
  alert.action = row.column_text(5);
  alert.created_at = from_unix_ms(row.column_int64(6));
  if (std::optional<int64_t> ms = row.column_optional_int64(7)) {
    alert.acknowledged = true;
    alert.acknowledged_at = from_unix_ms(*ms);
  }
  return alert;
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

// Which of the optional usage filters are set: bit 0 key, bit 1 provider, bit 2 model.
size_t usage_filter_bits(const UsageFilter& filter) {
  return (filter.key_id ? 1 : 0) | (filter.provider ? 2 : 0) | (filter.model ? 4 : 0);
}

// The optional filters with fixed parameter numbers from `first` on (key, provider, model), so
// that one statement can repeat them in several subqueries; bind with
// bind_usage_filters.
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

Error alert_not_found(int64_t id) {
  return Error::client(ErrorCode::kNotFound, "no alert with id " + std::to_string(id));
}

}  // namespace

Result<void> SqliteStore::prepare_monitoring_statements() {
  const std::string alert_columns(kAlertColumns);
  const std::string insert_events =
      "INSERT INTO usage_events (at_ms, key_id, provider, model, status, error_code, forwarded, "
      "streaming, upstream_status, requests, input_tokens, cached_input_tokens, output_tokens, "
      "reasoning_tokens, unmetered_tokens, spend_nanos, latency_us, upstream_latency_us, "
      "ttfb_us, client_address) VALUES ";
  const std::string one_row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  std::string many_rows = one_row;
  for (size_t row = 1; row < kEventsPerInsert; ++row) many_rows += ", " + one_row;
  const std::pair<Statement*, std::string> usage_statements[] = {
      {&insert_usage_event_, insert_events + one_row},
      {&insert_usage_events_, insert_events + many_rows},
      // The oldest first, so that an interrupted sweep has removed the oldest events.
      {&delete_usage_events_batch_,
       "DELETE FROM usage_events WHERE id IN "
       "(SELECT id FROM usage_events WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)"},
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
      {&count_changes_, "SELECT changes()"},
      {&find_usage_event_time_, "SELECT at_ms FROM usage_events WHERE id = ?"},
  };
  if (Result<void> prepared = usage_connection_->prepare_into(usage_statements); !prepared) {
    return fail(prepared.error());
  }
  const std::pair<Statement*, std::string> statements[] = {
      {&insert_alert_,
       "INSERT INTO alerts (key_id, rule, severity, message, action, created_at_ms, "
       "acknowledged_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING " +
           alert_columns},
      // The first acknowledgment's time is kept.
      {&acknowledge_alert_,
       "UPDATE alerts SET acknowledged_at_ms = coalesce(acknowledged_at_ms, ?2) WHERE id = ?1 "
       "RETURNING " +
           alert_columns},
      // The due expression is the one keys_by_rotation_due indexes.
      {&list_rotation_due_,
       "SELECT id, rotated_at_ms + rotate_every_ms FROM keys "
       "WHERE rotate_every_ms IS NOT NULL AND rotated_at_ms + rotate_every_ms < ?1 "
       "AND status NOT IN ('revoked', 'expired') AND (expires_at_ms IS NULL OR expires_at_ms > ?2) "
       "ORDER BY rotated_at_ms + rotate_every_ms, seq"},
  };
  return connection_->prepare_into(statements);
}

// --- Usage events ----------------------------------------------------------------------------

Result<void> SqliteStore::append_usage_events(std::span<const UsageEvent> events) {
  for (const UsageEvent& event : events) {
    if (Result<void> valid = check_event_usage(event); !valid) return fail(valid.error());
  }
  if (events.empty()) return {};
  std::lock_guard lock(usage_mutex_);
  Result<Transaction> transaction = usage_connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  size_t next = 0;
  for (; next + kEventsPerInsert <= events.size(); next += kEventsPerInsert) {
    Statement& insert = insert_usage_events_;
    ScopedReset reset(insert);
    for (size_t row = 0; row < kEventsPerInsert; ++row) {
      bind_event(insert, events[next + row], 1 + static_cast<int>(row) * kEventInsertColumns);
    }
    if (Result<void> inserted = insert.run("append usage events"); !inserted) {
      return fail(inserted.error());
    }
  }
  for (; next < events.size(); ++next) {
    Statement& insert = insert_usage_event_;
    ScopedReset reset(insert);
    bind_event(insert, events[next]);
    if (Result<void> inserted = insert.run("append usage events"); !inserted) {
      return fail(inserted.error());
    }
  }
  for (const auto& [minute, sum] : minute_sums(events)) {
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

Result<Statement*> SqliteStore::usage_summary_statement(const UsageFilter& filter,
                                                        UsageGroup group) {
  std::optional<std::string_view> column = group_column(group);
  if (!column) return fail(Error::invalid("group", "unknown usage grouping"));
  const size_t variant = usage_filter_bits(filter) + 8 * static_cast<size_t>(group);
  return usage_connection_->cached(usage_summary_[variant], [&] {
    // The range [?2, ?3) is read as the whole minutes [?4, ?5) from usage_minutes plus the
    // partial minutes [?2, ?4) and [?5, ?3) from usage_events (usage_summary binds them). ?1 is
    // the bucket length; a bucket's start is the time rounded down to a multiple of it (also
    // before 1970, where % alone would round up); buckets are whole minutes, so a minute's sums
    // fall in one bucket. Refused events have zero usage; only forwarded ones count as requests.
    const std::string group_by(*column);
    const std::string filters = usage_filter_sql(filter, 6);
    const std::string partial_minute =
        "SELECT " + group_by +
        " AS grouping, at_ms - (at_ms % ?1 + ?1) % ?1 AS bucket, "
        "CASE WHEN forwarded = 1 THEN requests ELSE 0 END AS requests, forwarded = 0 AS refused, "
        "input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, unmetered_tokens, "
        "spend_nanos FROM usage_events WHERE ";
    std::string sql =
        "SELECT grouping, bucket, sum(requests), sum(refused), sum(input_tokens), "
        "sum(cached_input_tokens), sum(output_tokens), sum(reasoning_tokens), "
        "sum(unmetered_tokens), sum(spend_nanos) FROM ("
        "SELECT " +
        group_by +
        " AS grouping, minute_ms - (minute_ms % ?1 + ?1) % ?1 AS bucket, requests, refused, "
        "input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, unmetered_tokens, "
        "spend_nanos FROM usage_minutes WHERE minute_ms >= ?4 AND minute_ms < ?5" +
        filters + " UNION ALL " + partial_minute + "at_ms >= ?2 AND at_ms < ?4" + filters +
        " UNION ALL " + partial_minute + "at_ms >= ?5 AND at_ms < ?3" + filters +
        ") GROUP BY 1, 2 ORDER BY 1, 2";
    return sql;
  });
}

Result<std::vector<UsageSeries>> SqliteStore::usage_summary(const UsageFilter& filter,
                                                            UsageBucket bucket, UsageGroup group) {
  if (filter.to <= filter.from) return fail(Error::invalid("to", "to must be after from"));
  const int64_t length = bucket_length(bucket).count();

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
  query.bind(2, from);
  query.bind(3, to);
  query.bind(4, first_minute);
  query.bind(5, end_minute);
  bind_usage_filters(query, 6, filter);

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
    if (!add_totals(series.back().totals, point.totals)) {
      return fail(Error::internal("usage summary: a total does not fit in 64 bits"));
    }
    series.back().points.push_back(point);
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

Result<Statement*> SqliteStore::list_usage_events_statement(const UsageFilter& filter) {
  return usage_connection_->cached(list_usage_events_[usage_filter_bits(filter)], [&] {
    // Newest first by (at, id): the order of usage_events_by_time, so a page is an index range
    // scan that stops after the page (filters are checked on the way). ?2 is the upper bound of
    // at for this page; ?3 and ?4 are the cursor's (at, id); ?8 the number of rows.
    std::string sql = "SELECT " + std::string(kEventColumns) +
                      " FROM usage_events WHERE at_ms >= ?1 AND at_ms <= ?2 "
                      "AND (at_ms < ?3 OR id < ?4)" +
                      usage_filter_sql(filter, 5) + " ORDER BY at_ms DESC, id DESC LIMIT ?8";
    return sql;
  });
}

Result<UsageEventPage> SqliteStore::list_usage_events(const UsageFilter& filter,
                                                      std::string_view cursor, int limit) {
  if (Result<void> valid = check_list_limit(limit); !valid) return fail(valid.error());
  // The cursor is the id of the last event of the previous page (list_cursor.h).
  Result<int64_t> cursor_id = parse_list_cursor(cursor);
  if (!cursor_id) return fail(cursor_id.error());
  UsageEventPage page;
  if (filter.to <= filter.from) return page;

  std::lock_guard lock(usage_mutex_);
  // The page continues below the cursor's event in (at, id) order. If that event is gone, so is
  // every event after it: retention deletes the oldest first.
  int64_t cursor_at = std::numeric_limits<int64_t>::max();
  if (!cursor.empty()) {
    ScopedReset reset(find_usage_event_time_);
    find_usage_event_time_.bind(1, *cursor_id);
    Result<bool> row = find_usage_event_time_.step("find the cursor's usage event");
    if (!row) return fail(row.error());
    if (!*row) return page;
    cursor_at = find_usage_event_time_.column_int64(0);
  }

  Result<Statement*> statement = list_usage_events_statement(filter);
  if (!statement) return fail(statement.error());
  Statement& list = **statement;
  ScopedReset reset(list);
  list.bind(1, to_unix_ms(filter.from));
  list.bind(2, std::min(to_unix_ms(filter.to) - 1, cursor_at));
  list.bind(3, cursor_at);
  list.bind(4, *cursor_id);
  bind_usage_filters(list, 5, filter);
  // One row more than the page tells whether another page follows.
  list.bind(8, static_cast<int64_t>(limit) + 1);

  for (;;) {
    Result<bool> row = list.step("list usage events");
    if (!row) return fail(row.error());
    if (!*row) break;
    if (page.events.size() == static_cast<size_t>(limit)) {
      page.next_cursor = std::to_string(page.events.back().id);
      break;
    }
    page.events.push_back(read_event(list));
  }
  return page;
}

Result<int64_t> SqliteStore::delete_usage_events_before(Timestamp before) {
  const int64_t cut = minute_of(to_unix_ms(before));
  // In batches, each its own transaction, releasing the mutex in between so that appends are
  // not held up by a long retention sweep.
  int64_t deleted = 0;
  for (;;) {
    std::lock_guard lock(usage_mutex_);
    {
      ScopedReset reset(delete_usage_events_batch_);
      delete_usage_events_batch_.bind(1, cut);
      delete_usage_events_batch_.bind(2, kDeleteBatch);
      if (Result<void> done = delete_usage_events_batch_.run("delete old usage events"); !done) {
        return fail(done.error());
      }
    }
    ScopedReset reset(count_changes_);
    Result<bool> row = count_changes_.step("count deleted usage events");
    if (!row) return fail(row.error());
    const int64_t batch = *row ? count_changes_.column_int64(0) : 0;
    deleted += batch;
    if (batch < kDeleteBatch) break;
  }
  std::lock_guard lock(usage_mutex_);
  ScopedReset reset(delete_usage_minutes_before_);
  delete_usage_minutes_before_.bind(1, cut);
  if (Result<void> done = delete_usage_minutes_before_.run("delete old usage minutes"); !done) {
    return fail(done.error());
  }
  return deleted;
}

// --- Alerts ----------------------------------------------------------------------------------

Result<AlertRecord> SqliteStore::insert_alert(const AlertRecord& alert) {
  // An alert stored as acknowledged keeps its time, or takes its creation time.
  std::optional<int64_t> acknowledged_ms;
  if (alert.acknowledged) {
    acknowledged_ms =
        alert.acknowledged_at ? to_unix_ms(*alert.acknowledged_at) : to_unix_ms(alert.created_at);
  }

  std::lock_guard lock(mutex_);
  Statement& insert = insert_alert_;
  ScopedReset reset(insert);
  insert.bind(1, std::string_view(alert.key_id));
  insert.bind(2, std::string_view(alert.rule));
  insert.bind(3, std::string_view(alert.severity));
  insert.bind(4, std::string_view(alert.message));
  insert.bind(5, std::string_view(alert.action));
  insert.bind(6, to_unix_ms(alert.created_at));
  insert.bind(7, acknowledged_ms);
  Result<bool> row = insert.step("insert alert");
  if (!row) return fail(row.error());
  if (!*row) return fail(Error::internal("insert alert returned no row"));
  AlertRecord stored = read_alert(insert);
  // Stepping to the end completes the statement before it is reset.
  if (Result<void> done = insert.run("insert alert"); !done) return fail(done.error());
  return stored;
}

Result<Statement*> SqliteStore::list_alerts_statement(const AlertFilter& filter) {
  const size_t acknowledged = !filter.acknowledged ? 0 : (*filter.acknowledged ? 2 : 1);
  const size_t variant = (filter.key_id ? 1 : 0) | (filter.rule ? 2 : 0) | (filter.since ? 4 : 0);
  return connection_->cached(list_alerts_[variant + 8 * acknowledged], [&] {
    std::string sql = "SELECT " + std::string(kAlertColumns) + " FROM alerts WHERE id < ?";
    if (filter.key_id) sql += " AND key_id = ?";
    if (filter.rule) sql += " AND rule = ?";
    if (filter.since) sql += " AND created_at_ms >= ?";
    // Spelled as alerts_open's condition, so that listing open alerts can use that index.
    if (acknowledged == 1) sql += " AND acknowledged_at_ms IS NULL";
    if (acknowledged == 2) sql += " AND acknowledged_at_ms IS NOT NULL";
    sql += " ORDER BY id DESC LIMIT ?";
    return sql;
  });
}

Result<AlertPage> SqliteStore::list_alerts(const AlertFilter& filter) {
  if (Result<void> valid = check_list_limit(filter.limit); !valid) return fail(valid.error());
  // The cursor is the id of the last alert of the previous page (list_cursor.h).
  Result<int64_t> before_id = parse_list_cursor(filter.cursor);
  if (!before_id) return fail(before_id.error());

  std::lock_guard lock(mutex_);
  Result<Statement*> statement = list_alerts_statement(filter);
  if (!statement) return fail(statement.error());
  Statement& list = **statement;
  ScopedReset reset(list);
  int index = 1;
  list.bind(index++, *before_id);
  if (filter.key_id) list.bind(index++, std::string_view(*filter.key_id));
  if (filter.rule) list.bind(index++, std::string_view(*filter.rule));
  if (filter.since) list.bind(index++, to_unix_ms(*filter.since));
  list.bind(index, static_cast<int64_t>(filter.limit) + 1);

  AlertPage page;
  for (;;) {
    Result<bool> row = list.step("list alerts");
    if (!row) return fail(row.error());
    if (!*row) break;
    if (page.alerts.size() == static_cast<size_t>(filter.limit)) {
      page.next_cursor = std::to_string(page.alerts.back().id);
      break;
    }
    page.alerts.push_back(read_alert(list));
  }
  return page;
}

Result<AlertRecord> SqliteStore::acknowledge_alert(int64_t id, Timestamp now) {
  std::lock_guard lock(mutex_);
  Statement& acknowledge = acknowledge_alert_;
  ScopedReset reset(acknowledge);
  acknowledge.bind(1, id);
  acknowledge.bind(2, to_unix_ms(now));
  Result<bool> row = acknowledge.step("acknowledge alert");
  if (!row) return fail(row.error());
  if (!*row) return fail(alert_not_found(id));
  AlertRecord alert = read_alert(acknowledge);
  if (Result<void> done = acknowledge.run("acknowledge alert"); !done) return fail(done.error());
  return alert;
}

// --- Rotation reminders ----------------------------------------------------------------------

Result<std::vector<RotationDue>> SqliteStore::keys_due_for_rotation(Timestamp before,
                                                                    Timestamp now) {
  std::lock_guard lock(mutex_);
  Statement& query = list_rotation_due_;
  ScopedReset reset(query);
  query.bind(1, to_unix_ms(before));
  query.bind(2, to_unix_ms(now));
  std::vector<RotationDue> due;
  for (;;) {
    Result<bool> row = query.step("list keys due for rotation");
    if (!row) return fail(row.error());
    if (!*row) break;
    due.push_back(RotationDue{query.column_text(0), from_unix_ms(query.column_int64(1))});
  }
  return due;
}

}  // namespace till::sqlite
