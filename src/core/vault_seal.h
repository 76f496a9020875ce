// Envelope encryption of vault credentials: the real upstream API keys that the store keeps,
// encrypted under the master key (DESIGN.md, "vault").
//
// Each secret is encrypted under its own random 32-byte data key, and the data key is wrapped under
// a key-encryption key (KEK) derived from one master key version:
//
//   KEK           = HKDF-SHA256(master key, salt "till-vault-v1", info "credential-key-wrap")
//   wrapped_key   = aes256gcm_seal(KEK, data key, aad "till-vault:v1:<name>:mk<version>")
//   sealed_secret = aes256gcm_seal(data key, secret, aad "till-vault:v1:<name>")
//
// so a seal opens only for the credential name and master key version it was made for, and
// rotating the master key re-wraps the 60-byte wrapped_key without touching sealed_secret.
//
// Data keys and KEKs live only for the duration of a call and are wiped before it returns. No
// error message contains key material or the secret.
//
// Thread-safety: all functions are safe to call concurrently; they only read their arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/crypto.h"
#include "core/master_key.h"
#include "till/credential.h"
#include "till/error.h"

namespace till {

// An upstream credential sealed for the vault: the secret is encrypted under its own random
// 32-byte data key, and the data key is wrapped under a key derived from one master key version.
// Rotating the master key re-wraps only the data key.
struct VaultSeal {
  uint32_t master_key_version = 0;  // the master key version that wraps data_key (>= 1)
  crypto::Bytes wrapped_key;        // aes256gcm_seal of the data key under KEK(master key)
  crypto::Bytes sealed_secret;      // aes256gcm_seal of the secret under the data key
  bool operator==(const VaultSeal&) const = default;
};

inline constexpr size_t kMaxVaultSecretSize = 16 * 1024;

// Seals `secret` for the credential called `name` under `master`, with a fresh data key.
// kInvalidRequest (field "secret") if the secret is empty or longer than kMaxVaultSecretSize;
// kInternal if master.version is 0.
Result<VaultSeal> seal_vault_secret(const MasterKey& master, std::string_view name,
                                    std::string_view secret);

// Opens a seal. kInternal, with a message naming the credential and the master key version but
// never key material or the secret, if the keyring lacks that version or authentication fails
// (wrong master key, seal moved to another name or version, any changed byte).
Result<std::string> open_vault_secret(const MasterKeyring& keyring, std::string_view name,
                                      const VaultSeal& seal);

// The same seal with its data key re-wrapped under `to`; sealed_secret is unchanged. Fails
// exactly when open_vault_secret(keyring, name, seal) would, with the same errors (the secret is
// authenticated before the data key is re-wrapped, so a damaged seal is never carried over to a
// new master key version), and with kInternal if to.version is 0.
Result<VaultSeal> rewrap_vault_seal(const MasterKeyring& keyring, std::string_view name,
                                    const VaultSeal& seal, const MasterKey& to);

// The seal a stored credential carries, and the reverse.
inline VaultSeal vault_seal_of(const CredentialRecord& credential) {
  return VaultSeal{credential.master_key_version, credential.wrapped_key, credential.sealed_secret};
}
inline void set_vault_seal(CredentialRecord& credential, const VaultSeal& seal) {
  credential.master_key_version = seal.master_key_version;
  credential.wrapped_key = seal.wrapped_key;
  credential.sealed_secret = seal.sealed_secret;
}

}  // namespace till
