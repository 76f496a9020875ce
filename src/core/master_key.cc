#include "core/master_key.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <functional>
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

// Where the line of one version is in a key file's text: [offset, offset + size), including its
// line break if it has one.
struct KeyLine {
  uint32_t version = 0;
  size_t offset = 0;
  size_t size = 0;
};

// Parses the text of a master key file; `file` names it in messages. If `key_lines` is not null,
// it receives the place of every key line, in file order.
Result<MasterKeyring> parse_key_file(std::string_view text, const std::string& file,
                                     std::vector<KeyLine>* key_lines = nullptr) {
  std::vector<MasterKey> keys;
  WipeKeysOnExit wipe_keys(keys);
  std::vector<KeyLine> lines;
  const std::string_view whole = text;
  size_t line_number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    size_t line_offset = whole.size() - text.size();
    size_t line_size = end == std::string_view::npos ? text.size() : end + 1;
    std::string_view line = trim(text.substr(0, end));
    text = text.substr(line_size);
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
    lines.push_back({key.version, line_offset, line_size});
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
  if (key_lines != nullptr) *key_lines = std::move(lines);
  return MasterKeyring::from_keys(std::move(keys));
}

// Wipes a string that held key material when leaving a scope, whichever way.
class WipeTextOnExit {
 public:
  explicit WipeTextOnExit(std::string& text) : text_(text) {}
  WipeTextOnExit(const WipeTextOnExit&) = delete;
  WipeTextOnExit& operator=(const WipeTextOnExit&) = delete;
  ~WipeTextOnExit() { wipe(text_); }

 private:
  std::string& text_;
};

// Reads an existing key file through an already open descriptor into `text`, checking on that
// same descriptor (not the path, which could change in between) that it is a private regular
// file. `text` holds key material: the caller wipes it, even on failure.
Result<void> read_key_file(const Fd& fd, const std::string& file, std::string& text) {
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
  text.assign(kMaxFileSize + 1, '\0');
  size_t size = 0;
  while (size < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + size, text.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return fail(
          Error::internal("cannot read master key file " + file + ": " + errno_text(errno)));
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  if (size > kMaxFileSize) {
    return fail(Error::internal("master key file " + file + " grew while being read; retry"));
  }
  // Shrinking keeps the buffer: wiping text.size() bytes later still covers every byte read.
  text.resize(size);
  return {};
}

// Reads and parses an existing key file; see read_key_file.
Result<MasterKeyring> load_key_file(const Fd& fd, const std::string& file) {
  std::string text;
  WipeTextOnExit wipe_text(text);
  if (auto read = read_key_file(fd, file, text); !read) return fail(read.error());
  return parse_key_file(text, file);
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

// Writes `content` to a new file in `dir` under a random temporary name, created with O_EXCL and
// mode 0600 from its first moment and synced to disk, and returns its path. On failure nothing is
// left behind and the error message is the bare reason ("No space left on device").
Result<std::filesystem::path> write_temp_file(const std::filesystem::path& dir,
                                              std::string_view content) {
  const std::filesystem::path temp =
      dir / (std::string(MasterKeyring::kFileName) + ".tmp-" + crypto::random_base62(12));
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) return fail(Error::internal(errno_text(errno)));
  auto written = write_all(fd.get(), content);
  if (!written || ::fsync(fd.get()) != 0 || fd.close() != 0) {
    std::string why = written ? errno_text(errno) : written.error().message;
    ::unlink(temp.c_str());
    return fail(Error::internal(why));
  }
  return temp;
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

  auto cannot_create = [&](const std::string& what) {
    wipe(content);
    OPENSSL_cleanse(key.key.data(), key.key.size());
    return fail(Error::internal("cannot create master key file " + file + ": " + what +
                                "; check that the data directory is writable"));
  };
  auto temp = write_temp_file(data_dir, content);
  if (!temp) return cannot_create(temp.error().message);
  wipe(content);
  int linked = ::link(temp->c_str(), path.c_str());
  int link_errno = errno;
  ::unlink(temp->c_str());
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

// Computes the new text of a key file from its current `text`, the keyring parsed from it and
// the place of its key lines, into `out` (which the caller wipes); `file` names it in messages.
using KeyFileEdit = std::function<Result<void>(std::string_view text, const MasterKeyring& keyring,
                                               const std::vector<KeyLine>& lines,
                                               const std::string& file, std::string& out)>;

// Replaces <data_dir>/master.key with `edit` applied to it. The file must pass the checks
// load_or_create applies, and so must the edited text before anything is written. The new text is
// written to a temporary file (mode 0600) in data_dir, synced and renamed over the old one, so a
// crash leaves the old file or the new one. Rewrites are serialized across processes with an
// exclusive flock on data_dir: two at once would each replace the file they read, losing one
// edit. Readers take no lock; the rename shows them one whole file or the other.
Result<MasterKeyring> rewrite_key_file(const std::filesystem::path& data_dir,
                                       const KeyFileEdit& edit) {
  const std::filesystem::path path = data_dir / MasterKeyring::kFileName;
  const std::string file = path.string();
  auto missing = [&] {
    return fail(Error::internal("master key file " + file +
                                " does not exist; start till once to create it, or restore it "
                                "from your backup"));
  };
  const std::filesystem::path dir_path = data_dir.empty() ? "." : data_dir;
  Fd dir(::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) {
    if (errno == ENOENT) return missing();
    return fail(Error::internal("cannot open data directory " + dir_path.string() + ": " +
                                errno_text(errno)));
  }
  while (::flock(dir.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return fail(Error::internal("cannot lock data directory " + dir_path.string() + ": " +
                                  errno_text(errno)));
    }
  }

  std::string text;
  WipeTextOnExit wipe_text(text);
  {
    Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) return missing();
      return fail(
          Error::internal("cannot open master key file " + file + ": " + errno_text(errno)));
    }
    if (auto read = read_key_file(fd, file, text); !read) return fail(read.error());
  }
  std::vector<KeyLine> lines;
  auto keyring = parse_key_file(text, file, &lines);
  if (!keyring) return fail(keyring.error());

  std::string content;
  WipeTextOnExit wipe_content(content);
  if (auto edited = edit(text, *keyring, lines, file, content); !edited) {
    return fail(edited.error());
  }
  auto updated = parse_key_file(content, file);
  if (!updated) return fail(updated.error());

  auto cannot_replace = [&](const std::string& why) {
    return fail(Error::internal("cannot replace master key file " + file + ": " + why +
                                "; the file is unchanged; check that the data directory is "
                                "writable and has free space"));
  };
  auto temp = write_temp_file(dir_path, content);
  if (!temp) return cannot_replace(temp.error().message);
  if (::rename(temp->c_str(), path.c_str()) != 0) {
    std::string why = errno_text(errno);
    ::unlink(temp->c_str());
    return cannot_replace(why);
  }
  // Make the rename durable; the new file is complete either way, so a failure here is not
  // reported as a failed rotation.
  ::fsync(dir.get());
  return updated;
}

}  // namespace

