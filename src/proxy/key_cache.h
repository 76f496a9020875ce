// KeyCache: authenticated scoped keys, kept briefly so the request path does no store I/O and
// no decryption for a key it has just seen.
//
// An entry holds the key's record (status, limits, scope — not its counters, which live in the
// BudgetLedger) and its opened upstream credential, and is bound to the exact token that opened
// it (by SHA-256, compared in constant time). Entries live for `ttl`; a change made through this
// process (revoke) invalidates its entry at once, so it applies to the next request. Changes made
// by another process sharing the store are seen within `ttl`.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/master_key.h"
#include "till/clock.h"
#include "till/error.h"
#include "till/key.h"
#include "till/store.h"

namespace till {

class KeyCache {
 public:
  struct Entry {
    KeyRecord record;
    std::string credential;  // the opened upstream credential; never logged
  };

  KeyCache(Store& store, const MasterKeyring& keyring, const Clock& clock,
           std::chrono::milliseconds ttl = std::chrono::seconds(1));

  // The key `token` authenticates, with its upstream credential. Errors as
  // Authenticator::authenticate_scoped, plus kInvalidApiKey if the credential does not open.
  Result<std::shared_ptr<const Entry>> authenticate(std::string_view token);

  // Drops the key's entry: the next request reads the store again.
  void invalidate(std::string_view key_id);

 private:
  struct Slot {
    SecretHash token_digest;
    std::shared_ptr<const Entry> entry;
    Timestamp loaded_at;
  };

  Store& store_;
  const MasterKeyring& keyring_;
  const Clock& clock_;
  const std::chrono::milliseconds ttl_;
  std::shared_mutex mutex_;
  std::unordered_map<std::string, Slot> slots_;  // by key id
};

}  // namespace till
