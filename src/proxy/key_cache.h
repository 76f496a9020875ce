// KeyCache: authenticated scoped keys, kept briefly so the request path does no store I/O and
// no decryption for a token it has just seen.
//
// An entry holds the key's record (status, limits, scope — not its counters, which live in the
// BudgetLedger) and its upstream credential, opened from the token (sealed keys) or from the
// vault (keys that name a credential). Entries are per token, found by the token's SHA-256, so a
// key's current and previous token (during a rotation's grace) each have their own. Entries live
// for `ttl` and never past their token's end of validity. A change made through this process —
// a revoke, a rotation, a new vault secret — invalidates the entries at once, so it applies to
// the next request; changes made by another process sharing the store are seen within `ttl`.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/master_key.h"
#include "core/token.h"
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
  // Authenticator::authenticate_scoped, plus those of upstream_credential().
  Result<std::shared_ptr<const Entry>> authenticate(std::string_view token);

  // Drops the entries of the key's tokens: the next request reads the store again.
  void invalidate(std::string_view key_id);

  // Drops the entries of every key that uses the vault credential `name`.
  void invalidate_credential(std::string_view name);

 private:
  struct Slot {
    std::shared_ptr<const Entry> entry;
    Timestamp fresh_until;  // min(loaded + ttl, the token's end of validity)
  };

  // The upstream credential of an authenticated key: opened from its token, or read from the
  // vault and opened. kInvalidApiKey if the token's sealed part does not open; kUpstreamError
  // naming the credential if a vault credential is missing or does not open (an operator's
  // problem: the message says so); store errors pass through.
  Result<std::string> upstream_credential(const KeyRecord& record, const ParsedToken& token);

  Store& store_;
  const MasterKeyring& keyring_;
  const Clock& clock_;
  const std::chrono::milliseconds ttl_;
  std::shared_mutex mutex_;
  std::unordered_map<std::string, Slot> slots_;  // by the token's SHA-256 (raw bytes)
};

}  // namespace till