Result<MasterKeyring> MasterKeyring::add_version(const std::filesystem::path& data_dir) {
  return rewrite_key_file(
      data_dir,
      [](std::string_view text, const MasterKeyring& keyring, const std::vector<KeyLine>&,
         const std::string& file, std::string& out) -> Result<void> {
        uint32_t current = keyring.current().version;
        if (current == UINT32_MAX) {
          return fail(Error::internal("master key file " + file + " already has version v" +
                                      std::to_string(current) +
                                      ", the highest possible; no version can be added"));
        }
        MasterKey key{.version = current + 1};
        crypto::random_bytes(key.key);
        std::string line = key_line(key);
        OPENSSL_cleanse(key.key.data(), key.key.size());
        // Reserved up front so that no reallocation leaves an unwiped copy of the keys behind.
        out.reserve(text.size() + 1 + line.size());
        out.assign(text);
        if (!out.empty() && out.back() != '\n') out += '\n';
        out += line;
        wipe(line);
        return {};
      });
}

Result<MasterKeyring> MasterKeyring::remove_version(const std::filesystem::path& data_dir,
                                                    uint32_t version) {
  return rewrite_key_file(
      data_dir,
      [version](std::string_view text, const MasterKeyring& keyring,
                const std::vector<KeyLine>& lines, const std::string& file,
                std::string& out) -> Result<void> {
        auto line = std::find_if(lines.begin(), lines.end(),
                                 [version](const KeyLine& l) { return l.version == version; });
        if (line == lines.end()) {
          return fail(Error::client(
              ErrorCode::kNotFound,
              "master key file " + file + " has no version v" + std::to_string(version)));
        }
        if (version == keyring.current().version) {
          return fail(Error::client(ErrorCode::kConflict,
                                    "master key v" + std::to_string(version) +
                                        " is the current one; rotate to a new version before "
                                        "retiring it"));
        }
        out.reserve(text.size());
        out.append(text.substr(0, line->offset));
        out.append(text.substr(line->offset + line->size));
        return {};
      });
}

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

std::vector<uint32_t> MasterKeyring::versions() const {
  std::vector<uint32_t> versions;
  versions.reserve(keys_.size());
  for (const MasterKey& k : keys_) versions.push_back(k.version);
  return versions;
}

const MasterKey* MasterKeyring::find(uint32_t version) const {
  auto it = std::lower_bound(keys_.begin(), keys_.end(), version,
                             [](const MasterKey& k, uint32_t v) { return k.version < v; });
  if (it == keys_.end() || it->version != version) return nullptr;
  return &*it;
}

}  // namespace till
