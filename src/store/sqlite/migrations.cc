#include "store/sqlite/migrations.h"

#include <array>
#include <span>
#include <string>
#include <string_view>

namespace till::sqlite {
namespace {

struct Migration {
  int version;
  std::string_view sql;
};

// Append new steps at the end; never edit a released one.
constexpr std::array kMigrations = {
    Migration{1, R"sql(
-- Scoped keys with their limits, scope and budget counters. Money is integer nano-dollars.
-- `seq` orders keys by insertion (newest first in listings) and is the list cursor.
-- Scope lists are JSON arrays of strings (see string_list_codec.h).
CREATE TABLE keys (
  id                        TEXT PRIMARY KEY NOT NULL,
  seq                       INTEGER NOT NULL UNIQUE,
  name                      TEXT NOT NULL,
  provider                  TEXT NOT NULL,
  metadata_json             TEXT NOT NULL,
  status                    TEXT NOT NULL
      CHECK (status IN ('active', 'exhausted', 'revoked', 'expired', 'suspended')),
  secret_hash               BLOB NOT NULL CHECK (length(secret_hash) = 32),
  max_requests              INTEGER,
  max_tokens                INTEGER,
  max_spend_nanos           INTEGER,
  models                    TEXT NOT NULL,
  allowed_cidrs             TEXT NOT NULL,
  rpm                       INTEGER,
  max_concurrency           INTEGER,
  expires_at_ms             INTEGER,
  created_at_ms             INTEGER NOT NULL,
  updated_at_ms             INTEGER NOT NULL,
  parent_id                 TEXT REFERENCES keys (id),
  credential                TEXT,
  used_requests             INTEGER NOT NULL DEFAULT 0,
  used_input_tokens         INTEGER NOT NULL DEFAULT 0,
  used_cached_input_tokens  INTEGER NOT NULL DEFAULT 0,
  used_output_tokens        INTEGER NOT NULL DEFAULT 0,
  used_reasoning_tokens     INTEGER NOT NULL DEFAULT 0,
  used_unmetered_tokens     INTEGER NOT NULL DEFAULT 0,
  used_spend_nanos          INTEGER NOT NULL DEFAULT 0,
  reserved_requests         INTEGER NOT NULL DEFAULT 0 CHECK (reserved_requests >= 0),
  reserved_tokens           INTEGER NOT NULL DEFAULT 0 CHECK (reserved_tokens >= 0),
  reserved_spend_nanos      INTEGER NOT NULL DEFAULT 0 CHECK (reserved_spend_nanos >= 0)
);
-- One index per list filter, ending in seq so that a filtered page is an index range scan.
CREATE INDEX keys_by_status ON keys (status, seq);
CREATE INDEX keys_by_provider ON keys (provider, seq);
CREATE INDEX keys_by_name ON keys (name, seq);
CREATE INDEX keys_by_parent ON keys (parent_id);

-- Outstanding reservations: a row exists from reserve until settle. WITHOUT ROWID keeps each
-- reserve and settle to one b-tree write on this table.
CREATE TABLE reservations (
  id             TEXT PRIMARY KEY NOT NULL,
  key_id         TEXT NOT NULL REFERENCES keys (id),
  requests       INTEGER NOT NULL CHECK (requests >= 0),
  tokens         INTEGER NOT NULL CHECK (tokens >= 0),
  spend_nanos    INTEGER NOT NULL CHECK (spend_nanos >= 0),
  created_at_ms  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE admin_keys (
  id             TEXT PRIMARY KEY NOT NULL,
  name           TEXT NOT NULL,
  secret_hash    BLOB NOT NULL CHECK (length(secret_hash) = 32),
  created_at_ms  INTEGER NOT NULL,
  revoked_at_ms  INTEGER
);
)sql"},
    Migration{2, R"sql(
-- Token rotation: the current token's seal version and issue time, the previous token during
-- its grace period, and an optional token lifetime. Tokens issued before this migration were
-- sealed under master key version 1 unless the key uses a vault credential.
ALTER TABLE keys ADD COLUMN seal_version INTEGER NOT NULL DEFAULT 0;
UPDATE keys SET seal_version = 1 WHERE credential IS NULL;
ALTER TABLE keys ADD COLUMN previous_secret_hash BLOB
    CHECK (previous_secret_hash IS NULL OR length(previous_secret_hash) = 32);
ALTER TABLE keys ADD COLUMN previous_seal_version INTEGER;
ALTER TABLE keys ADD COLUMN previous_valid_until_ms INTEGER;
ALTER TABLE keys ADD COLUMN rotated_at_ms INTEGER;
UPDATE keys SET rotated_at_ms = created_at_ms;
ALTER TABLE keys ADD COLUMN rotate_every_ms INTEGER;

-- Sub-keys: what the parent holds in reserve for this key (part of the parent's reserved_*).
ALTER TABLE keys ADD COLUMN carved_requests INTEGER NOT NULL DEFAULT 0 CHECK (carved_requests >= 0);
ALTER TABLE keys ADD COLUMN carved_tokens INTEGER NOT NULL DEFAULT 0 CHECK (carved_tokens >= 0);
ALTER TABLE keys ADD COLUMN carved_spend_nanos INTEGER NOT NULL DEFAULT 0
    CHECK (carved_spend_nanos >= 0);

CREATE INDEX keys_by_credential ON keys (credential) WHERE credential IS NOT NULL;
CREATE INDEX keys_by_expiry ON keys (expires_at_ms)
    WHERE expires_at_ms IS NOT NULL AND status IN ('active', 'exhausted', 'suspended');
CREATE INDEX keys_by_seal_version ON keys (seal_version);

-- Vault credentials, encrypted under the master key (envelope: see core/vault_seal.h).
CREATE TABLE credentials (
  name                TEXT PRIMARY KEY NOT NULL,
  provider            TEXT NOT NULL,
  master_key_version  INTEGER NOT NULL,
  wrapped_key         BLOB NOT NULL,
  sealed_secret       BLOB NOT NULL,
  rotate_every_ms     INTEGER,
  created_at_ms       INTEGER NOT NULL,
  rotated_at_ms       INTEGER NOT NULL,
  updated_at_ms       INTEGER NOT NULL
);
)sql"},
    Migration{3, R"sql(
-- Alerts (till/alert.h), listed newest first (by id, which is also the cursor). key_id is ''
-- for alerts about an address or a credential.
CREATE TABLE alerts (
  id                  INTEGER PRIMARY KEY AUTOINCREMENT,
  key_id              TEXT NOT NULL DEFAULT '',
  rule                TEXT NOT NULL,
  severity            TEXT NOT NULL,
  message             TEXT NOT NULL,
  action              TEXT NOT NULL,
  created_at_ms       INTEGER NOT NULL,
  acknowledged_at_ms  INTEGER
);
-- One index per list filter, ending in id so that a filtered page is an index range scan; open
-- (unacknowledged) alerts are what the dashboard lists most.
CREATE INDEX alerts_by_key ON alerts (key_id, id);
CREATE INDEX alerts_by_rule ON alerts (rule, id);
CREATE INDEX alerts_open ON alerts (id) WHERE acknowledged_at_ms IS NULL;

-- Tokens due for rotation, soonest first; only keys with a token lifetime are indexed.
CREATE INDEX keys_by_rotation_due ON keys (rotated_at_ms + rotate_every_ms)
    WHERE rotate_every_ms IS NOT NULL;
)sql"},
};

// The usage-events database (till-usage.db beside till.db): the busiest writes of all, in a file of
// their own so that they never wait for, nor make wait, the budget's transactions.
constexpr std::array kUsageMigrations = {
    Migration{1, R"sql(
-- Usage events (till/usage_event.h): one row per request on the proxy routes, refused or
-- forwarded. `id` orders them (newest first in listings) and is the list cursor; AUTOINCREMENT so
-- that an id is never handed out twice, even after retention deleted the newest rows. Events are
-- facts: key_id references no key ('' when the request named none). Never bodies, never secrets,
-- never the body hash. Money is integer nano-dollars, durations integer microseconds.
CREATE TABLE usage_events (
  id                   INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms                INTEGER NOT NULL,
  key_id               TEXT NOT NULL,
  provider             TEXT NOT NULL,
  model                TEXT NOT NULL,
  status               INTEGER NOT NULL,
  error_code           TEXT NOT NULL,
  forwarded            INTEGER NOT NULL CHECK (forwarded IN (0, 1)),
  streaming            INTEGER NOT NULL CHECK (streaming IN (0, 1)),
  upstream_status      INTEGER NOT NULL,
  requests             INTEGER NOT NULL CHECK (requests >= 0),
  input_tokens         INTEGER NOT NULL CHECK (input_tokens >= 0),
  cached_input_tokens  INTEGER NOT NULL CHECK (cached_input_tokens >= 0),
  output_tokens        INTEGER NOT NULL CHECK (output_tokens >= 0),
  reasoning_tokens     INTEGER NOT NULL CHECK (reasoning_tokens >= 0),
  unmetered_tokens     INTEGER NOT NULL CHECK (unmetered_tokens >= 0),
  spend_nanos          INTEGER NOT NULL CHECK (spend_nanos >= 0),
  latency_us           INTEGER NOT NULL,
  upstream_latency_us  INTEGER NOT NULL,
  ttfb_us              INTEGER NOT NULL,
  client_address       TEXT NOT NULL
);
-- Every query is a time range [from, to), optionally of one key; provider and model filters scan
-- within the range. Retention deletes by time too.
CREATE INDEX usage_events_by_time ON usage_events (at_ms);
CREATE INDEX usage_events_by_key ON usage_events (key_id, at_ms);
)sql"},
    Migration{2, R"sql(
-- Per-minute sums of the usage events by key, provider and model, kept up to date in the
-- transaction that appends the events (one upsert per minute, key and model of a batch, not per
-- event). A usage summary reads the whole minutes of its range from here and only the partial
-- minutes at its ends from usage_events, so it costs the same for a month as for an hour; and an
-- event now updates one index (by time) instead of two, as listing one key's events can walk the
-- time index. minute_ms is the minute's start (Unix ms, a multiple of 60000).
CREATE TABLE usage_minutes (
  minute_ms            INTEGER NOT NULL,
  key_id               TEXT NOT NULL,
  provider             TEXT NOT NULL,
  model                TEXT NOT NULL,
  requests             INTEGER NOT NULL,  -- forwarded requests, as usage summaries count them
  refused              INTEGER NOT NULL,  -- events till answered itself
  input_tokens         INTEGER NOT NULL,
  cached_input_tokens  INTEGER NOT NULL,
  output_tokens        INTEGER NOT NULL,
  reasoning_tokens     INTEGER NOT NULL,
  unmetered_tokens     INTEGER NOT NULL,
  spend_nanos          INTEGER NOT NULL,
  PRIMARY KEY (minute_ms, key_id, provider, model)
) WITHOUT ROWID;
CREATE INDEX usage_minutes_by_key ON usage_minutes (key_id, minute_ms);
INSERT INTO usage_minutes
  SELECT at_ms - (at_ms % 60000 + 60000) % 60000, key_id, provider, model,
         sum(CASE WHEN forwarded = 1 THEN requests ELSE 0 END), sum(forwarded = 0),
         sum(input_tokens), sum(cached_input_tokens), sum(output_tokens), sum(reasoning_tokens),
         sum(unmetered_tokens), sum(spend_nanos)
  FROM usage_events GROUP BY 1, 2, 3, 4;
DROP INDEX usage_events_by_key;
)sql"},
    Migration{3, R"sql(
-- Usage events in blocks: a row holds up to 1024 events appended together, binary-encoded
-- (store/sqlite/usage_event_codec.h, with min_at_ms as the base of their times), so that storing
-- an event costs a share of one row and one index entry instead of a row of its own. A block holds
-- events with ids from first_id to last_id (not every id in between once retention has removed
-- some), never an id of another block, at times within [min_at_ms, max_at_ms], at most a minute
-- apart (kMaxBlockSpanMs in sqlite_usage_events.cc: the reads rely on it).
CREATE TABLE usage_event_blocks (
  first_id   INTEGER PRIMARY KEY,
  last_id    INTEGER NOT NULL,
  count      INTEGER NOT NULL,
  min_at_ms  INTEGER NOT NULL,
  max_at_ms  INTEGER NOT NULL,
  events     BLOB NOT NULL
);
-- Every read is a time range, and retention deletes by time: both walk this index.
CREATE INDEX usage_event_blocks_by_time ON usage_event_blocks (max_at_ms, min_at_ms);
-- One row: the id the next event gets. Ids are never handed out twice, even after retention
-- deleted the newest events; this continues the AUTOINCREMENT counter of migration 1's table.
CREATE TABLE usage_event_ids (next_id INTEGER NOT NULL);
INSERT INTO usage_event_ids
  SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'usage_events'), 0) + 1;
-- The rows of usage_events are moved into blocks, and the table dropped, by the store when it
-- opens (SqliteStore::move_legacy_usage_events): encoding blocks takes C++.
)sql"},
};

std::span<const Migration> migrations_of(Schema schema) {
  if (schema == Schema::kUsage) return kUsageMigrations;
  return kMigrations;
}

constexpr std::string_view kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version     INTEGER PRIMARY KEY,
  applied_at  INTEGER NOT NULL  -- Unix milliseconds
))sql";

