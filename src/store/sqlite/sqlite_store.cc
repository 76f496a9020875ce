#include "store/sqlite/sqlite_store.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <random>
#include <utility>

#include "store/sqlite/migrations.h"
#include "store/sqlite/string_list_codec.h"

namespace till {

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
  return sqlite::open_sqlite_store(path, sqlite::SqliteStoreOptions{});
}

namespace sqlite {
namespace {

// Statuses are stored by their names in till/key.h (to_string / parse_key_status). Migration 1
// pins those names in a CHECK constraint: renaming a status needs a migration.

// The columns every key query selects, in the order of KeyColumn.
constexpr std::string_view kKeyColumns =
    "id, name, provider, metadata_json, status, secret_hash, max_requests, max_tokens, "
    "max_spend_nanos, models, allowed_cidrs, rpm, max_concurrency, expires_at_ms, created_at_ms, "
    "updated_at_ms, parent_id, credential, used_requests, used_input_tokens, "
    "used_cached_input_tokens, used_output_tokens, used_reasoning_tokens, used_unmetered_tokens, "
    "used_spend_nanos, reserved_requests, reserved_tokens, reserved_spend_nanos, seq";

enum KeyColumn {
  kId,
  kName,
  kProvider,
  kMetadataJson,
  kStatus,
  kSecretHash,
  kMaxRequests,
  kMaxTokens,
  kMaxSpendNanos,
  kModels,
  kAllowedCidrs,
  kRpm,
  kMaxConcurrency,
  kExpiresAtMs,
  kCreatedAtMs,
  kUpdatedAtMs,
  kParentId,
  kCredential,
  kUsedRequests,
  kUsedInputTokens,
  kUsedCachedInputTokens,
  kUsedOutputTokens,
  kUsedReasoningTokens,
  kUsedUnmeteredTokens,
  kUsedSpendNanos,
  kReservedRequests,
  kReservedTokens,
  kReservedSpendNanos,
  kSeq,
};

Error corrupt(std::string_view what, std::string_view id) {
  return Error::internal("corrupt database row: " + std::string(what) + " of " + std::string(id));
}

Result<SecretHash> read_hash(const Statement& row, int column, std::string_view id) {
  std::span<const uint8_t> blob = row.column_blob(column);
  SecretHash hash;
  if (blob.size() != hash.size()) return fail(corrupt("secret_hash", id));
  std::copy(blob.begin(), blob.end(), hash.begin());
  return hash;
}

std::optional<Timestamp> optional_time(const std::optional<int64_t>& ms) {
  if (!ms) return std::nullopt;
  return from_unix_ms(*ms);
}

std::optional<int64_t> optional_ms(const std::optional<Timestamp>& t) {
  if (!t) return std::nullopt;
  return to_unix_ms(*t);
}

// The key on the current row of a statement that selected kKeyColumns.
Result<KeyRecord> read_key(const Statement& row) {
  KeyRecord key;
  key.id = row.column_text(kId);
  key.name = row.column_text(kName);
  key.provider = row.column_text(kProvider);
  key.metadata_json = row.column_text(kMetadataJson);
  std::optional<KeyStatus> status = parse_key_status(row.column_text(kStatus));
  if (!status) return fail(corrupt("status", key.id));
  key.status = *status;
  Result<SecretHash> hash = read_hash(row, kSecretHash, key.id);
  if (!hash) return fail(hash.error());
  key.secret_hash = *hash;
  key.limits.max_requests = row.column_optional_int64(kMaxRequests);
  key.limits.max_tokens = row.column_optional_int64(kMaxTokens);
  if (std::optional<int64_t> nanos = row.column_optional_int64(kMaxSpendNanos)) {
    key.limits.max_spend = Money::from_nanos(*nanos);
  }
  std::optional<std::vector<std::string>> models = decode_string_list(row.column_text(kModels));
  std::optional<std::vector<std::string>> cidrs =
      decode_string_list(row.column_text(kAllowedCidrs));
  if (!models || !cidrs) return fail(corrupt("scope", key.id));
  key.scope.models = std::move(*models);
  key.scope.allowed_cidrs = std::move(*cidrs);
  key.scope.rpm = row.column_optional_int64(kRpm);
  key.scope.max_concurrency = row.column_optional_int64(kMaxConcurrency);
  key.expires_at = optional_time(row.column_optional_int64(kExpiresAtMs));
  key.created_at = from_unix_ms(row.column_int64(kCreatedAtMs));
  key.updated_at = from_unix_ms(row.column_int64(kUpdatedAtMs));
  key.parent_id = row.column_optional_text(kParentId);
  key.credential = row.column_optional_text(kCredential);
  key.used.requests = row.column_int64(kUsedRequests);
  key.used.input_tokens = row.column_int64(kUsedInputTokens);
  key.used.cached_input_tokens = row.column_int64(kUsedCachedInputTokens);
  key.used.output_tokens = row.column_int64(kUsedOutputTokens);
  key.used.reasoning_tokens = row.column_int64(kUsedReasoningTokens);
  key.used.unmetered_tokens = row.column_int64(kUsedUnmeteredTokens);
  key.used.spend = Money::from_nanos(row.column_int64(kUsedSpendNanos));
  key.reserved.requests = row.column_int64(kReservedRequests);
  key.reserved.tokens = row.column_int64(kReservedTokens);
  key.reserved.spend = Money::from_nanos(row.column_int64(kReservedSpendNanos));
  return key;
}

// Adds without overflow; nullopt if the sum does not fit.
std::optional<int64_t> add(int64_t a, int64_t b) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

Error too_large(std::string_view what) {
  return Error::invalid(std::string(what), std::string(what) + " is too large");
}

Error negative(std::string_view what) {
  return Error::invalid(std::string(what), std::string(what) + " must not be negative");
}

Result<void> check_amount(const Budget& amount) {
  if (amount.requests < 0 || amount.tokens < 0 || amount.spend.nanos() < 0) {
    return fail(negative("amount"));
  }
  return {};
}

Result<void> check_usage(const Usage& usage) {
  for (int64_t value :
       {usage.requests, usage.input_tokens, usage.cached_input_tokens, usage.output_tokens,
        usage.reasoning_tokens, usage.unmetered_tokens, usage.spend.nanos()}) {
    if (value < 0) return fail(negative("usage"));
  }
  return {};
}

// One budget dimension of a key as the limit checks see it.
struct Dimension {
  std::string_view name;  // as named in kLimitExhausted messages
  std::optional<int64_t> limit;
  int64_t used;
  int64_t reserved;
};

std::array<Dimension, 3> dimensions(const KeyRecord& key) {
  std::optional<int64_t> max_spend;
  if (key.limits.max_spend) max_spend = key.limits.max_spend->nanos();
  return {{
      {"requests", key.limits.max_requests, key.used.requests, key.reserved.requests},
      {"tokens", key.limits.max_tokens, key.used.tokens(), key.reserved.tokens},
      {"spend", max_spend, key.used.spend.nanos(), key.reserved.spend.nanos()},
  }};
}

// True if `amount` more fits under the dimension's limit: used + reserved + amount <= limit.
bool fits(const Dimension& dimension, int64_t amount) {
  if (!dimension.limit) return true;
  std::optional<int64_t> held = add(dimension.used, dimension.reserved);
  std::optional<int64_t> total = held ? add(*held, amount) : std::nullopt;
  return total && *total <= *dimension.limit;
}

// The first limited dimension with used >= limit, if any.
std::optional<std::string_view> exhausted_dimension(const KeyRecord& key) {
  for (const Dimension& dimension : dimensions(key)) {
    if (dimension.limit && dimension.used >= *dimension.limit) return dimension.name;
  }
  return std::nullopt;
}

Error limit_exhausted(std::string_view dimension) {
  return Error::client(ErrorCode::kLimitExhausted,
                       "the key's " + std::string(dimension) + " limit is exhausted: not enough " +
                           std::string(dimension) + " budget remains for this request");
}

// The refusal for a key whose stored status is not active.
Error not_active(const KeyRecord& key) {
  switch (key.status) {
    case KeyStatus::kRevoked:
      return Error::client(ErrorCode::kKeyRevoked, "the key " + key.id + " has been revoked");
    case KeyStatus::kSuspended:
      return Error::client(ErrorCode::kKeySuspended,
                           "the key " + key.id + " is suspended; it can be resumed by an admin");
    case KeyStatus::kExpired:
      return Error::client(ErrorCode::kKeyExpired, "the key " + key.id + " has expired");
    case KeyStatus::kExhausted:
    case KeyStatus::kActive:
      break;
  }
  std::optional<std::string_view> dimension = exhausted_dimension(key);
  return dimension ? limit_exhausted(*dimension)
                   : Error::client(ErrorCode::kLimitExhausted, "the key's budget is exhausted");
}

Error reservation_not_found(std::string_view id) {
  return Error::client(ErrorCode::kNotFound,
                       "no outstanding reservation with id " + std::string(id));
}

// key.reserved += amount, refusing sums that overflow.
Result<void> hold_more(KeyRecord& key, const Budget& amount) {
  std::optional<int64_t> requests = add(key.reserved.requests, amount.requests);
  std::optional<int64_t> tokens = add(key.reserved.tokens, amount.tokens);
  std::optional<int64_t> spend = add(key.reserved.spend.nanos(), amount.spend.nanos());
  if (!requests || !tokens || !spend) return fail(too_large("amount"));
  key.reserved = Budget{*requests, *tokens, Money::from_nanos(*spend)};
  return {};
}

Error key_not_found(std::string_view id) {
  return Error::client(ErrorCode::kNotFound, "no key with id " + std::string(id));
}

// A list cursor is the decimal `seq` of the last key of the previous page: digits only, no
// leading zero, within 1..INT64_MAX.
std::optional<int64_t> parse_cursor(std::string_view cursor) {
  if (cursor.empty() || cursor.front() < '1' || cursor.front() > '9') return std::nullopt;
  int64_t seq = 0;
  auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), seq);
  if (ec != std::errc() || end != cursor.data() + cursor.size()) return std::nullopt;
  return seq;
}

