// The credentials of control-plane requests: the admin key or a scoped key, both as
// "Authorization: Bearer <token>".
#pragma once

#include "proxy/authenticator.h"
#include "till/clock.h"
#include "till/http.h"

namespace till {

// The admin key the request carries. kInvalidApiKey, saying what to send, when there is none
// or it does not authenticate.
Result<AdminKeyRecord> require_admin(const Authenticator& auth, const HttpRequest& request);

// The scoped key the request carries, usable at `now` (its status errors otherwise).
Result<AuthenticatedKey> require_scoped(const Authenticator& auth, const HttpRequest& request,
                                        Timestamp now);

}  // namespace till
