// Versioned schema migrations of the SQLite store.
//
// Each migration is a (version, SQL) step applied in its own transaction and recorded in
// schema_migrations(version, applied_at). Steps are append-only: a released step is never edited;
// a schema change is a new step with the next version.
//
// Thread-safety: the caller serialises use of the connection. Several processes opening the same
// database at once are safe: each step re-checks the recorded version under the write lock.
#pragma once

#include "store/sqlite/connection.h"
#include "till/clock.h"
#include "till/error.h"

namespace till::sqlite {

// The store's two databases, each with its own chain of migrations: the main one (keys, budget,
// credentials, alerts) and the usage events.
enum class Schema { kMain, kUsage };

// The schema version this binary writes: the version of its last migration.
int latest_schema_version(Schema schema = Schema::kMain);

// Brings the database up to latest_schema_version() (or `up_to`, for tests of an upgrade). Fails
// without changing anything if the database records a newer version than this binary knows (it
// was written by a newer till).
Result<void> apply_migrations(Connection& connection, Timestamp now, int up_to = 0,
                              Schema schema = Schema::kMain);

}  // namespace till::sqlite
