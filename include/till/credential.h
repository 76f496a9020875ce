// Vault credentials: upstream provider keys kept by till, encrypted under the master key
// (DESIGN.md, "upstream credential"). Keys reference one by name instead of carrying a sealed copy
// in their token, so replacing the secret reaches every such key at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "till/clock.h"

namespace till {

struct CredentialRecord {
  std::string name;      // 1..64 of [A-Za-z0-9._-]; unique
  std::string provider;  // the provider whose keys may use it
  // Envelope encryption (core/vault_seal.h): the secret under a data key, the data key wrapped
  // under master key `master_key_version`. Opaque to the store.
  uint32_t master_key_version = 0;
  std::vector<uint8_t> wrapped_key;
  std::vector<uint8_t> sealed_secret;
  std::optional<std::chrono::milliseconds> rotate_every;  // how long a secret should serve
  Timestamp created_at;
  Timestamp rotated_at;  // when the current secret was set
  Timestamp updated_at;

  std::optional<Timestamp> rotation_due_at() const {
    if (!rotate_every) return std::nullopt;
    return rotated_at + *rotate_every;
  }
};

}  // namespace till