constexpr int kMaxListLimit = 1000;

uint64_t random_prefix() {
  std::random_device device;  // /dev/urandom or the CPU's generator
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path,
                                                 const SqliteStoreOptions& options) {
  Result<std::unique_ptr<Connection>> connection = Connection::open(path, options.busy_timeout);
  if (!connection) return fail(connection.error());
  if (Result<void> migrated = apply_migrations(**connection, system_clock().now()); !migrated) {
    return fail(migrated.error());
  }
  Result<std::unique_ptr<SqliteStore>> store = SqliteStore::create(std::move(*connection));
  if (!store) return fail(store.error());
  return std::unique_ptr<Store>(std::move(*store));
}

SqliteStore::SqliteStore(std::unique_ptr<Connection> connection, uint64_t reservation_id_prefix)
    : connection_(std::move(connection)), reservation_id_prefix_(reservation_id_prefix) {}

Result<std::unique_ptr<SqliteStore>> SqliteStore::create(std::unique_ptr<Connection> connection) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(std::move(connection), random_prefix()));
  const std::string columns(kKeyColumns);
  const std::pair<Statement*, std::string> statements[] = {
      {&store->insert_key_,
       "INSERT INTO keys (id, seq, name, provider, metadata_json, status, secret_hash, "
       "max_requests, max_tokens, max_spend_nanos, models, allowed_cidrs, rpm, max_concurrency, "
       "expires_at_ms, created_at_ms, updated_at_ms, parent_id, credential) "
       // seq: one more than the newest key. Writers are serialised, so it is unique and grows.
       "VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM keys), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
       "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"},
      {&store->key_exists_, "SELECT 1 FROM keys WHERE id = ?"},
      {&store->find_key_, "SELECT " + columns + " FROM keys WHERE id = ?"},
      {&store->write_key_state_,
       "UPDATE keys SET status = ?2, updated_at_ms = ?3, used_requests = ?4, "
       "used_input_tokens = ?5, used_cached_input_tokens = ?6, used_output_tokens = ?7, "
       "used_reasoning_tokens = ?8, used_unmetered_tokens = ?9, used_spend_nanos = ?10, "
       "reserved_requests = ?11, reserved_tokens = ?12, reserved_spend_nanos = ?13 WHERE id = ?1"},
      {&store->insert_reservation_,
       "INSERT INTO reservations (id, key_id, requests, tokens, spend_nanos, created_at_ms) "
       "VALUES (?, ?, ?, ?, ?, ?)"},
      {&store->take_reservation_,
       "DELETE FROM reservations WHERE id = ? RETURNING key_id, requests, tokens, spend_nanos"},
      {&store->list_reservation_ids_, "SELECT id FROM reservations ORDER BY created_at_ms, id"},
      {&store->insert_admin_key_,
       "INSERT INTO admin_keys (id, name, secret_hash, created_at_ms, revoked_at_ms) "
       "VALUES (?, ?, ?, ?, ?)"},
      {&store->find_admin_key_,
       "SELECT id, name, secret_hash, created_at_ms, revoked_at_ms FROM admin_keys WHERE id = ?"},
      {&store->count_admin_keys_, "SELECT count(*) FROM admin_keys WHERE revoked_at_ms IS NULL"},
  };
  for (const auto& [statement, sql] : statements) {
    Result<Statement> prepared = store->connection_->prepare(sql);
    if (!prepared) return fail(prepared.error());
    *statement = std::move(*prepared);
  }
  return store;
}

