// The JSON body of POST /api/v1/keys built from `till key create` / `till run` options.
#pragma once

#include <boost/json/object.hpp>

#include "cli/commands.h"
#include "till/error.h"

namespace till {

// Reads the upstream credential (from --upstream-key-env, the provider's usual variable, or
// stdin — never argv) unless --credential names a vault credential, and the limits. Errors name
// the option at fault.
Result<boost::json::object> key_create_body(const KeyCreateOptions& options);

// The body of POST /api/v1/key/children: the limits, scope and names, no credential (a sub-key
// uses its parent's); the provider only if given.
Result<boost::json::object> sub_key_body(const KeyCreateOptions& options);

}  // namespace till
