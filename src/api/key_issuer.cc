#include "api/key_issuer.h"

#include "core/token.h"

namespace till {

namespace {

// The master key a new token of a key seals its credential under: none for vault keys.
const MasterKey* seal_key_for(const MasterKeyring& keyring, bool uses_vault) {
  return uses_vault ? nullptr : &keyring.current();
}

}  // namespace

Result<CreatedKey> create_scoped_key(Store& store, const MasterKeyring& keyring,
                                     const NewKeySpec& spec, Timestamp now,
                                     std::optional<std::string> parent_id) {
  const std::string id = new_key_id(TokenKind::kScoped);
  const MasterKey* seal_key = seal_key_for(keyring, spec.credential.has_value());
  auto issued = issue_token(TokenKind::kScoped, id, seal_key, spec.upstream_key);
  if (!issued) return fail(issued.error());
  KeyRecord record;
  record.id = id;
  record.name = spec.name;
  record.provider = spec.provider;
  record.metadata_json = spec.metadata_json;
  record.status = KeyStatus::kActive;
  record.secret_hash = issued->secret_hash;
  record.seal_version = seal_key ? seal_key->version : 0;
  record.rotated_at = now;
  record.rotate_every = spec.rotate_every;
  record.credential = spec.credential;
  record.parent_id = std::move(parent_id);
  record.limits = spec.limits;
  record.scope = spec.scope;
  record.expires_at = spec.expires_at;
  record.created_at = now;
  record.updated_at = now;
  if (auto inserted = store.insert_key(record); !inserted) return fail(inserted.error());
  return CreatedKey{std::move(record), std::move(issued->token)};
}

Result<CreatedKey> rotate_scoped_key(Store& store, const MasterKeyring& keyring,
                                     const KeyRecord& key, std::string_view upstream_key,
                                     std::chrono::milliseconds grace, Timestamp now) {
  const bool uses_vault = key.credential.has_value();
  if (uses_vault && !upstream_key.empty()) {
    return fail(Error::invalid(
        "upstream_key",
        "upstream_key: key " + key.id + " uses the vault credential '" + *key.credential +
            "'; replace its secret with PUT /api/v1/credentials/" + *key.credential + " instead"));
  }
  if (!uses_vault && upstream_key.empty()) {
    return fail(
        Error::invalid("upstream_key", "upstream_key: key " + key.id +
                                           " carries its upstream credential sealed in its token, "
                                           "which till does not keep; give upstream_key with the "
                                           "rotation, or let the key's holder "
                                           "rotate it with POST /api/v1/key/rotate"));
  }
  const MasterKey* seal_key = seal_key_for(keyring, uses_vault);
  auto issued = issue_token(TokenKind::kScoped, key.id, seal_key, upstream_key);
  if (!issued) return fail(issued.error());
  auto rotated = store.rotate_token(key.id, issued->secret_hash, seal_key ? seal_key->version : 0,
                                    now + grace, now);
  if (!rotated) return fail(rotated.error());
  return CreatedKey{std::move(*rotated), std::move(issued->token)};
}

Result<std::string> create_admin_key(Store& store, std::string_view name, Timestamp now) {
  const std::string id = new_key_id(TokenKind::kAdmin);
  auto issued = issue_token(TokenKind::kAdmin, id, nullptr, {});
  if (!issued) return fail(issued.error());
  AdminKeyRecord record{id, std::string(name), issued->secret_hash, now, std::nullopt};
  if (auto inserted = store.insert_admin_key(record); !inserted) return fail(inserted.error());
  return std::move(issued->token);
}

}  // namespace till