std::string SqliteStore::next_reservation_id() {
  char id[4 + 32 + 1];
  std::snprintf(id, sizeof id, "rsv_%016llx%016llx",
                static_cast<unsigned long long>(reservation_id_prefix_),
                static_cast<unsigned long long>(++reservation_counter_));
  return id;
}

// --- Keys ------------------------------------------------------------------------------------

Result<void> SqliteStore::insert_key(const KeyRecord& key) {
  if (key.used != Usage{}) return fail(Error::invalid("used", "a new key must have no usage"));
  if (key.reserved != Budget{}) {
    return fail(Error::invalid("reserved", "a new key must have nothing reserved"));
  }
  std::lock_guard lock(mutex_);
  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());

  if (key.parent_id) {
    ScopedReset reset(key_exists_);
    key_exists_.bind(1, std::string_view(*key.parent_id));
    Result<bool> exists = key_exists_.step("insert key (parent lookup)");
    if (!exists) return fail(exists.error());
    if (!*exists) {
      return fail(Error::client(ErrorCode::kNotFound, "no parent key with id " + *key.parent_id,
                                "parent_id"));
    }
  }

  ScopedReset reset(insert_key_);
  Statement& insert = insert_key_;
  insert.bind(1, std::string_view(key.id));
  insert.bind(2, std::string_view(key.name));
  insert.bind(3, std::string_view(key.provider));
  insert.bind(4, std::string_view(key.metadata_json));
  insert.bind(5, to_string(key.status));
  insert.bind(6, std::span<const uint8_t>(key.secret_hash));
  insert.bind(7, key.limits.max_requests);
  insert.bind(8, key.limits.max_tokens);
  insert.bind(9, key.limits.max_spend ? std::optional<int64_t>(key.limits.max_spend->nanos())
                                      : std::nullopt);
  insert.bind(10, std::string_view(encode_string_list(key.scope.models)));
  insert.bind(11, std::string_view(encode_string_list(key.scope.allowed_cidrs)));
  insert.bind(12, key.scope.rpm);
  insert.bind(13, key.scope.max_concurrency);
  insert.bind(14, optional_ms(key.expires_at));
  insert.bind(15, to_unix_ms(key.created_at));
  insert.bind(16, to_unix_ms(key.updated_at));
  insert.bind(17, key.parent_id);
  insert.bind(18, key.credential);
  if (Result<void> inserted = insert.run("insert key"); !inserted) {
    Error error = std::move(inserted.error());
    if (error.code == ErrorCode::kConflict) error.message = "a key with id " + key.id + " exists";
    return fail(std::move(error));
  }
  return transaction->commit();
}

