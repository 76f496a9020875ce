// The JSON shape of a vault credential record (GET /api/v1/credentials…). Never the secret, its
// ciphertext or its wrapped key.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "till/clock.h"
#include "till/credential.h"

namespace till {

// `keys`: ids of the keys (not revoked) that use the credential.
boost::json::object credential_to_json(const CredentialRecord& credential,
                                       const std::vector<std::string>& keys);

}  // namespace till
