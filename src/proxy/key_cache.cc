#include "proxy/key_cache.h"

#include <algorithm>
#include <mutex>

#include "core/crypto.h"
#include "core/vault_seal.h"
#include "proxy/authenticator.h"

namespace till {

KeyCache::KeyCache(Store& store, const MasterKeyring& keyring, const Clock& clock,
                   std::chrono::milliseconds ttl)
    : store_(store), keyring_(keyring), clock_(clock), ttl_(ttl) {}

Result<std::shared_ptr<const KeyCache::Entry>> KeyCache::authenticate(std::string_view token) {
  const SecretHash digest = crypto::sha256(token);
  const std::string slot_key(digest.begin(), digest.end());
  const Timestamp now = clock_.now();
  {
    std::shared_lock lock(mutex_);
    if (auto it = slots_.find(slot_key); it != slots_.end() && now < it->second.fresh_until) {
      return it->second.entry;
    }
  }
  auto authenticated = Authenticator(store_).authenticate_scoped(token, now);
  if (!authenticated) return fail(authenticated.error());
  auto credential = upstream_credential(authenticated->record, authenticated->token);
  if (!credential) return fail(credential.error());
  auto entry = std::make_shared<const Entry>(
      Entry{std::move(authenticated->record), std::move(*credential)});
  Timestamp fresh_until = now + ttl_;
  if (authenticated->token_valid_until) {
    fresh_until = std::min(fresh_until, *authenticated->token_valid_until);
  }
  std::unique_lock lock(mutex_);
  slots_[slot_key] = Slot{entry, fresh_until};
  return entry;
}

Result<std::string> KeyCache::upstream_credential(const KeyRecord& record,
                                                  const ParsedToken& token) {
  if (!record.credential) {
    auto opened = open_credential(keyring_, token);
    if (!opened) {
      return fail(
          Error::client(ErrorCode::kInvalidApiKey,
                        "till: key " + record.id + " carries no usable upstream credential"));
    }
    return std::move(*opened);
  }
  const std::string& name = *record.credential;
  auto stored = store_.find_credential(name);
  if (!stored && stored.error().code != ErrorCode::kNotFound) return fail(stored.error());
  std::string problem = "is not in the vault";
  if (stored) {
    auto secret = open_vault_secret(keyring_, name, vault_seal_of(*stored));
    if (secret) return std::move(*secret);
    problem = "does not open with this server's master key";
  }
  return fail(Error{ErrorCode::kUpstreamError, ErrorSource::kInternal, false,
                    "till: the upstream credential '" + name + "' of key " + record.id + " " +
                        problem + "; an administrator must fix it (till credential list)"});
}

void KeyCache::invalidate(std::string_view key_id) {
  std::unique_lock lock(mutex_);
  std::erase_if(slots_, [&](const auto& slot) { return slot.second.entry->record.id == key_id; });
}

void KeyCache::invalidate_credential(std::string_view name) {
  std::unique_lock lock(mutex_);
  std::erase_if(slots_,
                [&](const auto& slot) { return slot.second.entry->record.credential == name; });
}

}  // namespace till
