#include "store/sqlite/connection.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace till::sqlite {
namespace {

// Creates `path` with mode 0600 if it does not exist. fchmod makes the mode independent of the
// umask; SQLite later creates the -wal and -shm files with the database file's mode.
Result<void> create_owner_only(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return {};
    return fail(
        Error::internal("cannot create database file " + path + ": " + std::strerror(errno)));
  }
  int rc = ::fchmod(fd, 0600);
  int fchmod_errno = errno;
  // Closed before SQLite opens the file: closing any descriptor of a file drops the process's
  // POSIX locks on it, so no descriptor of ours may outlive SQLite's first lock.
  ::close(fd);
  if (rc != 0) {
    return fail(
        Error::internal("cannot set mode 0600 on " + path + ": " + std::strerror(fchmod_errno)));
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path,
                                                     std::chrono::milliseconds busy_timeout) {
  if (Result<void> created = create_owner_only(path); !created) return fail(created.error());

  sqlite3* db = nullptr;
  // No SQLITE_OPEN_CREATE: the file exists by now with the right mode, and must not be recreated
  // with the default one. NOMUTEX: the owner serialises all use of the connection.
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<Connection> connection(new Connection(db));  // closes `db` even on failure
  if (rc != SQLITE_OK) {
    return fail(Error::internal("cannot open database " + path + ": " +
                                (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc))));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));

  // journal_mode=WAL: readers never block the writer and a commit is one append to the WAL.
  // synchronous=NORMAL: in WAL mode a commit is written to the WAL (the OS page cache) before it
  // returns, and fsync happens only at checkpoints. That makes every committed transaction survive
  // a crash or kill -9 of this process, which is what the budget invariant requires. It does not
  // survive power loss or a kernel crash: the last transactions before it may roll back (the file
  // stays consistent). Such a rollback can undo recent settles as well as reservations, so after a
  // power loss a key may regain the budget of its last few requests. synchronous=FULL would close
  // that gap at the cost of an fsync per reserve and per settle.
  Result<Statement> mode = connection->prepare("PRAGMA journal_mode=WAL");
  if (!mode) return fail(mode.error());
  Result<bool> row = mode->step("enabling WAL mode");
  if (!row) return fail(row.error());
  std::string journal_mode = *row ? mode->column_text(0) : std::string();
  mode->reset();
  if (journal_mode != "wal") {
    return fail(Error::internal("cannot enable WAL mode on " + path + " (journal mode is \"" +
                                journal_mode + "\")"));
  }
  if (Result<void> pragmas =
          connection->exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", "setting pragmas");
      !pragmas) {
    return fail(pragmas.error());
  }

  for (auto [statement, sql] :
       {std::pair{&connection->begin_, "BEGIN IMMEDIATE"},
        std::pair{&connection->commit_, "COMMIT"}, std::pair{&connection->rollback_, "ROLLBACK"}}) {
    Result<Statement> prepared = connection->prepare(sql);
    if (!prepared) return fail(prepared.error());
    *statement = std::move(*prepared);
  }
  return connection;
}

// close_v2 defers the close until every statement of the connection is finalized (the members
// below, and any owner's), so the order in which statements and connection die does not matter.
Connection::~Connection() { sqlite3_close_v2(db_); }

Result<void> Connection::exec(std::string_view sql, std::string_view operation) {
  std::string script(sql);  // sqlite3_exec needs a NUL-terminated string
  int rc = sqlite3_exec(db_, script.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return fail(sqlite_error(db_, rc, operation));
  return {};
}

Result<Transaction> Connection::begin_immediate() {
  ScopedReset reset(begin_);
  if (Result<void> begun = begin_.run("BEGIN IMMEDIATE"); !begun) return fail(begun.error());
  return Transaction(this);
}

Transaction::Transaction(Transaction&& other) noexcept
    : connection_(std::exchange(other.connection_, nullptr)) {}

Transaction::~Transaction() {
  if (connection_ == nullptr) return;
  // A failed statement may already have rolled the transaction back; ROLLBACK is then an error
  // that changes nothing, so its result is deliberately ignored.
  if (!sqlite3_get_autocommit(connection_->db_)) {
    ScopedReset reset(connection_->rollback_);
    (void)connection_->rollback_.run("ROLLBACK");
  }
}

Result<void> Transaction::commit() {
  Statement& commit = connection_->commit_;
  ScopedReset reset(commit);
  Result<void> committed = commit.run("COMMIT");
  if (committed) connection_ = nullptr;  // on failure the destructor rolls back
  return committed;
}

}  // namespace till::sqlite