Result<std::optional<KeyRecord>> SqliteStore::find_key_locked(std::string_view id) {
  ScopedReset reset(find_key_);
  find_key_.bind(1, id);
  Result<bool> row = find_key_.step("find key");
  if (!row) return fail(row.error());
  if (!*row) return std::nullopt;
  Result<KeyRecord> key = read_key(find_key_);
  if (!key) return fail(key.error());
  return std::move(*key);
}

Result<KeyRecord> SqliteStore::find_key(std::string_view id) {
  std::lock_guard lock(mutex_);
  Result<std::optional<KeyRecord>> key = find_key_locked(id);
  if (!key) return fail(key.error());
  if (!*key) return fail(key_not_found(id));
  return std::move(**key);
}

Result<Statement*> SqliteStore::list_statement(const KeyFilter& filter) {
  size_t variant = (filter.status ? 1 : 0) | (filter.provider ? 2 : 0) | (filter.name ? 4 : 0);
  std::optional<Statement>& cached = list_keys_[variant];
  if (!cached) {
    std::string sql = "SELECT " + std::string(kKeyColumns) + " FROM keys WHERE seq < ?";
    if (filter.status) sql += " AND status = ?";
    if (filter.provider) sql += " AND provider = ?";
    if (filter.name) sql += " AND name = ?";
    sql += " ORDER BY seq DESC LIMIT ?";
    Result<Statement> prepared = connection_->prepare(sql);
    if (!prepared) return fail(prepared.error());
    cached = std::move(*prepared);
  }
  return &*cached;
}

