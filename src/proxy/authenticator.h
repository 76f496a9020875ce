// Authentication of till tokens (admin and scoped) against the store.
//
// Every failure to authenticate — malformed, bad checksum, unknown id, wrong secret, revoked
// admin key — is the same kInvalidApiKey with a generic message, so a caller learns nothing
// about which part was wrong. Status checks (revoked, expired, …) of scoped keys are separate:
// see check_key_usable().
//
// Thread-safety: safe to call concurrently; holds references to the store and keyring, which
// must outlive it.
#pragma once

#include <optional>
#include <string_view>

#include "core/master_key.h"
#include "core/token.h"
#include "till/clock.h"
#include "till/error.h"
#include "till/key.h"
#include "till/store.h"

namespace till {

struct AuthenticatedKey {
  KeyRecord record;
  ParsedToken token;
};

class Authenticator {
 public:
  explicit Authenticator(Store& store) : store_(store) {}

  Result<AdminKeyRecord> authenticate_admin(std::string_view token) const;
  Result<AuthenticatedKey> authenticate_scoped(std::string_view token) const;

 private:
  Store& store_;
};

// The token in an "Authorization: Bearer <token>" header value, or nullopt.
std::optional<std::string_view> bearer_token(std::string_view authorization);

// kKeyRevoked / kKeyExpired / kKeySuspended with a message that says what to do, if the key's
// effective status at `now` forbids use; exhausted keys pass (callers decide what they may do).
Result<void> check_key_usable(const KeyRecord& key, Timestamp now);

}  // namespace till
