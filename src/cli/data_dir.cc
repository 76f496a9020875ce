#include "cli/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace till {
namespace {

Result<DataDirLock> lock_data_dir(const std::filesystem::path& path) {
  const std::filesystem::path lock_path = path / "till.lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return fail(Error::internal("cannot open " + lock_path.string() + ": " + std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return fail(Error::internal("data dir " + path.string() +
                                  " is in use by another till process; stop it or pick another "
                                  "--data-dir"));
    }
    return fail(Error::internal("cannot lock " + lock_path.string() + ": " + std::strerror(err)));
  }
  return DataDirLock(fd);
}

}  // namespace

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
}

Result<DataDir> open_data_dir(const std::filesystem::path& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail(Error::internal("cannot create data dir " + path.string() + ": " +
                                std::strerror(errno)));
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    return fail(Error::internal("data dir " + path.string() + " is not a directory"));
  }
  auto lock = lock_data_dir(path);
  if (!lock) return fail(lock.error());
  auto keyring = MasterKeyring::load_or_create(path, std::getenv("TILL_MASTER_KEY"));
  if (!keyring) return fail(keyring.error());
  auto store = open_sqlite_store((path / "till.db").string());
  if (!store) return fail(store.error());
  if (auto orphans = (*store)->settle_orphaned_reservations(system_clock().now()); !orphans) {
    return fail(orphans.error());
  }
  return DataDir{path, std::move(*lock), std::move(*keyring), std::move(*store)};
}

}  // namespace till
