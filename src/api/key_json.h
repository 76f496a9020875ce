// The JSON shape of a key record (DESIGN.md "Control plane"): what GET /api/v1/keys/{id},
// GET /api/v1/key and list entries return. Never includes the secret or its hash.
#pragma once

#include <boost/json/object.hpp>

#include "till/clock.h"
#include "till/key.h"

namespace till {

// `now` decides the effective status (an active key past expiry shows as expired).
boost::json::object key_to_json(const KeyRecord& key, Timestamp now);

}  // namespace till
