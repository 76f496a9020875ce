#include "core/vault_seal.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>

namespace till {
namespace {

constexpr std::string_view kKekSalt = "till-vault-v1";
constexpr std::string_view kKekInfo = "credential-key-wrap";
constexpr size_t kDataKeySize = 32;

using DataKey = std::array<uint8_t, kDataKeySize>;

// Wipes a key when leaving a scope, whichever way.
class WipeOnExit {
 public:
  explicit WipeOnExit(DataKey& key) : key_(key) {}
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;
  ~WipeOnExit() { OPENSSL_cleanse(key_.data(), key_.size()); }

 private:
  DataKey& key_;
};

DataKey kek(const MasterKey& master) { return crypto::hkdf_sha256(master.key, kKekSalt, kKekInfo); }

std::string wrap_aad(std::string_view name, uint32_t master_key_version) {
  return "till-vault:v1:" + std::string(name) + ":mk" + std::to_string(master_key_version);
}

std::string secret_aad(std::string_view name) { return "till-vault:v1:" + std::string(name); }

std::string_view as_text(const DataKey& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

// The credential's name and the master key version in every message, never anything secret.
std::string credential_label(std::string_view name, uint32_t version) {
  return "vault credential \"" + std::string(name) + "\" (sealed under master key v" +
         std::to_string(version) + ")";
}

Error cannot_open(std::string_view name, uint32_t version) {
  return Error::internal(credential_label(name, version) +
                         " does not open: it was altered, belongs to another credential, or the "
                         "master key of that version is not the one it was sealed with; restore "
                         "the master key file or the credential from your backup");
}

crypto::Bytes wrap(const MasterKey& master, std::string_view name, const DataKey& data_key) {
  DataKey key = kek(master);
  WipeOnExit wipe_key(key);
  return crypto::aes256gcm_seal(key, as_text(data_key), wrap_aad(name, master.version));
}

// Unwraps the data key of `seal` and opens its secret with it. The data key is written to
// `data_key` (wiped by the caller) so that rewrap can use it again.
Result<std::string> open_seal(const MasterKeyring& keyring, std::string_view name,
                              const VaultSeal& seal, DataKey& data_key) {
  const MasterKey* master = keyring.find(seal.master_key_version);
  if (master == nullptr) {
    return fail(Error::internal(credential_label(name, seal.master_key_version) +
                                " cannot be opened: this server's master keyring has no such "
                                "version; restore that version to the master key file from your "
                                "backup"));
  }
  DataKey key = kek(*master);
  auto unwrapped = crypto::aes256gcm_open(key, seal.wrapped_key, wrap_aad(name, master->version));
  OPENSSL_cleanse(key.data(), key.size());
  if (!unwrapped) return fail(cannot_open(name, seal.master_key_version));
  bool sized = unwrapped->size() == data_key.size();
  if (sized) std::copy(unwrapped->begin(), unwrapped->end(), data_key.begin());
  OPENSSL_cleanse(unwrapped->data(), unwrapped->size());
  if (!sized) return fail(cannot_open(name, seal.master_key_version));

  auto secret = crypto::aes256gcm_open(data_key, seal.sealed_secret, secret_aad(name));
  if (!secret) return fail(cannot_open(name, seal.master_key_version));
  return secret;
}

}  // namespace

Result<VaultSeal> seal_vault_secret(const MasterKey& master, std::string_view name,
                                    std::string_view secret) {
  if (master.version == 0) {
    return fail(Error::internal("seal_vault_secret: master key version 0 cannot seal"));
  }
  if (secret.empty()) return fail(Error::invalid("secret", "the credential's secret is empty"));
  if (secret.size() > kMaxVaultSecretSize) {
    return fail(Error::invalid("secret", "the credential's secret is longer than " +
                                             std::to_string(kMaxVaultSecretSize) + " bytes"));
  }
  DataKey data_key;
  WipeOnExit wipe_data_key(data_key);
  crypto::random_bytes(data_key);

  VaultSeal seal;
  seal.master_key_version = master.version;
  seal.sealed_secret = crypto::aes256gcm_seal(data_key, secret, secret_aad(name));
  seal.wrapped_key = wrap(master, name, data_key);
  return seal;
}

Result<std::string> open_vault_secret(const MasterKeyring& keyring, std::string_view name,
                                      const VaultSeal& seal) {
  DataKey data_key;
  WipeOnExit wipe_data_key(data_key);
  return open_seal(keyring, name, seal, data_key);
}

Result<VaultSeal> rewrap_vault_seal(const MasterKeyring& keyring, std::string_view name,
                                    const VaultSeal& seal, const MasterKey& to) {
  if (to.version == 0) {
    return fail(Error::internal("rewrap_vault_seal: master key version 0 cannot seal"));
  }
  DataKey data_key;
  WipeOnExit wipe_data_key(data_key);
  auto secret = open_seal(keyring, name, seal, data_key);
  if (!secret) return fail(secret.error());
  OPENSSL_cleanse(secret->data(), secret->size());

  VaultSeal rewrapped;
  rewrapped.master_key_version = to.version;
  rewrapped.wrapped_key = wrap(to, name, data_key);
  rewrapped.sealed_secret = seal.sealed_secret;
  return rewrapped;
}

}  // namespace till
