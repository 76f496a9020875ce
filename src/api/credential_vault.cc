#include "api/credential_vault.h"

#include "core/vault_seal.h"

namespace till {

Result<CredentialRecord> CredentialVault::add(const NewCredentialSpec& spec) {
  auto seal = seal_vault_secret(keyring_.current(), spec.name, spec.secret);
  if (!seal) return fail(seal.error());
  const Timestamp now = clock_.now();
  CredentialRecord credential;
  credential.name = spec.name;
  credential.provider = spec.provider;
  set_vault_seal(credential, *seal);
  credential.rotate_every = spec.rotate_every;
  credential.created_at = now;
  credential.rotated_at = now;
  credential.updated_at = now;
  if (auto inserted = store_.insert_credential(credential); !inserted) {
    return fail(inserted.error());
  }
  return credential;
}

Result<CredentialRecord> CredentialVault::replace_secret(std::string_view name,
                                                         std::string_view secret) {
  auto credential = store_.find_credential(name);
  if (!credential) return fail(credential.error());
  auto seal = seal_vault_secret(keyring_.current(), name, secret);
  if (!seal) return fail(seal.error());
  const Timestamp now = clock_.now();
  set_vault_seal(*credential, *seal);
  credential->rotated_at = now;
  credential->updated_at = now;
  if (auto updated = store_.update_credential(*credential); !updated) {
    return fail(updated.error());
  }
  return std::move(*credential);
}

Result<int64_t> CredentialVault::rewrap_all() {
  auto credentials = store_.list_credentials();
  if (!credentials) return fail(credentials.error());
  const MasterKey& current = keyring_.current();
  int64_t changed = 0;
  for (CredentialRecord& credential : *credentials) {
    if (credential.master_key_version == current.version) continue;
    auto seal = rewrap_vault_seal(keyring_, credential.name, vault_seal_of(credential), current);
    if (!seal) return fail(seal.error());
    set_vault_seal(credential, *seal);
    credential.updated_at = clock_.now();
    if (auto updated = store_.update_credential(credential); !updated) {
      return fail(updated.error());
    }
    ++changed;
  }
  return changed;
}

}  // namespace till
