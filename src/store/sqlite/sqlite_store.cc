#include "store/sqlite/sqlite_store.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <utility>

#include "store/sqlite/list_cursor.h"
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
    "used_spend_nanos, reserved_requests, reserved_tokens, reserved_spend_nanos, seal_version, "
    "previous_secret_hash, previous_seal_version, previous_valid_until_ms, rotated_at_ms, "
    "rotate_every_ms, carved_requests, carved_tokens, carved_spend_nanos, seq";

// The columns every credential query selects, in this order (read_credential, bind_credential).
constexpr std::string_view kCredentialColumns =
    "name, provider, master_key_version, wrapped_key, sealed_secret, rotate_every_ms, "
    "created_at_ms, rotated_at_ms, updated_at_ms";

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
  kSealVersion,
  kPreviousSecretHash,
  kPreviousSealVersion,
  kPreviousValidUntilMs,
  kRotatedAtMs,
  kRotateEveryMs,
  kCarvedRequests,
  kCarvedTokens,
  kCarvedSpendNanos,
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
  key.seal_version = static_cast<uint32_t>(row.column_int64(kSealVersion));
  if (!row.column_is_null(kPreviousSecretHash)) {
    Result<SecretHash> previous = read_hash(row, kPreviousSecretHash, key.id);
    if (!previous) return fail(previous.error());
    key.previous_token = PreviousToken{
        *previous,
        static_cast<uint32_t>(row.column_optional_int64(kPreviousSealVersion).value_or(0)),
        from_unix_ms(row.column_optional_int64(kPreviousValidUntilMs).value_or(0))};
  }
  key.rotated_at = optional_time(row.column_optional_int64(kRotatedAtMs)).value_or(key.created_at);
  if (std::optional<int64_t> ms = row.column_optional_int64(kRotateEveryMs)) {
    key.rotate_every = std::chrono::milliseconds(*ms);
  }
  key.carved.requests = row.column_int64(kCarvedRequests);
  key.carved.tokens = row.column_int64(kCarvedTokens);
  key.carved.spend = Money::from_nanos(row.column_int64(kCarvedSpendNanos));
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

// into += delta on every usage figure, refusing sums that overflow (Usage::tokens() included).
Result<void> add_usage(Usage& into, const Usage& delta) {
  std::optional<int64_t> sums[] = {
      add(into.requests, delta.requests),
      add(into.input_tokens, delta.input_tokens),
      add(into.cached_input_tokens, delta.cached_input_tokens),
      add(into.output_tokens, delta.output_tokens),
      add(into.reasoning_tokens, delta.reasoning_tokens),
      add(into.unmetered_tokens, delta.unmetered_tokens),
      add(into.spend.nanos(), delta.spend.nanos()),
  };
  for (const std::optional<int64_t>& sum : sums) {
    if (!sum) return fail(too_large("usage"));
  }
  Usage total{
      *sums[0], *sums[1], *sums[2], *sums[3], *sums[4], *sums[5], Money::from_nanos(*sums[6])};
  std::optional<int64_t> metered = add(total.input_tokens, total.output_tokens);
  if (!metered || !add(*metered, total.unmetered_tokens)) return fail(too_large("usage"));
  into = total;
  return {};
}

// What `later` adds to `earlier` (usage only grows).
Usage usage_growth(const Usage& earlier, const Usage& later) {
  return Usage{later.requests - earlier.requests,
               later.input_tokens - earlier.input_tokens,
               later.cached_input_tokens - earlier.cached_input_tokens,
               later.output_tokens - earlier.output_tokens,
               later.reasoning_tokens - earlier.reasoning_tokens,
               later.unmetered_tokens - earlier.unmetered_tokens,
               later.spend - earlier.spend};
}

// What a sub-key's parent must hold in reserve for it (KeyRecord::carved): on each dimension the
// key limits, all it may still spend while it can spend, only what it has in flight once it
// cannot (revoked, expired, exhausted).
Budget carve_of(const KeyRecord& key) {
  if (!key.parent_id) return Budget{};
  const bool can_spend = key.status == KeyStatus::kActive || key.status == KeyStatus::kSuspended;
  const std::array<Dimension, 3> current = dimensions(key);
  std::array<int64_t, 3> carve{};
  for (size_t i = 0; i < current.size(); ++i) {
    const Dimension& dimension = current[i];
    if (!dimension.limit) continue;
    carve[i] = can_spend ? std::max(*dimension.limit - dimension.used, dimension.reserved)
                         : dimension.reserved;
  }
  return Budget{carve[0], carve[1], Money::from_nanos(carve[2])};
}

