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
  // When this token stops being accepted: the end of a rotation's grace for the previous token,
  // the rotation due time (KeyRecord::rotate_every) for the current one; nullopt = no end.
  std::optional<Timestamp> token_valid_until;
};

class Authenticator {
 public:
  explicit Authenticator(Store& store) : store_(store) {}

  Result<AdminKeyRecord> authenticate_admin(std::string_view token) const;

  // The key `token` belongs to, if it is the key's current token — or its previous token while
  // the rotation's grace lasts (at `now`). A current token past its rotation due time is
  // refused with kInvalidApiKey and a message saying so (only the key's holder can get there).
  Result<AuthenticatedKey> authenticate_scoped(std::string_view token, Timestamp now) const;

 private:
  Store& store_;
};

// The token in an "Authorization: Bearer <token>" header value, or nullopt.
std::optional<std::string_view> bearer_token(std::string_view authorization);

// kKeyRevoked / kKeyExpired / kKeySuspended with a message that says what to do, if the key's
// effective status at `now` forbids use; exhausted keys pass (callers decide what they may do).
Result<void> check_key_usable(const KeyRecord& key, Timestamp now);

}  // namespace till
