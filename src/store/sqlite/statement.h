// Statement: an owning, move-only handle to one compiled SQLite statement, with typed binding and
// column access. Part of the SQLite backend of Store; nothing outside src/store/sqlite uses it.
//
// Binding never fails loudly: the first bind error is remembered and reported by the next step(),
// so call sites stay linear. Column accessors read the current row and are valid only after step()
// returned true.
//
// Thread-safety: none; the owner serialises access (SqliteStore holds its mutex).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "till/error.h"

namespace till::sqlite {

// Converts a failed SQLite result code into a till::Error naming `operation`. Busy/locked (after
// the busy timeout) is kUnavailable and retryable; a primary-key or unique violation is kConflict;
// everything else is kInternal.
// REQUIRES: `db` is the connection that produced `code`, with no API call on it since.
Error sqlite_error(sqlite3* db, int code, std::string_view operation);

class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Compiles exactly one SQL statement, marked persistent because it will be reused many times.
  static Result<Statement> prepare(sqlite3* db, std::string_view sql);

  // Parameters are 1-based, as in SQLite.
  void bind(int index, int64_t value);
  void bind(int index, std::string_view text);
  // As bind(text) without SQLite's copy of the bytes, for hot loops binding many strings.
  // REQUIRES: `text` stays valid and unchanged until the statement is reset (ScopedReset).
  void bind_borrowed(int index, std::string_view text);
  void bind(int index, std::span<const uint8_t> blob);
  // As bind(blob) without SQLite's copy of the bytes. REQUIRES: as bind_borrowed(text).
  void bind_borrowed(int index, std::span<const uint8_t> blob);
  void bind(int index, const std::optional<int64_t>& value);
  void bind(int index, const std::optional<std::string>& text);
  void bind_null(int index);

  // Advances: true when a row is available, false when the statement is done. A pending bind
  // error, or any SQLite error, is returned as an Error naming `operation`.
  Result<bool> step(std::string_view operation);

  // Steps until done, ignoring any rows (for INSERT/UPDATE/DELETE).
  Result<void> run(std::string_view operation);

  bool column_is_null(int column) const;
  int64_t column_int64(int column) const;
  std::optional<int64_t> column_optional_int64(int column) const;
  std::string column_text(int column) const;
  std::optional<std::string> column_optional_text(int column) const;
  std::span<const uint8_t> column_blob(int column) const;

  // Resets the statement and clears its bindings and any pending bind error, so it releases its
  // read snapshot and can be run again.
  void reset();

 private:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  void note_bind(int code);

  sqlite3_stmt* stmt_ = nullptr;
  int bind_error_ = SQLITE_OK;
};

// Resets a statement when it goes out of scope, so that no code path leaves it holding a read
// snapshot (which would keep the WAL from being checkpointed) or stale bindings.
class ScopedReset {
 public:
  explicit ScopedReset(Statement& statement) : statement_(statement) {}
  ~ScopedReset() { statement_.reset(); }
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;

 private:
  Statement& statement_;
};

}  // namespace till::sqlite