// The limit field a dimension is set by, for messages about sub-keys.
std::string_view limit_field(std::string_view dimension) {
  if (dimension == "requests") return "max_requests";
  if (dimension == "tokens") return "max_tokens";
  return "max_spend";
}

Error key_not_found(std::string_view id) {
  return Error::client(ErrorCode::kNotFound, "no key with id " + std::string(id));
}

uint64_t random_prefix() {
  std::random_device device;  // /dev/urandom or the CPU's generator
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

}  // namespace

std::string usage_database_path(const std::string& path) {
  constexpr std::string_view kSuffix = ".db";
  if (path.ends_with(kSuffix)) return path.substr(0, path.size() - kSuffix.size()) + "-usage.db";
  return path + "-usage";
}

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path,
                                                 const SqliteStoreOptions& options) {
  const Timestamp now = system_clock().now();
  Result<std::unique_ptr<Connection>> connection = Connection::open(path, options.busy_timeout);
  if (!connection) return fail(connection.error());
  if (Result<void> migrated = apply_migrations(**connection, now); !migrated) {
    return fail(migrated.error());
  }
  Result<std::unique_ptr<Connection>> usage =
      Connection::open(usage_database_path(path), options.busy_timeout);
  if (!usage) return fail(usage.error());
  if (Result<void> migrated = apply_migrations(**usage, now, 0, Schema::kUsage); !migrated) {
    return fail(migrated.error());
  }
  Result<std::unique_ptr<SqliteStore>> store =
      SqliteStore::create(std::move(*connection), std::move(*usage));
  if (!store) return fail(store.error());
  return std::unique_ptr<Store>(std::move(*store));
}

SqliteStore::SqliteStore(std::unique_ptr<Connection> connection,
                         std::unique_ptr<Connection> usage_connection,
                         uint64_t reservation_id_prefix)
    : connection_(std::move(connection)),
      usage_connection_(std::move(usage_connection)),
      reservation_id_prefix_(reservation_id_prefix) {}