Result<KeyPage> SqliteStore::list_keys(const KeyFilter& filter) {
  if (filter.limit < 1 || filter.limit > kMaxListLimit) {
    return fail(
        Error::invalid("limit", "limit must be between 1 and " + std::to_string(kMaxListLimit)));
  }
  int64_t before_seq = std::numeric_limits<int64_t>::max();
  if (!filter.cursor.empty()) {
    std::optional<int64_t> seq = parse_cursor(filter.cursor);
    if (!seq) return fail(Error::invalid("cursor", "cursor is not one this server handed out"));
    before_seq = *seq;
  }

  std::lock_guard lock(mutex_);
  Result<Statement*> statement = list_statement(filter);
  if (!statement) return fail(statement.error());
  Statement& list = **statement;
  ScopedReset reset(list);
  int index = 1;
  list.bind(index++, before_seq);
  if (filter.status) list.bind(index++, to_string(*filter.status));
  if (filter.provider) list.bind(index++, std::string_view(*filter.provider));
  if (filter.name) list.bind(index++, std::string_view(*filter.name));
  // One row more than the page tells whether another page follows.
  list.bind(index++, static_cast<int64_t>(filter.limit) + 1);

  KeyPage page;
  int64_t last_seq = 0;
  for (;;) {
    Result<bool> row = list.step("list keys");
    if (!row) return fail(row.error());
    if (!*row) break;
    if (page.keys.size() == static_cast<size_t>(filter.limit)) {
      page.next_cursor = std::to_string(last_seq);
      break;
    }
    Result<KeyRecord> key = read_key(list);
    if (!key) return fail(key.error());
    page.keys.push_back(std::move(*key));
    last_seq = list.column_int64(kSeq);
  }
  return page;
}

