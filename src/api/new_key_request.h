// Validation of a request to create a scoped key (POST /api/v1/keys).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "till/clock.h"
#include "till/error.h"
#include "till/key.h"

namespace till {

// A validated request: every field within its bounds, names canonical.
struct NewKeySpec {
  std::string provider;
  std::string name;
  std::string metadata_json = "{}";
  std::string upstream_key;  // sealed into the token; never stored
  Limits limits;
  Scope scope;
  std::optional<Timestamp> expires_at;
};

// Parses and validates the JSON body. Every invalid field is kInvalidRequest whose `field` names
// it and whose message says why, e.g. field "max_requests", "max_requests: must be a whole
// number of at least 1". Unknown fields are refused (a typo must not silently drop a limit).
// `now` anchors expires_in and checks that expires_at is in the future.
Result<NewKeySpec> parse_new_key_request(std::string_view body, Timestamp now);

}  // namespace till
