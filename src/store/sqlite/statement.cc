#include "store/sqlite/statement.h"

#include <climits>
#include <utility>

namespace till::sqlite {

Error sqlite_error(sqlite3* db, int code, std::string_view operation) {
  std::string detail = db != nullptr && sqlite3_extended_errcode(db) == code ? sqlite3_errmsg(db)
                                                                             : sqlite3_errstr(code);
  std::string message = "database error during ";
  message.append(operation).append(": ").append(detail);
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error{ErrorCode::kUnavailable,
                   ErrorSource::kInternal,
                   /*retryable=*/true,
                   "database is busy (another process holds its lock) during " +
                       std::string(operation) + "; retry",
                   {}};
    default:
      break;
  }
  if (code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE) {
    return Error::client(ErrorCode::kConflict, std::move(message));
  }
  return Error::internal(std::move(message));
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), bind_error_(other.bind_error_) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    bind_error_ = other.bind_error_;
  }
  return *this;
}

Result<Statement> Statement::prepare(sqlite3* db, std::string_view sql) {
  if (sql.size() > INT_MAX) return fail(Error::internal("SQL statement too long"));
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
  if (rc != SQLITE_OK) return fail(sqlite_error(db, rc, "prepare of \"" + std::string(sql) + "\""));
  Statement statement(stmt);
  if (stmt == nullptr ||
      std::string_view(tail).find_first_not_of(" \t\r\n;") != std::string_view::npos) {
    return fail(
        Error::internal("expected exactly one SQL statement in \"" + std::string(sql) + "\""));
  }
  return statement;
}

void Statement::note_bind(int code) {
  if (code != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = code;
}

void Statement::bind(int index, int64_t value) {
  note_bind(sqlite3_bind_int64(stmt_, index, value));
}

void Statement::bind(int index, std::string_view text) {
  // SQLITE_TRANSIENT: SQLite copies the bytes, so the caller's buffer may die before step().
  note_bind(
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

void Statement::bind_borrowed(int index, std::string_view text) {
  note_bind(
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8));
}

void Statement::bind(int index, std::span<const uint8_t> blob) {
  note_bind(sqlite3_bind_blob64(stmt_, index, blob.data(), blob.size(), SQLITE_TRANSIENT));
}

void Statement::bind_borrowed(int index, std::span<const uint8_t> blob) {
  note_bind(sqlite3_bind_blob64(stmt_, index, blob.data(), blob.size(), SQLITE_STATIC));
}

void Statement::bind(int index, const std::optional<int64_t>& value) {
  if (value) {
    bind(index, *value);
  } else {
    bind_null(index);
  }
}

void Statement::bind(int index, const std::optional<std::string>& text) {
  if (text) {
    bind(index, std::string_view(*text));
  } else {
    bind_null(index);
  }
}

void Statement::bind_null(int index) { note_bind(sqlite3_bind_null(stmt_, index)); }

Result<bool> Statement::step(std::string_view operation) {
  sqlite3* db = sqlite3_db_handle(stmt_);
  if (bind_error_ != SQLITE_OK) return fail(sqlite_error(nullptr, bind_error_, operation));
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return fail(sqlite_error(db, rc, operation));
}

Result<void> Statement::run(std::string_view operation) {
  for (;;) {
    Result<bool> row = step(operation);
    if (!row) return fail(std::move(row.error()));
    if (!*row) return {};
  }
}

bool Statement::column_is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::column_int64(int column) const { return sqlite3_column_int64(stmt_, column); }

std::optional<int64_t> Statement::column_optional_int64(int column) const {
  if (column_is_null(column)) return std::nullopt;
  return column_int64(column);
}

std::string Statement::column_text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

std::optional<std::string> Statement::column_optional_text(int column) const {
  if (column_is_null(column)) return std::nullopt;
  return column_text(column);
}

std::span<const uint8_t> Statement::column_blob(int column) const {
  const void* blob = sqlite3_column_blob(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (blob == nullptr) return {};
  return {static_cast<const uint8_t*>(blob), static_cast<size_t>(size)};
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = SQLITE_OK;
}

}  // namespace till::sqlite
