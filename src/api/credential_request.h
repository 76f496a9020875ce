// Validation of vault credential requests: POST /api/v1/credentials and
// PUT /api/v1/credentials/{name}.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "till/error.h"

namespace till {

inline constexpr std::string_view kCredentialNameRule =
    "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'";

// True if `name` follows kCredentialNameRule.
bool is_credential_name(std::string_view name);

struct NewCredentialSpec {
  std::string name;
  std::string provider;
  std::string secret;  // the provider API key; sealed before it is stored
  std::optional<std::chrono::milliseconds> rotate_every;  // at least one hour
};

// {"name","provider","secret","rotate_every"?}. Errors as parse_new_key_request.
Result<NewCredentialSpec> parse_new_credential_request(std::string_view body);

// {"secret"}: the new secret of an existing credential.
Result<std::string> parse_credential_secret_request(std::string_view body);

}  // namespace till
