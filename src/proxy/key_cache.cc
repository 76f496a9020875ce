#include "proxy/key_cache.h"

#include <mutex>

#include "core/crypto.h"
#include "core/token.h"
#include "proxy/authenticator.h"

namespace till {

KeyCache::KeyCache(Store& store, const MasterKeyring& keyring, const Clock& clock,
                   std::chrono::milliseconds ttl)
    : store_(store), keyring_(keyring), clock_(clock), ttl_(ttl) {}

Result<std::shared_ptr<const KeyCache::Entry>> KeyCache::authenticate(std::string_view token) {
  auto parsed = parse_token(token);
  if (!parsed || parsed->kind != TokenKind::kScoped) {
    return fail(Error::client(ErrorCode::kInvalidApiKey,
                              "till: invalid API key; check that you copied the whole till_… key"));
  }
  const SecretHash digest = crypto::sha256(token);
  const Timestamp now = clock_.now();
  {
    std::shared_lock lock(mutex_);
    if (auto it = slots_.find(parsed->key_id); it != slots_.end() &&
                                                now - it->second.loaded_at < ttl_ &&
                                                crypto::constant_time_equal(it->second.token_digest,
                                                                            digest)) {
      return it->second.entry;
    }
  }
  auto authenticated = Authenticator(store_).authenticate_scoped(token);
  if (!authenticated) return fail(authenticated.error());
  auto credential = open_credential(keyring_, authenticated->token);
  if (!credential) {
    return fail(Error::client(ErrorCode::kInvalidApiKey,
                              "till: key " + authenticated->record.id +
                                  " carries no usable upstream credential"));
  }
  auto entry = std::make_shared<const Entry>(
      Entry{std::move(authenticated->record), std::move(*credential)});
  std::unique_lock lock(mutex_);
  slots_[parsed->key_id] = Slot{digest, entry, now};
  return entry;
}

void KeyCache::invalidate(std::string_view key_id) {
  std::unique_lock lock(mutex_);
  slots_.erase(std::string(key_id));
}

}  // namespace till
