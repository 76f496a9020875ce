// SqliteStore: alerts and rotation reminders (usage events are in sqlite_usage_events.cc; keys,
// budgets and credentials in sqlite_store.cc). Schema: migration 3 in migrations.cc.
#include <mutex>
#include <utility>

#include "store/sqlite/list_cursor.h"
#include "store/sqlite/sqlite_store.h"

namespace till::sqlite {
namespace {

// The columns every alert query selects, in this order (read_alert).
constexpr std::string_view kAlertColumns =
    "id, key_id, rule, severity, message, action, created_at_ms, acknowledged_at_ms";

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

Error alert_not_found(int64_t id) {
  return Error::client(ErrorCode::kNotFound, "no alert with id " + std::to_string(id));
}

}  // namespace

Result<void> SqliteStore::prepare_monitoring_statements() {
  const std::string alert_columns(kAlertColumns);
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