Result<void> SqliteStore::write_key_state(const KeyRecord& key) {
  Statement& write = write_key_state_;
  ScopedReset reset(write);
  write.bind(1, std::string_view(key.id));
  write.bind(2, to_string(key.status));
  write.bind(3, to_unix_ms(key.updated_at));
  write.bind(4, key.used.requests);
  write.bind(5, key.used.input_tokens);
  write.bind(6, key.used.cached_input_tokens);
  write.bind(7, key.used.output_tokens);
  write.bind(8, key.used.reasoning_tokens);
  write.bind(9, key.used.unmetered_tokens);
  write.bind(10, key.used.spend.nanos());
  write.bind(11, key.reserved.requests);
  write.bind(12, key.reserved.tokens);
  write.bind(13, key.reserved.spend.nanos());
  return write.run("update key");
}

Result<KeyRecord> SqliteStore::set_status(std::string_view id, KeyStatus status, Timestamp now) {
  std::lock_guard lock(mutex_);
  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  Result<std::optional<KeyRecord>> found = find_key_locked(id);
  if (!found) return fail(found.error());
  if (!*found) return fail(key_not_found(id));
  KeyRecord key = std::move(**found);

  if (key.status == KeyStatus::kRevoked) {
    if (status == KeyStatus::kRevoked) return key;  // idempotent revoke: nothing changes
    return fail(Error::client(ErrorCode::kConflict,
                              "the key " + key.id + " is revoked; a revoked key cannot change"));
  }
  key.status = status;
  key.updated_at = now;
  if (Result<void> written = write_key_state(key); !written) return fail(written.error());
  if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  return key;
}

// --- Budget ----------------------------------------------------------------------------------

Result<Reservation> SqliteStore::reserve(std::string_view key_id, const Budget& amount,
                                         Timestamp now) {
  if (Result<void> valid = check_amount(amount); !valid) return fail(valid.error());
  std::lock_guard lock(mutex_);
  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  Result<std::optional<KeyRecord>> found = find_key_locked(key_id);
  if (!found) return fail(found.error());
  if (!*found) return fail(key_not_found(key_id));
  KeyRecord& key = **found;
  if (key.status != KeyStatus::kActive) return fail(not_active(key));

  const std::array<int64_t, 3> wanted = {amount.requests, amount.tokens, amount.spend.nanos()};
  const std::array<Dimension, 3> current = dimensions(key);
  for (size_t i = 0; i < current.size(); ++i) {
    if (!fits(current[i], wanted[i])) return fail(limit_exhausted(current[i].name));
  }
  if (Result<void> held = hold_more(key, amount); !held) return fail(held.error());
  if (Result<void> written = write_key_state(key); !written) return fail(written.error());

  Reservation reservation{next_reservation_id(), key.id, amount, now};
  if (Result<void> inserted = insert_reservation_row(reservation); !inserted) {
    return fail(inserted.error());
  }
  if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  return reservation;
}

Result<void> SqliteStore::insert_reservation_row(const Reservation& reservation) {
  Statement& insert = insert_reservation_;
  ScopedReset reset(insert);
  insert.bind(1, std::string_view(reservation.id));
  insert.bind(2, std::string_view(reservation.key_id));
  insert.bind(3, reservation.amount.requests);
  insert.bind(4, reservation.amount.tokens);
  insert.bind(5, reservation.amount.spend.nanos());
  insert.bind(6, to_unix_ms(reservation.created_at));
  return insert.run("insert reservation");
}

