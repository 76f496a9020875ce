// SqliteStore: the embedded SQLite backend of Store (include/till/store.h), the default for
// `till serve`. Internal to src/store; the rest of till reaches it through open_sqlite_store().
//
// Two databases: <name>.db holds keys, budget, credentials and alerts; <name>-usage.db the usage
// events, the busiest writes of all, so that they never wait for, nor make wait, a budget
// transaction (SQLite locks a whole database file for a write).
//
// Concurrency: one SQLite connection per database, each guarded by its own mutex. Every method
// holds its database's mutex for its whole duration (delete_usage_events_before for each of its
// batches), so calls from the threads of one process are serialised per database; a budget
// operation is a few microseconds of work plus one WAL append. Other processes sharing the files
// are serialised by SQLite's own locking: every
// write is a BEGIN IMMEDIATE transaction, so read-check-write sequences (reserve, settle) are
// atomic across processes too. A call that cannot get the lock within the busy timeout fails with
// kUnavailable (retryable).
//
// Durability: a reservation or settlement is committed to the WAL before the call returns and so
// survives a crash or kill -9 of the process; see connection.cc for the power-loss trade-off.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/sqlite/connection.h"
#include "store/sqlite/statement.h"
#include "till/store.h"

namespace till::sqlite {

struct SqliteStoreOptions {
  // How long a call waits for another process's lock before failing with kUnavailable.
  std::chrono::milliseconds busy_timeout{5000};
};

// The usage database beside the main one at `path`: "dir/till.db" → "dir/till-usage.db".
std::string usage_database_path(const std::string& path);

// open_sqlite_store(path) with explicit options (tests shorten the busy timeout).
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path,
                                                 const SqliteStoreOptions& options);

class SqliteStore final : public Store {
 public:
  // Compiles the store's statements on connections to the two databases whose schemas are up to
  // date, and finishes the usage database's upgrade (move_legacy_usage_events).
  static Result<std::unique_ptr<SqliteStore>> create(std::unique_ptr<Connection> connection,
                                                     std::unique_ptr<Connection> usage_connection);

  Result<void> insert_key(const KeyRecord& key) override;
  Result<KeyRecord> find_key(std::string_view id) override;
  Result<KeyPage> list_keys(const KeyFilter& filter) override;
  Result<KeyRecord> set_status(std::string_view id, KeyStatus status, Timestamp now) override;
  Result<std::vector<std::string>> descendant_ids(std::string_view id) override;
  Result<int64_t> expire_keys(Timestamp now) override;
  Result<KeyRecord> rotate_token(std::string_view id, const SecretHash& secret_hash,
                                 uint32_t seal_version, Timestamp previous_valid_until,
                                 Timestamp now) override;
  Result<std::vector<std::string>> keys_sealed_under(uint32_t version, Timestamp now) override;

  Result<Reservation> reserve(std::string_view key_id, const Budget& amount,
                              Timestamp now) override;
  Result<KeyRecord> resize(std::string_view reservation_id, const Usage& consumed,
                           const Budget& new_amount, Timestamp now) override;
  Result<KeyRecord> settle(std::string_view reservation_id, const Usage& actual,
                           Timestamp now) override;
  Result<int64_t> settle_orphaned_reservations(Timestamp now) override;

  Result<void> insert_credential(const CredentialRecord& credential) override;
  Result<CredentialRecord> find_credential(std::string_view name) override;
  Result<std::vector<CredentialRecord>> list_credentials() override;
  Result<void> update_credential(const CredentialRecord& credential) override;
  Result<std::vector<std::string>> keys_using_credential(std::string_view name) override;
  Result<void> delete_credential(std::string_view name, bool force) override;

  Result<void> append_usage_events(std::span<const UsageEvent> events) override;
  Result<std::vector<UsageSeries>> usage_summary(const UsageFilter& filter, UsageBucket bucket,
                                                 UsageGroup group) override;
  Result<UsageEventPage> list_usage_events(const UsageFilter& filter, std::string_view cursor,
                                           int limit) override;
  Result<int64_t> delete_usage_events_before(Timestamp before) override;
  Result<AlertRecord> insert_alert(const AlertRecord& alert) override;
  Result<AlertPage> list_alerts(const AlertFilter& filter) override;
  Result<AlertRecord> acknowledge_alert(int64_t id, Timestamp now) override;
  Result<std::vector<RotationDue>> keys_due_for_rotation(Timestamp before, Timestamp now) override;

  Result<void> insert_admin_key(const AdminKeyRecord& key) override;
  Result<AdminKeyRecord> find_admin_key(std::string_view id) override;
  Result<int64_t> count_admin_keys() override;

 private:
  // A reservation row removed from the table, about to be charged to its key.
  struct TakenReservation {
    std::string key_id;
    Budget amount;
  };

  SqliteStore(std::unique_ptr<Connection> connection, std::unique_ptr<Connection> usage_connection,
              uint64_t reservation_id_prefix);

