// The vault: upstream credentials kept by till under envelope encryption (core/vault_seal.h), for
// keys that name a credential instead of carrying a sealed copy. Secrets go in and are never
// handed out by the control plane; the proxy opens them (KeyCache) to forward requests.
//
// Thread-safety: methods may be called concurrently; the referenced objects must outlive this.
#pragma once

#include <cstdint>
#include <string_view>

#include "api/credential_request.h"
#include "core/master_key.h"
#include "till/clock.h"
#include "till/store.h"

namespace till {

class CredentialVault {
 public:
  CredentialVault(Store& store, const MasterKeyring& keyring, const Clock& clock)
      : store_(store), keyring_(keyring), clock_(clock) {}

  // Seals the secret under the current master key and stores the credential. kConflict (field
  // "name") if the name is taken.
  Result<CredentialRecord> add(const NewCredentialSpec& spec);

  // Replaces the secret of an existing credential (sealed afresh under the current master key)
  // and sets rotated_at. kNotFound if there is no such credential. Keys that use it pick the new
  // secret up at their next request (after the caller invalidates their cached entries).
  Result<CredentialRecord> replace_secret(std::string_view name, std::string_view secret);

  // Re-wraps every credential whose data key is wrapped under an older master key version under
  // the current one (the secrets themselves are not re-encrypted). Returns how many changed.
  Result<int64_t> rewrap_all();

 private:
  Store& store_;
  const MasterKeyring& keyring_;
  const Clock& clock_;
};

}  // namespace till