Result<KeyRecord> SqliteStore::resize(std::string_view reservation_id, const Usage& consumed,
                                      const Budget& new_amount, Timestamp now) {
  if (Result<void> valid = check_usage(consumed); !valid) return fail(valid.error());
  if (Result<void> valid = check_amount(new_amount); !valid) return fail(valid.error());
  std::lock_guard lock(mutex_);
  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  Result<std::optional<TakenReservation>> taken = take_reservation(reservation_id);
  if (!taken) return fail(taken.error());
  if (!*taken) {
    return fail(reservation_not_found(reservation_id));
  }
  const Budget old_amount = (*taken)->amount;
  Result<KeyRecord> charged = charge(**taken, consumed, now);
  if (!charged) return fail(charged.error());
  KeyRecord& key = *charged;

  // Growing beyond what the reservation still held after `consumed` needs the key's consent.
  const std::array<int64_t, 3> held_after = {
      old_amount.requests - consumed.requests, old_amount.tokens - consumed.tokens(),
      old_amount.spend.nanos() - consumed.spend.nanos()};
  const std::array<int64_t, 3> wanted = {new_amount.requests, new_amount.tokens,
                                         new_amount.spend.nanos()};
  const std::array<Dimension, 3> current = dimensions(key);
  for (size_t i = 0; i < current.size(); ++i) {
    if (!current[i].limit || wanted[i] <= held_after[i]) continue;
    if (key.status != KeyStatus::kActive) return fail(not_active(key));
    if (!fits(current[i], wanted[i])) return fail(limit_exhausted(current[i].name));
  }
  if (Result<void> held = hold_more(key, new_amount); !held) return fail(held.error());
  if (Result<void> written = write_key_state(key); !written) return fail(written.error());
  Reservation resized{std::string(reservation_id), key.id, new_amount, now};
  if (Result<void> inserted = insert_reservation_row(resized); !inserted) {
    return fail(inserted.error());
  }
  if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  return std::move(key);
}

Result<std::optional<SqliteStore::TakenReservation>> SqliteStore::take_reservation(
    std::string_view reservation_id) {
  Statement& take = take_reservation_;
  ScopedReset reset(take);
  take.bind(1, reservation_id);
  Result<bool> row = take.step("delete reservation");
  if (!row) return fail(row.error());
  if (!*row) return std::nullopt;
  TakenReservation taken{take.column_text(0), Budget{take.column_int64(1), take.column_int64(2),
                                                     Money::from_nanos(take.column_int64(3))}};
  // Stepping to the end completes the statement before it is reset.
  if (Result<void> done = take.run("delete reservation"); !done) return fail(done.error());
  return taken;
}

Result<KeyRecord> SqliteStore::charge(const TakenReservation& reservation, const Usage& actual,
                                      Timestamp now) {
  Result<std::optional<KeyRecord>> found = find_key_locked(reservation.key_id);
  if (!found) return fail(found.error());
  // The foreign key of reservations.key_id makes this a corrupt database, not a caller error.
  if (!*found) return fail(corrupt("reservation whose key is missing", reservation.key_id));
  KeyRecord key = std::move(**found);

  Usage& used = key.used;
  std::optional<int64_t> sums[] = {
      add(used.requests, actual.requests),
      add(used.input_tokens, actual.input_tokens),
      add(used.cached_input_tokens, actual.cached_input_tokens),
      add(used.output_tokens, actual.output_tokens),
      add(used.reasoning_tokens, actual.reasoning_tokens),
      add(used.unmetered_tokens, actual.unmetered_tokens),
      add(used.spend.nanos(), actual.spend.nanos()),
  };
  for (const std::optional<int64_t>& sum : sums) {
    if (!sum) return fail(too_large("usage"));
  }
  used = Usage{
      *sums[0], *sums[1], *sums[2], *sums[3], *sums[4], *sums[5], Money::from_nanos(*sums[6])};
  // Usage::tokens() must not overflow either.
  std::optional<int64_t> metered = add(used.input_tokens, used.output_tokens);
  if (!metered || !add(*metered, used.unmetered_tokens)) return fail(too_large("usage"));
  key.reserved.requests -= reservation.amount.requests;
  key.reserved.tokens -= reservation.amount.tokens;
  key.reserved.spend -= reservation.amount.spend;
  if (key.status == KeyStatus::kActive && exhausted_dimension(key)) {
    key.status = KeyStatus::kExhausted;
  }
  key.updated_at = now;
  if (Result<void> written = write_key_state(key); !written) return fail(written.error());
  return key;
}

