// Issuing tokens: the one place scoped and admin keys are created.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "api/new_key_request.h"
#include "core/master_key.h"
#include "till/store.h"

namespace till {

struct CreatedKey {
  KeyRecord record;
  std::string token;  // shown to the creator once; the store keeps only its secret's hash
};

// Creates a scoped key from a validated spec: spec.upstream_key is sealed into the token under
// the keyring's current master key, or, for a vault key (spec.credential), nothing is sealed.
// With `parent_id` the key is a sub-key of that key, carved from its budget (Store::insert_key).
// The record is durable when this returns.
Result<CreatedKey> create_scoped_key(Store& store, const MasterKeyring& keyring,
                                     const NewKeySpec& spec, Timestamp now,
                                     std::optional<std::string> parent_id = std::nullopt);

// Issues a new token for `key` (same id, limits and counters): `upstream_key` is sealed into it
// under the current master key, or nothing for a vault key. The old token keeps working for
// `grace` (not at all when zero). kInvalidRequest (field "upstream_key") if a sealed key gets no
// upstream_key or a vault key gets one.
Result<CreatedKey> rotate_scoped_key(Store& store, const MasterKeyring& keyring,
                                     const KeyRecord& key, std::string_view upstream_key,
                                     std::chrono::milliseconds grace, Timestamp now);

// Creates an admin key and returns its token (the only copy).
Result<std::string> create_admin_key(Store& store, std::string_view name, Timestamp now);

}  // namespace till