  // REQUIRES: mutex_ held (all helpers below too).
  Result<std::optional<KeyRecord>> find_key_locked(std::string_view id);
  // The same, kNotFound when there is none.
  Result<KeyRecord> existing_key_locked(std::string_view id);
  // Writes the key's status, updated_at and counters.
  Result<void> write_key_state(const KeyRecord& key);
  // Deletes the reservation and returns what it held; nullopt if there is none.
  // REQUIRES: inside a write transaction.
  Result<std::optional<TakenReservation>> take_reservation(std::string_view reservation_id);
  // Inserts a reservation row. REQUIRES: inside a write transaction.
  Result<void> insert_reservation_row(const Reservation& reservation);
  // The key a taken reservation belongs to. REQUIRES: inside a write transaction.
  Result<KeyRecord> reserved_key(const TakenReservation& reservation);
  // In memory: replaces `held` by `actual` on the key and applies the exhaustion rule.
  Result<void> charge(KeyRecord& key, const Budget& held, const Usage& actual, Timestamp now);
  // Charges a taken reservation to its key, writes it and its ancestors.
  // REQUIRES: inside a write transaction.
  Result<KeyRecord> charge_reservation(const TakenReservation& reservation, const Usage& actual,
                                       Timestamp now);
  // After a key changed from `before` to `key` (already written): adds its usage growth to its
  // parent's, moves the parent's hold to carve_of(key), and so on up to the root key. Sets
  // key.carved. REQUIRES: inside a write transaction.
  Result<void> propagate_to_ancestors(const KeyRecord& before, KeyRecord& key, Timestamp now);
  // Holds a new sub-key's limits on its parent and sets child.carved. REQUIRES: as above.
  Result<void> carve_from_parent(KeyRecord& child);
  // Sets one key's status (active becomes exhausted if its budget is used up), writes it and
  // propagates. REQUIRES: inside a write transaction.
  Result<void> apply_status(KeyRecord& key, KeyStatus status, Timestamp now);
  // Descendants of `id`, parents before children.
  Result<std::vector<std::string>> descendants_locked(std::string_view id);
  Result<std::vector<std::string>> keys_using_credential_locked(std::string_view name);
  // The first column of every row of a bound query.
  Result<std::vector<std::string>> collect_ids(Statement& query, std::string_view operation);
  // The compiled list statement for the filters `filter` uses (compiled on first use).
  Result<Statement*> list_statement(const KeyFilter& filter);
  std::string next_reservation_id();

  // Usage events (sqlite_usage_events.cc).
  // Compiles the fixed usage statements below; called once by create().
  Result<void> prepare_usage_statements();
  // Moves the events of migration 1's usage_events table, if it is still there, into blocks
  // (keeping their ids) and drops it, in one transaction; called once by create().
  Result<void> move_legacy_usage_events();
  // Stores events with the given ids as blocks (usage_event_codec.h) of consecutive events.
  // REQUIRES: usage_mutex_ held, inside a write transaction of usage_connection_; ids as
  // encode_usage_events requires, above every id stored.
  Result<void> insert_usage_blocks(std::span<const UsageEvent> events,
                                   std::span<const int64_t> ids);
  // The compiled summary statement for the filters and grouping (compiled on first use, then
  // cached).
  Result<Statement*> usage_summary_statement(const UsageFilter& filter, UsageGroup group);

  // Alerts and rotation reminders (sqlite_monitoring.cc).
  // Compiles the fixed statements below; called once by create().
  Result<void> prepare_monitoring_statements();
  // The compiled list statement for the filters a query uses (compiled on first use, then cached).
  Result<Statement*> list_alerts_statement(const AlertFilter& filter);

  std::mutex mutex_;  // the main database's
  std::unique_ptr<Connection> connection_;
  std::mutex usage_mutex_;  // the usage database's; never held together with mutex_
  std::unique_ptr<Connection> usage_connection_;
  Statement insert_key_;
  Statement key_exists_;
  Statement find_key_;
  Statement write_key_state_;
  Statement insert_reservation_;
  Statement take_reservation_;
  Statement list_reservation_ids_;
  Statement insert_admin_key_;
  Statement find_admin_key_;
  Statement count_admin_keys_;
  Statement list_children_;
  Statement list_expired_;
  Statement write_key_token_;
  Statement list_sealed_under_;
  Statement insert_credential_;
  Statement find_credential_;
  Statement list_credentials_;
  Statement update_credential_;
  Statement list_credential_users_;
  Statement delete_credential_;
  // Indexed by which filters are set: bit 0 status, bit 1 provider, bit 2 name, bit 3 parent.
  std::array<std::optional<Statement>, 16> list_keys_;
  // On usage_connection_, guarded by usage_mutex_:
  Statement take_usage_event_ids_;
  Statement insert_usage_block_;
  Statement find_usage_block_;
  Statement usage_blocks_overlapping_;
  Statement rewrite_usage_block_;
  Statement delete_old_usage_blocks_;
  Statement add_usage_minute_;
  Statement delete_usage_minutes_before_;
  // Where reads decode blocks: kept from read to read, so that they reuse its memory.
  std::vector<UsageEvent> decoded_events_;
  // On connection_, guarded by mutex_:
  Statement insert_alert_;
  Statement acknowledge_alert_;
  Statement list_rotation_due_;
  // On usage_connection_. Usage filters set: bit 0 key, bit 1 provider, bit 2 model, plus
  // 8 * UsageGroup.
  std::array<std::optional<Statement>, 32> usage_summary_;
  // Alert filters set: bit 0 key, bit 1 rule, bit 2 since, plus 8 * (0: either, 1: open,
  // 2: acknowledged).
  std::array<std::optional<Statement>, 24> list_alerts_;
  const uint64_t reservation_id_prefix_;  // random per open, so ids never repeat across opens
  uint64_t reservation_counter_ = 0;
};

}  // namespace till::sqlite
