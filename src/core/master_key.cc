#include "core/master_key.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>

#include "core/crypto.h"

namespace till {
namespace {

constexpr std::string_view kLineTag = "till-master-key";
constexpr size_t kMaxFileSize = 64 * 1024;
constexpr std::string_view kFileHeader =
    "# till master key: seals the upstream credentials inside till keys.\n"
    "# Keep this file secret (mode 0600) and back it up: without it no sealed key can be used.\n";

// Zeroes memory that held key material before it is released.
void wipe(std::string& s) { OPENSSL_cleanse(s.data(), s.size()); }
void wipe(crypto::Bytes& b) { OPENSSL_cleanse(b.data(), b.size()); }

// Wipes every key of a vector when leaving a scope, whichever way; a vector moved from is empty.
class WipeKeysOnExit {
 public:
  explicit WipeKeysOnExit(std::vector<MasterKey>& keys) : keys_(keys) {}
  WipeKeysOnExit(const WipeKeysOnExit&) = delete;
  WipeKeysOnExit& operator=(const WipeKeysOnExit&) = delete;
  ~WipeKeysOnExit() {
    for (MasterKey& k : keys_) OPENSSL_cleanse(k.key.data(), k.key.size());
  }

 private:
  std::vector<MasterKey>& keys_;
};

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// An fd closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and reports the result (close can report a deferred write error).
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

constexpr bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Parses "v<decimal>" with no leading zero and a value in 1..UINT32_MAX.
bool parse_version(std::string_view field, uint32_t& version) {
  if (field.size() < 2 || field.size() > 11 || field[0] != 'v' || field[1] == '0') return false;
  uint64_t v = 0;
  for (char c : field.substr(1)) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return false;
  version = static_cast<uint32_t>(v);
  return true;
}

std::string key_line(const MasterKey& key) {
  return std::string(kLineTag) + " v" + std::to_string(key.version) + " " +
         crypto::base64_encode(key.key) + "\n";
}

// Parses the text of a master key file; `file` names it in messages.
Result<MasterKeyring> parse_key_file(std::string_view text, const std::string& file) {
  std::vector<MasterKey> keys;
  WipeKeysOnExit wipe_keys(keys);
  size_t line_number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (line.empty() || line.front() == '#') continue;

    std::vector<std::string_view> fields;
    while (!line.empty()) {
      size_t stop = 0;
      while (stop < line.size() && !is_space(line[stop])) ++stop;
      fields.push_back(line.substr(0, stop));
      line = trim(line.substr(stop));
    }
    std::string where = "master key file " + file + " line " + std::to_string(line_number);
    MasterKey key;
    if (fields.size() != 3 || fields[0] != kLineTag || !parse_version(fields[1], key.version)) {
      return fail(Error::internal(where + " is malformed (expected \"" + std::string(kLineTag) +
                                  " v<version> <base64 of 32 bytes>\"); fix it or restore the "
                                  "file from your backup"));
    }
    auto bytes = crypto::base64_decode(fields[2]);
    if (!bytes || bytes->size() != key.key.size()) {
      if (bytes) wipe(*bytes);
      return fail(Error::internal(where + ": the key is not the base64 of exactly 32 bytes; " +
                                  "restore the file from your backup"));
    }
    std::copy(bytes->begin(), bytes->end(), key.key.begin());
    wipe(*bytes);
    keys.push_back(key);
    OPENSSL_cleanse(key.key.data(), key.key.size());
  }
  if (keys.empty()) {
    return fail(Error::internal("master key file " + file +
                                " contains no key; restore it from your backup, or delete it to "
                                "generate a new key (keys sealed under the old one stop working)"));
  }
  std::vector<uint32_t> versions;
  for (const MasterKey& k : keys) versions.push_back(k.version);
  std::sort(versions.begin(), versions.end());
  if (auto dup = std::adjacent_find(versions.begin(), versions.end()); dup != versions.end()) {
    return fail(Error::internal("master key file " + file + ": version v" + std::to_string(*dup) +
                                " appears more than once; keep one line per version"));
  }
  return MasterKeyring::from_keys(std::move(keys));
}

// Reads and parses an existing key file through an already open descriptor, checking on that same
// descriptor (not the path, which could change in between) that it is a private regular file.
Result<MasterKeyring> load_key_file(const Fd& fd, const std::string& file) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail(Error::internal("cannot stat master key file " + file + ": " + errno_text(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(Error::internal("master key file " + file +
                                " is not a regular file; replace it with the key file from your "
                                "backup"));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(Error::internal("master key file " + file +
                                " is readable or writable by group or others (mode " + mode +
                                "); run: chmod 600 " + file));
  }
  if (st.st_size > static_cast<off_t>(kMaxFileSize)) {
    return fail(Error::internal("master key file " + file + " is larger than " +
                                std::to_string(kMaxFileSize) +
                                " bytes, so it is not a till master key file; restore it from "
                                "your backup"));
  }
  std::string text(kMaxFileSize + 1, '\0');
  size_t size = 0;
  while (size < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + size, text.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      wipe(text);
      return fail(
          Error::internal("cannot read master key file " + file + ": " + errno_text(errno)));
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  if (size > kMaxFileSize) {
    wipe(text);
    return fail(Error::internal("master key file " + file + " grew while being read; retry"));
  }
  auto keyring = parse_key_file(std::string_view(text.data(), size), file);
  wipe(text);
  return keyring;
}

Result<void> write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(Error::internal(errno_text(errno)));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// Makes data_dir (mode 0700) and its parents if missing.
Result<void> ensure_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (dir.empty() || std::filesystem::is_directory(dir, ec)) return {};
  if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail(
        Error::internal("cannot create data directory " + dir.string() + ": " + errno_text(errno)));
  }
  return {};
}

// Generates a key and publishes it as `file`: written and synced under a temporary name created
// with O_EXCL and mode 0600, then hard-linked to `file`, which fails rather than replace a file
// another process created first. A crash leaves either no key file or a complete one.
Result<MasterKeyring> create_key_file(const std::filesystem::path& data_dir,
                                      const std::filesystem::path& path) {
  const std::string file = path.string();
  if (auto made = ensure_directory(data_dir); !made) return fail(made.error());

  MasterKey key{.version = 1};
  crypto::random_bytes(key.key);
  std::string content = std::string(kFileHeader) + key_line(key);

  const std::filesystem::path temp =
      data_dir / (std::string(MasterKeyring::kFileName) + ".tmp-" + crypto::random_base62(12));
  auto cannot_create = [&](const std::string& what) {
    wipe(content);
    OPENSSL_cleanse(key.key.data(), key.key.size());
    return fail(Error::internal("cannot create master key file " + file + ": " + what +
                                "; check that the data directory is writable"));
  };
  {
    Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) return cannot_create(errno_text(errno));
    auto written = write_all(fd.get(), content);
    if (!written || ::fsync(fd.get()) != 0 || fd.close() != 0) {
      std::string why = written ? errno_text(errno) : written.error().message;
      ::unlink(temp.c_str());
      return cannot_create(why);
    }
  }
  wipe(content);
  int linked = ::link(temp.c_str(), path.c_str());
  int link_errno = errno;
  ::unlink(temp.c_str());
  if (linked != 0) {
    if (link_errno == EEXIST) {
      // Another process created the file first: use its key, not ours.
      OPENSSL_cleanse(key.key.data(), key.key.size());
      Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
      if (fd.get() < 0) {
        return fail(
            Error::internal("cannot open master key file " + file + ": " + errno_text(errno)));
      }
      return load_key_file(fd, file);
    }
    return cannot_create(errno_text(link_errno));
  }
  // Make the new directory entry durable; failure here is not worth refusing to start over.
  if (Fd dir(::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dir.get() >= 0) {
    ::fsync(dir.get());
  }
  auto keyring = MasterKeyring::from_keys({key});
  OPENSSL_cleanse(key.key.data(), key.key.size());
  return keyring;
}

Result<MasterKeyring> from_env(std::string_view value) {
  constexpr std::string_view kHint = "generate one with: openssl rand -base64 32";
  std::string_view text = trim(value);
  if (text.empty()) {
    return fail(Error::internal("TILL_MASTER_KEY is set but empty; set it to a key (" +
                                std::string(kHint) +
                                ") or unset it to use the key file in the data directory"));
  }
  auto bytes = crypto::base64_decode(text);
  if (!bytes) {
    return fail(Error::internal("TILL_MASTER_KEY is not valid base64; " + std::string(kHint)));
  }
  if (bytes->size() != 32) {
    size_t size = bytes->size();
    wipe(*bytes);
    return fail(Error::internal("TILL_MASTER_KEY must be the base64 of exactly 32 bytes, not " +
                                std::to_string(size) + "; " + std::string(kHint)));
  }
  MasterKey key{.version = 1};
  std::copy(bytes->begin(), bytes->end(), key.key.begin());
  wipe(*bytes);
  auto keyring = MasterKeyring::from_keys({key});
  OPENSSL_cleanse(key.key.data(), key.key.size());
  return keyring;
}

}  // namespace

