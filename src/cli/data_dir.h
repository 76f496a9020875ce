// The data directory of a till server: master key, database.
//
//   <dir>/master.key   versioned master key (mode 0600), unless TILL_MASTER_KEY is set
//   <dir>/till.db      the embedded SQLite store (+ -wal, -shm), mode 0600
//   <dir>/till.lock    held (flock) by the one process using the data dir
#pragma once

#include <filesystem>
#include <memory>
#include <utility>

#include "core/master_key.h"
#include "till/store.h"

namespace till {

// An exclusive lock on a data dir, released when destroyed (or when the process dies).
class DataDirLock {
 public:
  explicit DataDirLock(int fd) : fd_(fd) {}
  DataDirLock(DataDirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DataDirLock& operator=(DataDirLock&&) = delete;
  ~DataDirLock();

 private:
  int fd_;
};

struct DataDir {
  std::filesystem::path path;
  DataDirLock lock;
  MasterKeyring keyring;
  std::unique_ptr<Store> store;
};

// Creates the directory (mode 0700) if missing and locks it: a second process using the same
// data dir would settle the first one's in-flight reservations as orphans, so it is refused
// ("in use by another till process"). Then loads or creates the master key (honouring
// TILL_MASTER_KEY), opens the store and applies migrations, and settles reservations a crash
// left outstanding (so a crash never grants budget).
Result<DataDir> open_data_dir(const std::filesystem::path& path);

}  // namespace till
