// The master key: the 256-bit server secret that seals upstream credentials (DESIGN.md, "master
// key"). It is versioned so that it can be rotated: a sealed token records the version it was
// sealed under, new seals use the highest version, and older versions stay loadable to open
// tokens issued before a rotation.
//
// Sources, in order: the TILL_MASTER_KEY environment variable (base64 of 32 bytes; it is version
// 1 and nothing is written), else the file <data_dir>/master.key, created on first start.
//
// The file is text, one version per line; '#' lines and blank lines are ignored:
//
//   # till master key: ...
//   till-master-key v1 <base64 of 32 bytes>
//
// It must be a regular file with no group or other permission bits (0600 or stricter).
//
// Rotation: add_version appends a new highest version, which new seals then use; once nothing is
// sealed under an old version any more (vault seals re-wrapped, tokens reissued), remove_version
// retires it. Both replace the file atomically and keep its comment lines.
//
// No error message ever contains key material.
//
// Thread-safety: a MasterKeyring is immutable once built; its const members may be called from
// any number of threads. It owns its key bytes and wipes them when destroyed. add_version and
// remove_version are serialized across threads and processes by an exclusive flock on data_dir;
// load_or_create may run concurrently with them and sees the old file or the new one.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <utility>
#include <vector>

#include "till/error.h"

namespace till {

struct MasterKey {
  uint32_t version = 0;  // >= 1; 0 is reserved for "not sealed" in tokens
  std::array<uint8_t, 32> key{};
};

class MasterKeyring {
 public:
  static constexpr std::string_view kFileName = "master.key";

  // The keyring of this server. If `env_base64` (the value of TILL_MASTER_KEY, nullptr when unset)
  // is non-null it must be the standard base64 of exactly 32 bytes, surrounding whitespace
  // allowed; it becomes version 1 and no file is read or written. Otherwise reads
  // <data_dir>/master.key, or, if that file does not exist, generates a random key and creates the
  // file (and data_dir itself, mode 0700, if missing) with mode 0600 from its first moment: the
  // file appears complete or not at all, and of several processes racing to create it exactly one
  // wins and the others load its key.
  // Errors are kInternal with a one-line message naming the variable or file and what to do: for a
  // file with any group/other permission bit, that is not a regular file, is empty, has a
  // malformed line, a key that is not 32 bytes, or a version that appears twice; for a variable
  // that is empty, not base64, or not 32 bytes; for any I/O failure.
  static Result<MasterKeyring> load_or_create(const std::filesystem::path& data_dir,
                                              const char* env_base64);

  // Adds a new random key, version = highest + 1, to <data_dir>/master.key and returns the new
  // keyring. The file is replaced atomically (write a temp file with mode 0600 in the same
  // directory, fsync, rename), keeping its comment lines and existing versions; a crash leaves the
  // old or the new file, never a partial one. Errors (kInternal, one line naming the file and what
  // to do): the file does not exist, fails the same checks load_or_create applies, any I/O error.
  // TILL_MASTER_KEY plays no part: this always edits the file.
  static Result<MasterKeyring> add_version(const std::filesystem::path& data_dir);

  // Removes `version` from <data_dir>/master.key the same atomic way and returns the new keyring.
  // kNotFound if the file has no such version; kConflict if it is the highest version (the one new
  // seals use: "master key v3 is the current one; rotate to a new version before retiring it").
  // Otherwise errors as add_version. Whatever is still sealed under `version` stops opening.
  static Result<MasterKeyring> remove_version(const std::filesystem::path& data_dir,
                                              uint32_t version);

  // A keyring of the given keys, in any order. Errors (kInternal): no keys, a version 0, a version
  // that appears twice.
  static Result<MasterKeyring> from_keys(std::vector<MasterKey> keys);

  MasterKeyring(const MasterKeyring&) = default;
  MasterKeyring& operator=(const MasterKeyring&) = default;
  MasterKeyring(MasterKeyring&&) = default;
  MasterKeyring& operator=(MasterKeyring&&) = default;
  ~MasterKeyring();

  // The key new seals use: the one with the highest version.
  // REQUIRES: *this has not been moved from.
  const MasterKey& current() const { return keys_.back(); }

  // Versions in this ring, ascending.
  std::vector<uint32_t> versions() const;

  // The key of `version`, or nullptr if this keyring has none. The pointer is valid as long as
  // *this is alive and unmodified.
  const MasterKey* find(uint32_t version) const;

 private:
  explicit MasterKeyring(std::vector<MasterKey> keys) : keys_(std::move(keys)) {}

  std::vector<MasterKey> keys_;  // non-empty, sorted by version, versions unique and >= 1
};

}  // namespace till