Result<KeyRecord> SqliteStore::settle(std::string_view reservation_id, const Usage& actual,
                                      Timestamp now) {
  if (Result<void> valid = check_usage(actual); !valid) return fail(valid.error());
  std::lock_guard lock(mutex_);
  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  Result<std::optional<TakenReservation>> taken = take_reservation(reservation_id);
  if (!taken) return fail(taken.error());
  if (!*taken) {
    return fail(reservation_not_found(reservation_id));
  }
  Result<KeyRecord> key = charge(**taken, actual, now);
  if (!key) return fail(key.error());
  if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  return key;
}

Result<int64_t> SqliteStore::settle_orphaned_reservations(Timestamp now) {
  std::lock_guard lock(mutex_);
  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());

  // Collected first: rows are deleted while settling, which must not happen under an open scan.
  std::vector<std::string> ids;
  {
    ScopedReset reset(list_reservation_ids_);
    for (;;) {
      Result<bool> row = list_reservation_ids_.step("list orphaned reservations");
      if (!row) return fail(row.error());
      if (!*row) break;
      ids.push_back(list_reservation_ids_.column_text(0));
    }
  }
  for (const std::string& id : ids) {
    Result<std::optional<TakenReservation>> taken = take_reservation(id);
    if (!taken) return fail(taken.error());
    if (!*taken) return fail(Error::internal("reservation " + id + " vanished while settling"));
    // Charged as fully consumed: the tokens have no input/output split, so they are unmetered.
    const Budget& amount = (*taken)->amount;
    Usage consumed{
        .requests = amount.requests, .unmetered_tokens = amount.tokens, .spend = amount.spend};
    if (Result<KeyRecord> key = charge(**taken, consumed, now); !key) return fail(key.error());
  }
  if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  return static_cast<int64_t>(ids.size());
}

// --- Admin keys ------------------------------------------------------------------------------

Result<void> SqliteStore::insert_admin_key(const AdminKeyRecord& key) {
  std::lock_guard lock(mutex_);
  Statement& insert = insert_admin_key_;
  ScopedReset reset(insert);
  insert.bind(1, std::string_view(key.id));
  insert.bind(2, std::string_view(key.name));
  insert.bind(3, std::span<const uint8_t>(key.secret_hash));
  insert.bind(4, to_unix_ms(key.created_at));
  insert.bind(5, optional_ms(key.revoked_at));
  if (Result<void> inserted = insert.run("insert admin key"); !inserted) {
    Error error = std::move(inserted.error());
    if (error.code == ErrorCode::kConflict) {
      error.message = "an admin key with id " + key.id + " exists";
    }
    return fail(std::move(error));
  }
  return {};
}

Result<AdminKeyRecord> SqliteStore::find_admin_key(std::string_view id) {
  std::lock_guard lock(mutex_);
  Statement& find = find_admin_key_;
  ScopedReset reset(find);
  find.bind(1, id);
  Result<bool> row = find.step("find admin key");
  if (!row) return fail(row.error());
  if (!*row) {
    return fail(Error::client(ErrorCode::kNotFound, "no admin key with id " + std::string(id)));
  }
  AdminKeyRecord key;
  key.id = find.column_text(0);
  key.name = find.column_text(1);
  Result<SecretHash> hash = read_hash(find, 2, key.id);
  if (!hash) return fail(hash.error());
  key.secret_hash = *hash;
  key.created_at = from_unix_ms(find.column_int64(3));
  key.revoked_at = optional_time(find.column_optional_int64(4));
  return key;
}

Result<int64_t> SqliteStore::count_admin_keys() {
  std::lock_guard lock(mutex_);
  ScopedReset reset(count_admin_keys_);
  Result<bool> row = count_admin_keys_.step("count admin keys");
  if (!row) return fail(row.error());
  return *row ? count_admin_keys_.column_int64(0) : 0;
}

}  // namespace sqlite
}  // namespace till