// The highest version recorded; 0 for a new database.
// REQUIRES: inside a transaction on `connection`.
Result<int64_t> recorded_version(Connection& connection) {
  Result<Statement> select =
      connection.prepare("SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!select) return fail(select.error());
  Result<bool> row = select->step("reading the schema version");
  if (!row) return fail(row.error());
  return *row ? select->column_int64(0) : 0;
}

Error too_new(int64_t version, Schema schema) {
  return Error::internal("the database has schema version " + std::to_string(version) +
                         " but this till knows versions up to " +
                         std::to_string(latest_schema_version(schema)) +
                         "; it was written by a newer till: upgrade till to open it");
}

}  // namespace

int latest_schema_version(Schema schema) { return migrations_of(schema).back().version; }

Result<void> apply_migrations(Connection& connection, Timestamp now, int up_to, Schema schema) {
  for (const Migration& migration : migrations_of(schema)) {
    if (up_to > 0 && migration.version > up_to) break;
    Result<Transaction> transaction = connection.begin_immediate();
    if (!transaction) return fail(transaction.error());
    if (Result<void> created =
            connection.exec(kCreateMigrationsTable, "creating schema_migrations");
        !created) {
      return fail(created.error());
    }
    Result<int64_t> version = recorded_version(connection);
    if (!version) return fail(version.error());
    if (*version > latest_schema_version(schema)) return fail(too_new(*version, schema));
    if (*version >= migration.version) continue;  // already applied; the transaction rolls back

    std::string operation = "schema migration " + std::to_string(migration.version);
    if (Result<void> applied = connection.exec(migration.sql, operation); !applied) {
      return fail(applied.error());
    }
    Result<Statement> record =
        connection.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)");
    if (!record) return fail(record.error());
    record->bind(1, static_cast<int64_t>(migration.version));
    record->bind(2, to_unix_ms(now));
    if (Result<void> recorded = record->run(operation); !recorded) return fail(recorded.error());
    if (Result<void> committed = transaction->commit(); !committed) return fail(committed.error());
  }
  return {};
}

}  // namespace till::sqlite
