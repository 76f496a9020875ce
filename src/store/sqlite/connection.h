// Connection: one open SQLite database handle configured for till (WAL, foreign keys, busy
// timeout), with the transaction statements compiled once. Part of the SQLite backend of Store.
//
// Thread-safety: none. A Connection is used by one thread at a time; SqliteStore serialises all
// use behind its mutex (SQLite is opened with SQLITE_OPEN_NOMUTEX for that reason).
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "store/sqlite/statement.h"
#include "till/error.h"

namespace till::sqlite {

class Transaction;

class Connection {
 public:
  // Opens the database at `path`, creating it with mode 0600 if it does not exist (independent of
  // the umask; SQLite gives the -wal and -shm files the database file's mode). An existing file
  // keeps its mode. Applies the connection pragmas; fails if WAL mode cannot be enabled.
  static Result<std::unique_ptr<Connection>> open(const std::string& path,
                                                  std::chrono::milliseconds busy_timeout);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs a script of zero or more statements (no parameters, rows ignored): migrations, pragmas.
  Result<void> exec(std::string_view sql, std::string_view operation);

  Result<Statement> prepare(std::string_view sql) { return Statement::prepare(db_, sql); }

  // Compiles each statement into its place; stops at the first error.
  Result<void> prepare_into(std::span<const std::pair<Statement*, std::string>> statements) {
    for (const auto& [statement, sql] : statements) {
      Result<Statement> prepared = prepare(sql);
      if (!prepared) return fail(prepared.error());
      *statement = std::move(*prepared);
    }
    return {};
  }

  // The statement held in `slot`, compiled from make_sql() the first time: for queries whose
  // SQL depends on which filters are set, one slot per combination.
  template <typename MakeSql>
  Result<Statement*> cached(std::optional<Statement>& slot, MakeSql&& make_sql) {
    if (!slot) {
      Result<Statement> prepared = prepare(make_sql());
      if (!prepared) return fail(prepared.error());
      slot = std::move(*prepared);
    }
    return &*slot;
  }

  // Starts a write transaction (BEGIN IMMEDIATE: the write lock is taken up front, so the
  // transaction cannot fail later on a read-to-write lock upgrade). Rolls back unless committed.
  Result<Transaction> begin_immediate();

 private:
  friend class Transaction;
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_;  // owned
  Statement begin_;
  Statement commit_;
  Statement rollback_;
};

// An open write transaction. Rolls back in the destructor unless commit() succeeded.
class Transaction {
 public:
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Result<void> commit();

 private:
  friend class Connection;
  explicit Transaction(Connection* connection) : connection_(connection) {}

  Connection* connection_;  // null once committed, rolled back or moved from
};

}  // namespace till::sqlite
