// Validation of requests that create or rotate scoped keys: POST /api/v1/keys,
// POST /api/v1/key/children, POST /api/v1/keys/{id}/rotate, POST /api/v1/key/rotate.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "till/clock.h"
#include "till/error.h"
#include "till/key.h"

namespace till {

enum class KeyRequestKind {
  kKey,     // a key of its own: provider and one of upstream_key / credential are required
  kSubKey,  // a sub-key: takes its parent's provider (naming it is allowed) and credential
};

// A validated request: every field within its bounds, names canonical.
struct NewKeySpec {
  std::string provider;  // may be empty for a sub-key
  std::string name;
  std::string metadata_json = "{}";
  std::string upstream_key;               // sealed into the token; never stored; or empty …
  std::optional<std::string> credential;  // … when the key uses this vault credential
  Limits limits;
  Scope scope;
  std::optional<Timestamp> expires_at;
  std::optional<std::chrono::milliseconds> rotate_every;  // at least one minute
};

// Parses and validates the JSON body. Every invalid field is kInvalidRequest whose `field` names
// it and whose message says why, e.g. field "max_requests", "max_requests: must be a whole
// number of at least 1". Unknown fields are refused (a typo must not silently drop a limit).
// `now` anchors expires_in and checks that expires_at is in the future. Whether a named
// credential exists is the caller's check.
Result<NewKeySpec> parse_new_key_request(std::string_view body, Timestamp now,
                                         KeyRequestKind kind = KeyRequestKind::kKey);

struct RotationSpec {
  std::chrono::milliseconds grace{0};  // how long the old token keeps working; 0 = not at all
  std::string upstream_key;            // empty unless given
};

// {"grace"?: "10m", "upstream_key"?: "…"}; an empty body takes the defaults. upstream_key is
// refused unless `accepts_upstream_key` (an admin rotating a sealed key gives it again). The
// grace is at most 30 days.
Result<RotationSpec> parse_rotation_request(std::string_view body, bool accepts_upstream_key);

}  // namespace till
