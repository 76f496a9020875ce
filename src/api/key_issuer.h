// Issuing tokens: the one place scoped and admin keys are created.
#pragma once

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

// Creates a scoped key from a validated spec, sealing spec.upstream_key into the token under the
// keyring's current master key. The record is durable when this returns.
Result<CreatedKey> create_scoped_key(Store& store, const MasterKeyring& keyring,
                                     const NewKeySpec& spec, Timestamp now);

// Creates an admin key and returns its token (the only copy).
Result<std::string> create_admin_key(Store& store, std::string_view name, Timestamp now);

}  // namespace till