Result<MasterKeyring> MasterKeyring::load_or_create(const std::filesystem::path& data_dir,
                                                    const char* env_base64) {
  if (env_base64 != nullptr) return from_env(env_base64);
  const std::filesystem::path path = data_dir / kFileName;
  const std::string file = path.string();
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return create_key_file(data_dir, path);
    return fail(Error::internal("cannot open master key file " + file + ": " + errno_text(errno)));
  }
  return load_key_file(fd, file);
}

Result<MasterKeyring> MasterKeyring::from_keys(std::vector<MasterKey> keys) {
  WipeKeysOnExit wipe_keys(keys);
  auto refuse = [](std::string message) { return fail(Error::internal(std::move(message))); };
  if (keys.empty()) return refuse("a master keyring needs at least one key");
  std::sort(keys.begin(), keys.end(),
            [](const MasterKey& a, const MasterKey& b) { return a.version < b.version; });
  if (keys.front().version == 0) return refuse("master key version 0 is reserved");
  for (size_t i = 1; i < keys.size(); ++i) {
    if (keys[i].version == keys[i - 1].version) {
      return refuse("master key version v" + std::to_string(keys[i].version) +
                    " appears more than once");
    }
  }
  return MasterKeyring(std::move(keys));
}

MasterKeyring::~MasterKeyring() {
  for (MasterKey& k : keys_) OPENSSL_cleanse(k.key.data(), k.key.size());
}

const MasterKey* MasterKeyring::find(uint32_t version) const {
  auto it = std::lower_bound(keys_.begin(), keys_.end(), version,
                             [](const MasterKey& k, uint32_t v) { return k.version < v; });
  if (it == keys_.end() || it->version != version) return nullptr;
  return &*it;
}

}  // namespace till