Result<std::unique_ptr<SqliteStore>> SqliteStore::create(
    std::unique_ptr<Connection> connection, std::unique_ptr<Connection> usage_connection) {
  std::unique_ptr<SqliteStore> store(
      new SqliteStore(std::move(connection), std::move(usage_connection), random_prefix()));
  const std::string columns(kKeyColumns);
  const std::pair<Statement*, std::string> statements[] = {
      {&store->insert_key_,
       "INSERT INTO keys (id, seq, name, provider, metadata_json, status, secret_hash, "
       "max_requests, max_tokens, max_spend_nanos, models, allowed_cidrs, rpm, max_concurrency, "
       "expires_at_ms, created_at_ms, updated_at_ms, parent_id, credential, seal_version, "
       "rotated_at_ms, rotate_every_ms, carved_requests, carved_tokens, carved_spend_nanos) "
       // seq: one more than the newest key. Writers are serialised, so it is unique and grows.
       "VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM keys), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
       "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?15, ?20, ?21, ?22, ?23)"},
      {&store->key_exists_, "SELECT 1 FROM keys WHERE id = ?"},
      {&store->find_key_, "SELECT " + columns + " FROM keys WHERE id = ?"},
      {&store->write_key_state_,
       "UPDATE keys SET status = ?2, updated_at_ms = ?3, used_requests = ?4, "
       "used_input_tokens = ?5, used_cached_input_tokens = ?6, used_output_tokens = ?7, "
       "used_reasoning_tokens = ?8, used_unmetered_tokens = ?9, used_spend_nanos = ?10, "
       "reserved_requests = ?11, reserved_tokens = ?12, reserved_spend_nanos = ?13, "
       "carved_requests = ?14, carved_tokens = ?15, carved_spend_nanos = ?16 WHERE id = ?1"},
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
      {&store->list_children_, "SELECT id FROM keys WHERE parent_id = ? ORDER BY seq"},
      {&store->list_expired_,
       "SELECT id FROM keys WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ? "
       "AND status IN ('active', 'exhausted', 'suspended') ORDER BY seq"},
      {&store->write_key_token_,
       "UPDATE keys SET secret_hash = ?2, seal_version = ?3, previous_secret_hash = ?4, "
       "previous_seal_version = ?5, previous_valid_until_ms = ?6, rotated_at_ms = ?7, "
       "updated_at_ms = ?7 WHERE id = ?1"},
      {&store->list_sealed_under_,
       "SELECT id FROM keys WHERE status NOT IN ('revoked', 'expired') "
       "AND (expires_at_ms IS NULL OR expires_at_ms > ?2) "
       "AND (seal_version = ?1 OR (previous_seal_version = ?1 AND previous_valid_until_ms > ?2)) "
       "ORDER BY seq"},
      {&store->insert_credential_, "INSERT INTO credentials (" + std::string(kCredentialColumns) +
                                       ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {&store->find_credential_,
       "SELECT " + std::string(kCredentialColumns) + " FROM credentials WHERE name = ?"},
      {&store->list_credentials_,
       "SELECT " + std::string(kCredentialColumns) + " FROM credentials ORDER BY name"},
      // created_at (?7) is kept as it was.
      {&store->update_credential_,
       "UPDATE credentials SET provider = ?2, master_key_version = ?3, wrapped_key = ?4, "
       "sealed_secret = ?5, rotate_every_ms = ?6, rotated_at_ms = ?8, updated_at_ms = ?9 "
       "WHERE name = ?1 RETURNING name"},
      {&store->list_credential_users_,
       "SELECT id FROM keys WHERE credential = ? AND status != 'revoked' ORDER BY seq"},
      {&store->delete_credential_, "DELETE FROM credentials WHERE name = ? RETURNING name"},
  };
  if (Result<void> prepared = store->connection_->prepare_into(statements); !prepared) {
    return fail(prepared.error());
  }
  if (Result<void> prepared = store->prepare_monitoring_statements(); !prepared) {
    return fail(prepared.error());
  }
  if (Result<void> prepared = store->prepare_usage_statements(); !prepared) {
    return fail(prepared.error());
  }
  if (Result<void> moved = store->move_legacy_usage_events(); !moved) return fail(moved.error());
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
  if (key.reserved != Budget{} || key.carved != Budget{}) {
    return fail(Error::invalid("reserved", "a new key must have nothing reserved"));
  }
  std::lock_guard lock(mutex_);
  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());

  KeyRecord inserted = key;
  if (key.parent_id) {
    if (Result<void> carved = carve_from_parent(inserted); !carved) return fail(carved.error());
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
  insert.bind(15, to_unix_ms(key.created_at));  // also rotated_at: the token is new
  insert.bind(16, to_unix_ms(key.updated_at));
  insert.bind(17, key.parent_id);
  insert.bind(18, key.credential);
  insert.bind(19, static_cast<int64_t>(key.seal_version));
  insert.bind(20,
              key.rotate_every ? std::optional<int64_t>(key.rotate_every->count()) : std::nullopt);
  insert.bind(21, inserted.carved.requests);
  insert.bind(22, inserted.carved.tokens);
  insert.bind(23, inserted.carved.spend.nanos());
  if (Result<void> done = insert.run("insert key"); !done) {
    Error error = std::move(done.error());
    if (error.code == ErrorCode::kConflict) error.message = "a key with id " + key.id + " exists";
    return fail(std::move(error));
  }
  return transaction->commit();
}

Result<void> SqliteStore::carve_from_parent(KeyRecord& child) {
  Result<std::optional<KeyRecord>> found = find_key_locked(*child.parent_id);
  if (!found) return fail(found.error());
  if (!*found) {
    return fail(Error::client(ErrorCode::kNotFound, "no parent key with id " + *child.parent_id,
                              "parent_id"));
  }
  KeyRecord& parent = **found;
  if (parent.status != KeyStatus::kActive) return fail(not_active(parent));

  child.carved = carve_of(child);
  const std::array<int64_t, 3> wanted = {child.carved.requests, child.carved.tokens,
                                         child.carved.spend.nanos()};
  const std::array<Dimension, 3> of_child = dimensions(child);
  const std::array<Dimension, 3> of_parent = dimensions(parent);
  for (size_t i = 0; i < of_parent.size(); ++i) {
    const Dimension& dimension = of_parent[i];
    if (!dimension.limit) continue;
    const std::string_view field = limit_field(dimension.name);
    if (!of_child[i].limit) {
      return fail(Error::invalid(std::string(field), std::string(field) + ": the parent key " +
                                                         parent.id + " limits " +
                                                         std::string(dimension.name) +
                                                         ", so its sub-keys must limit them too"));
    }
    if (!fits(dimension, wanted[i])) {
      const int64_t left =
          std::max<int64_t>(0, *dimension.limit - dimension.used - dimension.reserved);
      const auto amount = [&](int64_t v) {
        return dimension.name == "spend" ? "$" + Money::from_nanos(v).to_usd_string()
                                         : std::to_string(v) + " " + std::string(dimension.name);
      };
      return fail(Error::client(ErrorCode::kLimitExhausted,
                                std::string(field) + ": the parent key " + parent.id +
                                    " has only " + amount(left) + " left, not " +
                                    amount(wanted[i]) + " for this sub-key",
                                std::string(field)));
    }
  }
  if (Result<void> held = hold_more(parent, child.carved); !held) return fail(held.error());
  return write_key_state(parent);
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

Result<KeyRecord> SqliteStore::existing_key_locked(std::string_view id) {
  Result<std::optional<KeyRecord>> key = find_key_locked(id);
  if (!key) return fail(key.error());
  if (!*key) return fail(key_not_found(id));
  return std::move(**key);
}

Result<KeyRecord> SqliteStore::find_key(std::string_view id) {
  std::lock_guard lock(mutex_);
  return existing_key_locked(id);
}

Result<Statement*> SqliteStore::list_statement(const KeyFilter& filter) {
  size_t variant = (filter.status ? 1 : 0) | (filter.provider ? 2 : 0) | (filter.name ? 4 : 0) |
                   (filter.parent_id ? 8 : 0);
  return connection_->cached(list_keys_[variant], [&] {
    std::string sql = "SELECT " + std::string(kKeyColumns) + " FROM keys WHERE seq < ?";
    if (filter.status) sql += " AND status = ?";
    if (filter.provider) sql += " AND provider = ?";
    if (filter.name) sql += " AND name = ?";
    if (filter.parent_id) sql += " AND parent_id = ?";
    sql += " ORDER BY seq DESC LIMIT ?";
    return sql;
  });
}

Result<KeyPage> SqliteStore::list_keys(const KeyFilter& filter) {
  if (Result<void> valid = check_list_limit(filter.limit); !valid) return fail(valid.error());
  // The cursor is the seq of the last key of the previous page (list_cursor.h).
  Result<int64_t> before_seq = parse_list_cursor(filter.cursor);
  if (!before_seq) return fail(before_seq.error());

  std::lock_guard lock(mutex_);
  Result<Statement*> statement = list_statement(filter);
  if (!statement) return fail(statement.error());
  Statement& list = **statement;
  ScopedReset reset(list);
  int index = 1;
  list.bind(index++, *before_seq);
  if (filter.status) list.bind(index++, to_string(*filter.status));
  if (filter.provider) list.bind(index++, std::string_view(*filter.provider));
  if (filter.name) list.bind(index++, std::string_view(*filter.name));
  if (filter.parent_id) list.bind(index++, std::string_view(*filter.parent_id));
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
  write.bind(14, key.carved.requests);
  write.bind(15, key.carved.tokens);
  write.bind(16, key.carved.spend.nanos());
  return write.run("update key");
}

Result<void> SqliteStore::apply_status(KeyRecord& key, KeyStatus status, Timestamp now) {
  const KeyRecord before = key;
  key.status =
      status == KeyStatus::kActive && exhausted_dimension(key) ? KeyStatus::kExhausted : status;
  key.updated_at = now;
  if (Result<void> written = write_key_state(key); !written) return fail(written.error());
  return propagate_to_ancestors(before, key, now);
}

Result<KeyRecord> SqliteStore::set_status(std::string_view id, KeyStatus status, Timestamp now) {
  std::lock_guard lock(mutex_);
  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  Result<KeyRecord> found = existing_key_locked(id);
  if (!found) return fail(found.error());
  KeyRecord key = std::move(*found);

  if (key.status == KeyStatus::kRevoked) {
    if (status == KeyStatus::kRevoked) return key;  // idempotent revoke: nothing changes
    return fail(Error::client(ErrorCode::kConflict,
                              "the key " + key.id + " is revoked; a revoked key cannot change"));
  }
  if (status == KeyStatus::kActive && key.parent_id) {
    Result<std::optional<KeyRecord>> parent = find_key_locked(*key.parent_id);
    if (!parent) return fail(parent.error());
    if (!*parent) return fail(corrupt("parent_id naming a missing key", key.id));
    const KeyStatus parent_status = (*parent)->effective_status(now);
    if (parent_status != KeyStatus::kActive && parent_status != KeyStatus::kExhausted) {
      return fail(Error::client(ErrorCode::kConflict, "the key " + key.id +
                                                          " cannot be resumed while its parent " +
                                                          (*parent)->id + " is " +
                                                          std::string(to_string(parent_status))));
    }
  }
  if (Result<void> applied = apply_status(key, status, now); !applied) {
    return fail(applied.error());
  }

  // Descendants follow, parents before children.
  Result<std::vector<std::string>> descendants = descendants_locked(key.id);
  if (!descendants) return fail(descendants.error());
  for (const std::string& descendant_id : *descendants) {
    Result<std::optional<KeyRecord>> loaded = find_key_locked(descendant_id);
    if (!loaded) return fail(loaded.error());
    if (!*loaded) return fail(corrupt("descendant that vanished", descendant_id));
    KeyRecord& descendant = **loaded;
    bool follows = false;
    switch (status) {
      case KeyStatus::kRevoked:
        follows = descendant.status != KeyStatus::kRevoked;
        break;
      case KeyStatus::kSuspended:
        follows =
            descendant.status == KeyStatus::kActive || descendant.status == KeyStatus::kExhausted;
        break;
      case KeyStatus::kActive:
        follows = descendant.status == KeyStatus::kSuspended;
        break;
      case KeyStatus::kExhausted:
      case KeyStatus::kExpired:
        break;
    }
    if (!follows) continue;
    if (Result<void> applied = apply_status(descendant, status, now); !applied) {
      return fail(applied.error());
    }
  }
  // Reloaded: its descendants' changes may have returned budget to it.
  Result<std::optional<KeyRecord>> updated = find_key_locked(id);
  if (!updated) return fail(updated.error());
  if (!*updated) return fail(corrupt("key that vanished", id));
  if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  return std::move(**updated);
}

Result<std::vector<std::string>> SqliteStore::descendants_locked(std::string_view id) {
  std::vector<std::string> found;
  std::vector<std::string> frontier = {std::string(id)};
  while (!frontier.empty()) {
    std::vector<std::string> next;
    for (const std::string& parent : frontier) {
      ScopedReset reset(list_children_);
      list_children_.bind(1, std::string_view(parent));
      for (;;) {
        Result<bool> row = list_children_.step("list sub-keys");
        if (!row) return fail(row.error());
        if (!*row) break;
        next.push_back(list_children_.column_text(0));
      }
    }
    found.insert(found.end(), next.begin(), next.end());
    frontier = std::move(next);
  }
  return found;
}

Result<std::vector<std::string>> SqliteStore::descendant_ids(std::string_view id) {
  std::lock_guard lock(mutex_);
  if (Result<KeyRecord> key = existing_key_locked(id); !key) return fail(key.error());
  return descendants_locked(id);
}

Result<std::vector<std::string>> SqliteStore::collect_ids(Statement& query,
                                                          std::string_view operation) {
  std::vector<std::string> ids;
  for (;;) {
    Result<bool> row = query.step(operation);
    if (!row) return fail(row.error());
    if (!*row) break;
    ids.push_back(query.column_text(0));
  }
  return ids;
}

Result<int64_t> SqliteStore::expire_keys(Timestamp now) {
  std::lock_guard lock(mutex_);
  Result<std::vector<std::string>> due;
  {
    // Looked up first without the write lock: most calls find nothing to do.
    ScopedReset reset(list_expired_);
    list_expired_.bind(1, to_unix_ms(now));
    due = collect_ids(list_expired_, "list expired keys");
  }
  if (!due) return fail(due.error());
  if (due->empty()) return 0;

  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  int64_t changed = 0;
  for (const std::string& id : *due) {
    Result<std::optional<KeyRecord>> found = find_key_locked(id);
    if (!found) return fail(found.error());
    if (!*found) continue;
    KeyRecord& key = **found;
    // Another process may have changed it between the lookup and the transaction.
    const bool live = key.status == KeyStatus::kActive || key.status == KeyStatus::kExhausted ||
                      key.status == KeyStatus::kSuspended;
    if (!live || !key.expires_at || *key.expires_at > now) continue;
    if (Result<void> applied = apply_status(key, KeyStatus::kExpired, now); !applied) {
      return fail(applied.error());
    }
    ++changed;
  }
  if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  return changed;
}

Result<KeyRecord> SqliteStore::rotate_token(std::string_view id, const SecretHash& secret_hash,
                                            uint32_t seal_version, Timestamp previous_valid_until,
                                            Timestamp now) {
  std::lock_guard lock(mutex_);
  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  Result<KeyRecord> found = existing_key_locked(id);
  if (!found) return fail(found.error());
  KeyRecord key = std::move(*found);
  if (key.status == KeyStatus::kRevoked) {
    return fail(Error::client(ErrorCode::kConflict,
                              "the key " + key.id + " is revoked; a revoked key cannot rotate"));
  }
  key.previous_token = std::nullopt;
  if (previous_valid_until > now) {
    key.previous_token = PreviousToken{key.secret_hash, key.seal_version, previous_valid_until};
  }
  key.secret_hash = secret_hash;
  key.seal_version = seal_version;
  key.rotated_at = now;
  key.updated_at = now;

  Statement& write = write_key_token_;
  ScopedReset reset(write);
  write.bind(1, std::string_view(key.id));
  write.bind(2, std::span<const uint8_t>(key.secret_hash));
  write.bind(3, static_cast<int64_t>(key.seal_version));
  if (key.previous_token) {
    write.bind(4, std::span<const uint8_t>(key.previous_token->secret_hash));
    write.bind(5, static_cast<int64_t>(key.previous_token->seal_version));
    write.bind(6, to_unix_ms(key.previous_token->valid_until));
  } else {
    write.bind_null(4);
    write.bind_null(5);
    write.bind_null(6);
  }
  write.bind(7, to_unix_ms(now));
  if (Result<void> written = write.run("rotate key token"); !written) {
    return fail(written.error());
  }
  if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  return key;
}

Result<std::vector<std::string>> SqliteStore::keys_sealed_under(uint32_t version, Timestamp now) {
  std::lock_guard lock(mutex_);
  ScopedReset reset(list_sealed_under_);
  list_sealed_under_.bind(1, static_cast<int64_t>(version));
  list_sealed_under_.bind(2, to_unix_ms(now));
  return collect_ids(list_sealed_under_, "list keys sealed under a master key");
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
  Result<KeyRecord> found = reserved_key(**taken);
  if (!found) return fail(found.error());
  KeyRecord& key = *found;
  const KeyRecord before = key;
  if (Result<void> charged = charge(key, old_amount, consumed, now); !charged) {
    return fail(charged.error());
  }

  // Growing beyond what the reservation still held after `consumed` needs the key's consent.
  const std::array<int64_t, 3> held_after = {old_amount.requests - consumed.requests,
                                             old_amount.tokens - consumed.tokens(),
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
  if (Result<void> propagated = propagate_to_ancestors(before, key, now); !propagated) {
    return fail(propagated.error());
  }
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

Result<KeyRecord> SqliteStore::reserved_key(const TakenReservation& reservation) {
  Result<std::optional<KeyRecord>> found = find_key_locked(reservation.key_id);
  if (!found) return fail(found.error());
  // The foreign key of reservations.key_id makes this a corrupt database, not a caller error.
  if (!*found) return fail(corrupt("reservation whose key is missing", reservation.key_id));
  return std::move(**found);
}

Result<void> SqliteStore::charge(KeyRecord& key, const Budget& held, const Usage& actual,
                                 Timestamp now) {
  if (Result<void> added = add_usage(key.used, actual); !added) return fail(added.error());
  key.reserved.requests -= held.requests;
  key.reserved.tokens -= held.tokens;
  key.reserved.spend -= held.spend;
  if (key.status == KeyStatus::kActive && exhausted_dimension(key)) {
    key.status = KeyStatus::kExhausted;
  }
  key.updated_at = now;
  return {};
}

Result<void> SqliteStore::propagate_to_ancestors(const KeyRecord& key_before, KeyRecord& key,
                                                 Timestamp now) {
  KeyRecord before = key_before;
  KeyRecord after = key;
  key.carved = carve_of(key);
  while (after.parent_id) {
    const Budget carve = carve_of(after);
    const Usage growth = usage_growth(before.used, after.used);
    if (carve == after.carved && growth == Usage{}) return {};
    Result<std::optional<KeyRecord>> found = find_key_locked(*after.parent_id);
    if (!found) return fail(found.error());
    if (!*found) return fail(corrupt("parent_id naming a missing key", after.id));
    KeyRecord parent = std::move(**found);
    const KeyRecord parent_before = parent;

    if (Result<void> added = add_usage(parent.used, growth); !added) return fail(added.error());
    parent.reserved.requests += carve.requests - after.carved.requests;
    parent.reserved.tokens += carve.tokens - after.carved.tokens;
    parent.reserved.spend += carve.spend - after.carved.spend;
    if (parent.reserved.requests < 0 || parent.reserved.tokens < 0 ||
        parent.reserved.spend.nanos() < 0) {
      return fail(corrupt("reserved budget below what its sub-keys hold", parent.id));
    }
    if (parent.status == KeyStatus::kActive && exhausted_dimension(parent)) {
      parent.status = KeyStatus::kExhausted;
    }
    parent.updated_at = now;
    after.carved = carve;
    if (Result<void> written = write_key_state(after); !written) return fail(written.error());
    if (Result<void> written = write_key_state(parent); !written) return fail(written.error());
    before = parent_before;
    after = std::move(parent);
  }
  return {};
}

Result<KeyRecord> SqliteStore::charge_reservation(const TakenReservation& reservation,
                                                  const Usage& actual, Timestamp now) {
  Result<KeyRecord> key = reserved_key(reservation);
  if (!key) return fail(key.error());
  const KeyRecord before = *key;
  if (Result<void> charged = charge(*key, reservation.amount, actual, now); !charged) {
    return fail(charged.error());
  }
  if (Result<void> written = write_key_state(*key); !written) return fail(written.error());
  if (Result<void> propagated = propagate_to_ancestors(before, *key, now); !propagated) {
    return fail(propagated.error());
  }
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
  Result<KeyRecord> key = charge_reservation(**taken, actual, now);
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
    if (Result<KeyRecord> key = charge_reservation(**taken, consumed, now); !key) {
      return fail(key.error());
    }
  }
  if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  return static_cast<int64_t>(ids.size());
}

// --- Vault credentials -----------------------------------------------------------------------

namespace {

CredentialRecord read_credential(const Statement& row) {
  CredentialRecord credential;
  credential.name = row.column_text(0);
  credential.provider = row.column_text(1);
  credential.master_key_version = static_cast<uint32_t>(row.column_int64(2));
  std::span<const uint8_t> wrapped = row.column_blob(3);
  credential.wrapped_key.assign(wrapped.begin(), wrapped.end());
  std::span<const uint8_t> sealed = row.column_blob(4);
  credential.sealed_secret.assign(sealed.begin(), sealed.end());
  if (std::optional<int64_t> ms = row.column_optional_int64(5)) {
    credential.rotate_every = std::chrono::milliseconds(*ms);
  }
  credential.created_at = from_unix_ms(row.column_int64(6));
  credential.rotated_at = from_unix_ms(row.column_int64(7));
  credential.updated_at = from_unix_ms(row.column_int64(8));
  return credential;
}

// Binds every column of kCredentialColumns, in order, from parameter 1.
void bind_credential(Statement& statement, const CredentialRecord& credential) {
  statement.bind(1, std::string_view(credential.name));
  statement.bind(2, std::string_view(credential.provider));
  statement.bind(3, static_cast<int64_t>(credential.master_key_version));
  statement.bind(4, std::span<const uint8_t>(credential.wrapped_key));
  statement.bind(5, std::span<const uint8_t>(credential.sealed_secret));
  statement.bind(6, credential.rotate_every
                        ? std::optional<int64_t>(credential.rotate_every->count())
                        : std::nullopt);
  statement.bind(7, to_unix_ms(credential.created_at));
  statement.bind(8, to_unix_ms(credential.rotated_at));
  statement.bind(9, to_unix_ms(credential.updated_at));
}

Error credential_not_found(std::string_view name) {
  return Error::client(ErrorCode::kNotFound, "no credential named " + std::string(name));
}

}  // namespace

Result<void> SqliteStore::insert_credential(const CredentialRecord& credential) {
  std::lock_guard lock(mutex_);
  ScopedReset reset(insert_credential_);
  bind_credential(insert_credential_, credential);
  if (Result<void> inserted = insert_credential_.run("insert credential"); !inserted) {
    Error error = std::move(inserted.error());
    if (error.code == ErrorCode::kConflict) {
      error.message = "a credential named " + credential.name + " exists";
      error.field = "name";
    }
    return fail(std::move(error));
  }
  return {};
}

Result<CredentialRecord> SqliteStore::find_credential(std::string_view name) {
  std::lock_guard lock(mutex_);
  ScopedReset reset(find_credential_);
  find_credential_.bind(1, name);
  Result<bool> row = find_credential_.step("find credential");
  if (!row) return fail(row.error());
  if (!*row) return fail(credential_not_found(name));
  return read_credential(find_credential_);
}

Result<std::vector<CredentialRecord>> SqliteStore::list_credentials() {
  std::lock_guard lock(mutex_);
  ScopedReset reset(list_credentials_);
  std::vector<CredentialRecord> credentials;
  for (;;) {
    Result<bool> row = list_credentials_.step("list credentials");
    if (!row) return fail(row.error());
    if (!*row) break;
    credentials.push_back(read_credential(list_credentials_));
  }
  return credentials;
}

Result<void> SqliteStore::update_credential(const CredentialRecord& credential) {
  std::lock_guard lock(mutex_);
  ScopedReset reset(update_credential_);
  bind_credential(update_credential_, credential);
  Result<bool> row = update_credential_.step("update credential");
  if (!row) return fail(row.error());
  if (!*row) return fail(credential_not_found(credential.name));
  return update_credential_.run("update credential");
}

Result<std::vector<std::string>> SqliteStore::keys_using_credential_locked(std::string_view name) {
  ScopedReset reset(list_credential_users_);
  list_credential_users_.bind(1, name);
  return collect_ids(list_credential_users_, "list keys using a credential");
}

Result<std::vector<std::string>> SqliteStore::keys_using_credential(std::string_view name) {
  std::lock_guard lock(mutex_);
  return keys_using_credential_locked(name);
}

Result<void> SqliteStore::delete_credential(std::string_view name, bool force) {
  std::lock_guard lock(mutex_);
  Result<Transaction> transaction = connection_->begin_immediate();
  if (!transaction) return fail(transaction.error());
  if (!force) {
    Result<std::vector<std::string>> users = keys_using_credential_locked(name);
    if (!users) return fail(users.error());
    if (!users->empty()) {
      std::string listed;
      for (size_t i = 0; i < users->size() && i < 10; ++i) {
        listed += (i ? ", " : "") + (*users)[i];
      }
      if (users->size() > 10) listed += ", …";
      return fail(Error::client(
          ErrorCode::kConflict,
          "the credential " + std::string(name) + " is used by " + std::to_string(users->size()) +
              (users->size() == 1 ? " key" : " keys") + " (" + listed +
              "); revoke them first, or force the removal and they fail from their "
              "next request"));
    }
  }
  ScopedReset reset(delete_credential_);
  delete_credential_.bind(1, name);
  Result<bool> row = delete_credential_.step("delete credential");
  if (!row) return fail(row.error());
  if (!*row) return fail(credential_not_found(name));
  if (Result<void> done = delete_credential_.run("delete credential"); !done) {
    return fail(done.error());
  }
  return transaction->commit();
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
